"""`apply-config` against real Postfix and Dovecot, reached locally and over a real SSH server.

Why a devstack of its own
-------------------------
apply-config renders for a production host: LMTP and SASL over unix sockets below the host's
Postfix queue directory, Sieve replies through sendmail, the `submission` service. The shared
`stack` of the other e2e tests is rendered for a loopback instance (LMTP over TCP, ...), so
applying to it would change its Dovecot listeners under every other test. This module starts
a private devstack per backend instead (`apply_stack`, the same `devstack up` as `mail_stack`)
and registers it as a host in its own database.

Every test starts from the files `devstack up` wrote: `fresh_host` puts back their bytes and
modes and reloads both daemons (a test may leave the instance in any state). Then:
- the first apply writes the Dovecot fragment and the Postfix fragments, reloads both, and the
  reload demonstrably took effect: Dovecot now answers LMTP on the unix socket the applied
  fragment declares below the queue directory, and a message delivered there is read back over
  IMAP through the SQL passdb; Postfix still answers SMTP. A second apply changes nothing;
- a hand-edited secret map and a secret file made world-readable are reported, restored (with
  mode 0640 and group postfix) and only Postfix is reloaded;
- with an invalid setting in the host's own dovecot.conf, the check fails: the generated file
  written just before is put back as it was, Dovecot is not reloaded, the error says so.
Reloads are proven from the daemons' own log lines, counted before and after.
"""

from __future__ import annotations

import grp
import json
import os
import smtplib
import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from mailwarden.db.engine import session_factory
from mailwarden.deploy import service as deploy
from mailwarden.deploy.schemas import ApplyReport
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.stack.devstack.instance import StackLayout

from .conftest import (
    PASSWORD,
    MailStack,
    run_mailwarden,
    stack_environment,
    stack_host_fields,
    started_stack,
    unavailable,
)
from .mail import message, poll, unique_subject

POSTFIX_RELOADED = "reload -- version"
DOVECOT_RELOADED = "SIGHUP received - reloading configuration"
RELOAD_SECONDS = 20


@pytest.fixture(scope="module")
def apply_stack(backend: str) -> Iterator[MailStack]:
    """A private devstack for this module only (see the module docstring)."""
    if os.geteuid() != 0:
        unavailable("the devstack runs Postfix and Dovecot, which needs root")
    with started_stack(backend, "ap") as stack:
        yield stack


@dataclass(frozen=True)
class Original:
    data: bytes
    mode: int
    gid: int


def _config_files(layout: StackLayout) -> list[Path]:
    return sorted(
        path
        for directory in (layout.postfix_dir, layout.dovecot_dir)
        for path in directory.rglob("*")
        if path.is_file()
    )


@pytest.fixture(scope="module")
def originals(apply_stack: MailStack) -> dict[Path, Original]:
    """Every configuration file as `devstack up` wrote it."""
    layout = StackLayout.at(apply_stack.dir)
    found = {}
    for path in _config_files(layout):
        info = path.stat()
        found[path] = Original(path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_gid)
    return found


@dataclass(frozen=True)
class AppliedHost:
    name: str
    transport: str
    stack: MailStack
    layout: StackLayout

    def apply(self, *, dry_run: bool = False) -> ApplyReport:
        """One apply-config in its own unit of work, committed (or a dry run)."""
        actor = Actor.local_operator(Channel.CLI)
        uow = UnitOfWork(session_factory(self.stack.engine)(), self.stack.settings, dry_run=dry_run)
        with uow:
            report = deploy.apply_config(uow, actor, self.name)
            uow.finish()
        return report

    def log_count(self, daemon: str) -> int:
        if daemon == "postfix":
            return self.layout.postfix_log.read_text(errors="replace").count(POSTFIX_RELOADED)
        return self.layout.dovecot_log.read_text(errors="replace").count(DOVECOT_RELOADED)

    def wait_for_reload(self, daemon: str, before: int) -> None:
        poll(
            lambda: True if self.log_count(daemon) > before else None,
            RELOAD_SECONDS,
            f"{daemon} to log its reload",
        )


def _restore(layout: StackLayout, originals: dict[Path, Original]) -> None:
    for path in _config_files(layout):
        if path not in originals:
            path.unlink()
    for path, original in originals.items():
        path.write_bytes(original.data)
        os.chown(path, 0, original.gid)
        path.chmod(original.mode)


def _reload_both(layout: StackLayout) -> None:
    for argv in (
        ["/usr/sbin/postfix", "-c", str(layout.postfix_dir), "reload"],
        ["doveadm", "-c", str(layout.dovecot_conf), "reload"],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture(params=["local", "ssh"])
def fresh_host(
    request: pytest.FixtureRequest, apply_stack: MailStack, originals: dict[Path, Original]
) -> Iterator[AppliedHost]:
    """The private devstack as `devstack up` left it, registered as a host reached locally or
    over the real SSH server."""
    layout = StackLayout.at(apply_stack.dir)
    _restore(layout, originals)
    # Tests count reload lines in the logs: this fixture's own reloads must be logged before
    # a test takes its counts, or one would be counted as the test's.
    seen = AppliedHost("", "", apply_stack, layout)
    before = {daemon: seen.log_count(daemon) for daemon in ("postfix", "dovecot")}
    _reload_both(layout)
    for daemon, count in before.items():
        seen.wait_for_reload(daemon, count)
    poll(lambda: _accepts(apply_stack.ports["lmtp"]), RELOAD_SECONDS, "LMTP on TCP again")
    transport: str = request.param
    name = f"apply-{transport}-{uuid.uuid4().hex[:6]}"
    fields: dict[str, Any] = {"name": name, "transport": transport}
    fields.update(stack_host_fields(apply_stack))
    if transport == "ssh":
        server = request.getfixturevalue("ssh_server")
        fields["ssh_target"] = f"{server.user}@{server.host}:{server.port}"
        fields["ssh_key_file"] = str(server.client_key)
        fields["host_key_fingerprint"] = server.host_key_fingerprint
    apply_stack.run(lambda uow, actor: hosts.create(uow, actor, parse(HostCreate, fields)))
    try:
        yield AppliedHost(name, transport, apply_stack, layout)
    finally:
        apply_stack.run(lambda uow, actor: hosts.remove(uow, actor, name))


def _accepts(port: int) -> bool | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return None


def _lmtp_socket(layout: StackLayout) -> Path:
    return layout.postfix_queue / "private" / "dovecot-lmtp"


def _deliver_over_unix_lmtp(path: Path, recipient: str, subject: str) -> int:
    sender = "sender@elsewhere.example"
    with smtplib.LMTP(str(path), timeout=20) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        lmtp.mail(sender)
        code, _reply = lmtp.rcpt(recipient)
        assert code == 250, code
        code, _reply = lmtp.data(message(sender, [recipient], subject, "applied").as_bytes())
    return code


def _smtp_banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        return connection.recv(512)


def _secrets_of(stack: MailStack) -> list[str]:
    """The database password (none for SQLite) and the ManageSieve master password."""
    master = stack.settings.sieve_master_password
    return [
        make_url(stack.database_url).password or "",
        master.get_secret_value() if master else "",
    ]


def _by_path(report: ApplyReport) -> dict[str, str]:
    return {file.path: file.status for file in report.files}


def test_apply_writes_reloads_and_the_daemons_serve_the_new_configuration(
    fresh_host: AppliedHost,
) -> None:
    layout, stack = fresh_host.layout, fresh_host.stack
    fragment = layout.dovecot_dir / "conf.d" / "90-mailwarden.conf"
    before_bytes = fragment.read_bytes()
    postfix_reloads, dovecot_reloads = (fresh_host.log_count(d) for d in ("postfix", "dovecot"))

    planned = fresh_host.apply(dry_run=True)

    assert planned.dry_run and planned.reloaded == []
    assert planned.would_reload == ["postfix", "dovecot"]
    assert _by_path(planned)[str(fragment)] == "changed"
    assert fragment.read_bytes() == before_bytes, "a dry run wrote the file"
    assert not _lmtp_socket(layout).exists()

    applied = fresh_host.apply()

    statuses = _by_path(applied)
    assert statuses[str(fragment)] == "changed"
    assert statuses[str(layout.postfix_dir / "main.cf.mailwarden")] == "changed"
    # The SQL maps and the SQL connection files were right already.
    assert statuses[str(layout.dovecot_dir / "mailwarden-sql.conf.ext")] == "unchanged"
    assert all(
        status == "unchanged"
        for path, status in statuses.items()
        if path.startswith(str(layout.postfix_dir / "mailwarden") + "/")
    )
    assert applied.reloaded == ["postfix", "dovecot"]
    secrets = [secret for secret in _secrets_of(stack) if secret]
    for file in [*planned.files, *applied.files]:
        assert not any(secret in file.diff for secret in secrets), file.path
    assert "unix_listener" in fragment.read_text()
    fresh_host.wait_for_reload("postfix", postfix_reloads)
    fresh_host.wait_for_reload("dovecot", dovecot_reloads)

    # The reloaded Dovecot serves what was applied: LMTP on the socket below the queue
    # directory (it was TCP before), users from SQL; Postfix still answers.
    domain = stack.new_domain("apply")
    address = f"reader@{domain}"
    stack.add_mailbox(address)
    socket_path = poll(
        lambda: _lmtp_socket(layout) if _lmtp_socket(layout).exists() else None,
        RELOAD_SECONDS,
        "Dovecot's LMTP socket from the applied fragment",
    )
    subject = unique_subject("applied")
    assert _deliver_over_unix_lmtp(socket_path, address, subject) == 250
    stack.mail.wait_for_message(address, PASSWORD, subject)
    assert _smtp_banner(stack.ports["smtp"]).startswith(b"220 ")

    again = fresh_host.apply()

    assert {file.status for file in again.files} == {"unchanged"}
    assert again.reloaded == [] and again.would_reload == []


def test_a_hand_edited_or_exposed_file_is_restored_and_only_its_daemon_reloaded(
    fresh_host: AppliedHost,
) -> None:
    layout = fresh_host.layout
    fresh_host.apply()
    edited = layout.postfix_dir / "mailwarden" / "virtual_alias_maps.cf"
    exposed = layout.postfix_dir / "mailwarden" / "virtual_mailbox_maps.cf"
    generated = edited.read_text()
    edited.write_text(generated + "# changed by hand\n")
    exposed.chmod(0o644)
    postfix_reloads, dovecot_reloads = (fresh_host.log_count(d) for d in ("postfix", "dovecot"))

    report = fresh_host.apply()

    changed = {file.path: file for file in report.files if file.status != "unchanged"}
    assert set(changed) == {str(edited), str(exposed)}
    assert "-# changed by hand" in changed[str(edited)].diff
    secrets = [secret for secret in _secrets_of(fresh_host.stack) if secret]
    assert not any(secret in file.diff for file in report.files for secret in secrets)
    assert "0644" in changed[str(exposed)].diff
    assert report.reloaded == ["postfix"]
    assert edited.read_text() == generated
    for path in (edited, exposed):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o640
        assert info.st_gid == grp.getgrnam("postfix").gr_gid
    fresh_host.wait_for_reload("postfix", postfix_reloads)
    assert fresh_host.log_count("dovecot") == dovecot_reloads
    # One audit entry names the paths, never what is in them.
    with session_factory(fresh_host.stack.engine)() as session:
        entries = (
            session.query(AuditEntry)
            .filter(AuditEntry.action == deploy.AUDIT_ACTION)
            .filter(AuditEntry.object_key == fresh_host.name)
            .all()
        )
    assert len(entries) == 2
    last = max(entries, key=lambda entry: entry.id)
    assert sorted(last.after["files"]) == sorted(changed)
    assert last.after["reloaded"] == ["postfix"]
    assert "password" not in json.dumps(last.after)


def test_a_configuration_the_daemon_refuses_is_put_back_and_not_reloaded(
    fresh_host: AppliedHost,
) -> None:
    layout = fresh_host.layout
    fragment = layout.dovecot_dir / "conf.d" / "90-mailwarden.conf"
    before = fragment.read_bytes()
    # The host's own dovecot.conf (not a generated file) gets a setting Dovecot does not know.
    with layout.dovecot_conf.open("a") as handle:
        handle.write("\nno_such_setting_here = 1\n")
    dovecot_reloads = fresh_host.log_count("dovecot")

    with pytest.raises(deploy.ConfigRejected) as refused:
        fresh_host.apply()

    assert "no_such_setting_here" in refused.value.detail
    assert "put back" in refused.value.detail
    assert fragment.read_bytes() == before
    assert not list(fragment.parent.glob("*.mailwarden-new"))
    assert fresh_host.log_count("dovecot") == dovecot_reloads
    # Still the running configuration: LMTP over TCP as before.
    assert _accepts(fresh_host.stack.ports["lmtp"])


def test_the_cli_applies_and_reports_json(fresh_host: AppliedHost) -> None:
    stack = fresh_host.stack
    environment = stack_environment(stack.database_url, stack.dir)
    password = stack.settings.sieve_master_password
    assert password is not None
    environment["MAILWARDEN_SIEVE_MASTER_PASSWORD"] = password.get_secret_value()
    environment["MAILWARDEN_MAIL_ROOT"] = str(stack.settings.mail_root)

    dry = run_mailwarden(environment, "apply-config", "--host", fresh_host.name, "--dry-run")
    applied = run_mailwarden(environment, "apply-config", "--host", fresh_host.name, "--json")
    again = run_mailwarden(environment, "apply-config", "--host", fresh_host.name, "--json")

    assert dry.returncode == 0, dry.stderr
    assert "Dry run: nothing written; would reload postfix, dovecot." in dry.stdout
    assert password.get_secret_value() not in dry.stdout
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["reloaded"] == ["postfix", "dovecot"]
    assert {file["status"] for file in report["files"]} == {"changed", "unchanged"}
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reloaded"] == []


def test_an_unknown_host_is_refused_by_the_cli(apply_stack: MailStack) -> None:
    environment = stack_environment(apply_stack.database_url, apply_stack.dir)

    result = run_mailwarden(environment, "apply-config", "--host", "no-such-host")

    assert result.returncode == 1
    assert "no-such-host" in result.stderr
