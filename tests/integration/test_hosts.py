"""The host registry through its service: who may use it, what it refuses (naming the field),
dry runs, audit entries without secrets, the recorded SSH host key and the known_hosts file.

SSH hosts are added against the real OpenSSH server on loopback (`ssh_server`). Where the
value under test is refused before any connection, the key fetcher fails the test if called:
validation comes first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import paramiko
import pytest
from sqlalchemy import func, select

from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.hosts.schemas import HostCreate, HostUpdate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.support.sshd import SshServer

OPERATOR = Actor.local_operator(Channel.SYSTEM)


def never_fetch(address: str, port: int) -> str:
    raise AssertionError(f"validation must refuse before connecting to {address}:{port}")


def create(
    make_uow: UowFactory,
    fields: dict[str, Any],
    *,
    actor: Actor = OPERATOR,
    dry_run: bool = False,
    fetch: hosts.HostKeyFetcher | None = None,
) -> Any:
    with make_uow(dry_run=dry_run) as uow:
        created = hosts.create(uow, actor, parse(HostCreate, fields), fetch=fetch)
        plan = uow.finish()
    return created, plan


def ssh_fields(server: SshServer, **extra: Any) -> dict[str, Any]:
    return {
        "name": "mx2",
        "transport": "ssh",
        "ssh_target": f"{server.user}@{server.host}:{server.port}",
        "ssh_key_file": str(server.client_key),
        **extra,
    }


def host_count(uow: UnitOfWork) -> int:
    return uow.session.scalar(select(func.count()).select_from(Host)) or 0


def audit_entries(uow: UnitOfWork) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.object_type == "host").order_by(AuditEntry.id)
    return list(uow.session.scalars(stmt))


def refused_field(make_uow: UowFactory, fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        create(make_uow, fields, fetch=never_fetch)
    return refused.value.field


# --- local hosts ---------------------------------------------------------------------------


def test_a_local_host_is_added_with_debian_defaults_and_audited(
    make_uow: UowFactory, uow: UnitOfWork
) -> None:
    created, _plan = create(make_uow, {"name": "mx1", "transport": "local"})

    assert created.transport == "local"
    assert created.postfix_config_dir == "/etc/postfix"
    assert created.dovecot_config == "/etc/dovecot/dovecot.conf"
    assert created.log_paths == ["/var/log/mail.log"]
    assert created.ssh_user is None and created.host_key_fingerprint is None
    [entry] = audit_entries(uow)
    assert (entry.action, entry.object_key, entry.actor) == (
        "host.create",
        "mx1",
        OPERATOR.username,
    )
    assert entry.after is not None and entry.after["transport"] == "local"


@pytest.mark.parametrize(
    "name",
    ["Mx1", "mx 1", "mx1;rm -rf /", "mx1$(id)", "-mx1", "mx1-", "", "m" * 64, "mx\n1", "mx_1"],
)
def test_hostile_host_names_are_refused(make_uow: UowFactory, name: str) -> None:
    assert refused_field(make_uow, {"name": name, "transport": "local"}) == "name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("postfix_config_dir", "etc/postfix"),
        ("postfix_config_dir", "/etc/postfix\n"),
        ("postfix_command_dir", "-oProxyCommand=x"),
        ("dovecot_config", "/etc/dovecot/\x00dovecot.conf"),
        ("doveadm", "doveadm"),
        ("mail_root", "/var/vmail\x1b[2J"),
        ("mail_root", "/" + "x" * 1100),
        ("log_paths", ["relative.log"]),
        ("log_paths", []),
        ("log_paths", ["/var/log/mail.log", "/var/log/mail.log"]),
        ("probe_address", "127.0.0.1; id"),
        ("probe_address", "-oProxyCommand=x"),
        ("smtp_port", 0),
        ("imap_port", 70000),
        ("ssh_target", "root@host"),
    ],
)
def test_bad_values_are_refused_naming_their_field(
    make_uow: UowFactory, uow: UnitOfWork, field: str, value: Any
) -> None:
    assert refused_field(make_uow, {"name": "mx1", "transport": "local", field: value}) == field
    assert host_count(uow) == 0


def test_a_path_with_dot_dot_is_refused_and_others_are_stored_normalized(
    make_uow: UowFactory,
) -> None:
    # /srv/../etc names another place than it seems to: refused, never resolved.
    assert (
        refused_field(make_uow, {"name": "mx1", "transport": "local", "mail_root": "/srv/../etc"})
        == "mail_root"
    )

    created, _plan = create(
        make_uow, {"name": "mx1", "transport": "local", "mail_root": "/var//vmail/./x/"}
    )

    assert created.mail_root == "/var/vmail/x"


def test_a_duplicate_name_is_a_conflict(make_uow: UowFactory) -> None:
    create(make_uow, {"name": "mx1", "transport": "local"})

    with pytest.raises(Conflict) as refused:
        create(make_uow, {"name": "mx1", "transport": "local"})

    assert refused.value.field == "name"


def test_a_dry_run_stores_nothing_and_returns_the_plan(
    make_uow: UowFactory, uow: UnitOfWork
) -> None:
    _created, plan = create(make_uow, {"name": "mx1", "transport": "local"}, dry_run=True)

    assert [(line.kind.value, line.key) for line in plan] == [("create", "mx1")]
    assert host_count(uow) == 0
    assert audit_entries(uow) == []


def test_list_pages_by_name_and_get_update_remove(make_uow: UowFactory, uow: UnitOfWork) -> None:
    for name in ("mx3", "mx1", "mx2"):
        create(make_uow, {"name": name, "transport": "local"})

    first = hosts.list_hosts(uow, OPERATOR, limit=2)
    second = hosts.list_hosts(uow, OPERATOR, limit=2, after=first.next_cursor)
    with make_uow() as change:
        updated = hosts.update(
            change, OPERATOR, "mx2", parse(HostUpdate, {"log_paths": ["/var/log/maillog"]})
        )
        change.finish()
    with make_uow() as change:
        hosts.remove(change, OPERATOR, "mx3")
        change.finish()

    assert [host.name for host in first.items] == ["mx1", "mx2"]
    assert [host.name for host in second.items] == ["mx3"] and second.next_cursor is None
    assert updated.log_paths == ["/var/log/maillog"]
    assert hosts.get(uow, OPERATOR, "mx2").log_paths == ["/var/log/maillog"]
    with pytest.raises(NotFound):
        hosts.get(uow, OPERATOR, "mx3")
    actions = [(entry.action, entry.object_key) for entry in audit_entries(uow)]
    assert actions[-2:] == [("host.update", "mx2"), ("host.delete", "mx3")]


def test_only_superadmins_use_the_registry(
    make_uow: UowFactory, uow: UnitOfWork, world: World
) -> None:
    create(make_uow, {"name": "mx1", "transport": "local"})

    for actor in (world.domain_admin, world.outsider):
        with pytest.raises(PermissionDenied):
            create(make_uow, {"name": "mx2", "transport": "local"}, actor=actor)
        with pytest.raises(PermissionDenied):
            hosts.list_hosts(uow, actor)
        with pytest.raises(PermissionDenied):
            hosts.get(uow, actor, "mx1")
        with pytest.raises(PermissionDenied):
            hosts.update(uow, actor, "mx1", parse(HostUpdate, {"mail_root": "/srv"}))
        with pytest.raises(PermissionDenied):
            hosts.remove(uow, actor, "mx1")
        with pytest.raises(PermissionDenied):
            hosts.check(uow, actor, "mx1")
        with pytest.raises(PermissionDenied):
            hosts.spec_for(uow, actor, "mx1", Permission.STACK_APPLY)
    assert hosts.get(uow, world.superadmin, "mx1").name == "mx1"


def test_spec_for_picks_the_only_host_and_asks_for_a_name_otherwise(
    make_uow: UowFactory, uow: UnitOfWork
) -> None:
    with pytest.raises(ValidationError) as none_yet:
        hosts.spec_for(uow, OPERATOR, None, Permission.QUEUE_READ)
    create(make_uow, {"name": "mx1", "transport": "local"})
    only = hosts.spec_for(uow, OPERATOR, None, Permission.QUEUE_READ)
    create(make_uow, {"name": "mx2", "transport": "local"})

    with pytest.raises(ValidationError) as ambiguous:
        hosts.spec_for(uow, OPERATOR, None, Permission.QUEUE_READ)

    assert none_yet.value.rule == "no_hosts"
    assert only.name == "mx1" and only.is_local
    assert ambiguous.value.rule == "required"


def test_local_host_fields_for_ssh_are_refused(make_uow: UowFactory) -> None:
    fields = {"name": "mx1", "transport": "local", "ssh_key_file": "/root/.ssh/id"}

    assert refused_field(make_uow, fields) == "ssh_key_file"


# --- SSH hosts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "root@;rm",
        "-oProxyCommand=x@h",
        "root@-oProxyCommand=x",
        "root@host:0",
        "root@host:70000",
        "root@host:22;id",
        "Root@host",
        "ro ot@host",
        "root@host name",
        "root@[::1",
        "root@[not-ipv6]:22",
        "root",
        "root@host\n",
    ],
)
def test_hostile_ssh_targets_are_refused_before_connecting(
    make_uow: UowFactory, ssh_server: SshServer, target: str
) -> None:
    assert refused_field(make_uow, ssh_fields(ssh_server, ssh_target=target)) == "ssh_target"


def _key(path: Path, *, passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    return path


def test_unusable_key_files_are_refused(
    make_uow: UowFactory, ssh_server: SshServer, tmp_path: Path
) -> None:
    readable = _key(tmp_path / "readable")
    readable.chmod(0o644)
    protected = _key(tmp_path / "protected", passphrase="a passphrase")
    not_a_key = tmp_path / "not-a-key"
    not_a_key.write_text("hello\n")
    not_a_key.chmod(0o600)

    messages = {}
    for label, path in (
        ("readable", readable),
        ("missing", tmp_path / "missing"),
        ("protected", protected),
        ("not a key", not_a_key),
        ("directory", tmp_path),
    ):
        with pytest.raises(ValidationError) as refused:
            create(make_uow, ssh_fields(ssh_server, ssh_key_file=str(path)), fetch=never_fetch)
        assert refused.value.field == "ssh_key_file", label
        messages[label] = refused.value.issues[0].message

    assert "chmod 600" in messages["readable"]
    assert "passphrase" in messages["protected"]
    assert "cannot read" in messages["missing"]
    assert "relative" not in messages["missing"]
    with pytest.raises(ValidationError) as relative:
        create(make_uow, ssh_fields(ssh_server, ssh_key_file="id_ed25519"), fetch=never_fetch)
    assert relative.value.field == "ssh_key_file"


def test_a_fingerprint_mismatch_is_refused_and_nothing_stored(
    make_uow: UowFactory, uow: UnitOfWork, ssh_server: SshServer, settings: Settings
) -> None:
    wrong = "SHA256:" + "A" * 43

    with pytest.raises(ValidationError) as refused:
        create(make_uow, ssh_fields(ssh_server, host_key_fingerprint=wrong))

    assert refused.value.field == "host_key_fingerprint"
    assert refused.value.rule == "mismatch"
    assert ssh_server.host_key_fingerprint in refused.value.issues[0].message
    assert host_count(uow) == 0
    assert not (settings.data_dir / hosts.KNOWN_HOSTS_FILE).exists()


def test_a_malformed_fingerprint_is_refused(make_uow: UowFactory, ssh_server: SshServer) -> None:
    fields = ssh_fields(ssh_server, host_key_fingerprint="MD5:aa:bb")

    with pytest.raises(ValidationError) as refused:
        create(make_uow, fields)

    assert refused.value.field == "host_key_fingerprint"


def test_an_unreachable_ssh_server_is_refused(make_uow: UowFactory, ssh_server: SshServer) -> None:
    # A loopback port nobody listens on (the server's port, plus one, is free or not SSH).
    with pytest.raises(ValidationError) as refused:
        create(
            make_uow,
            ssh_fields(ssh_server, ssh_target=f"root@{ssh_server.host}:1"),
        )

    assert refused.value.field == "ssh_target"
    assert refused.value.rule == "unreachable"


def test_an_ssh_host_records_the_key_and_keeps_known_hosts_in_step(
    make_uow: UowFactory, uow: UnitOfWork, ssh_server: SshServer, settings: Settings
) -> None:
    known_hosts = settings.data_dir / hosts.KNOWN_HOSTS_FILE

    planned, _plan = create(
        make_uow,
        ssh_fields(ssh_server, host_key_fingerprint=ssh_server.host_key_fingerprint),
        dry_run=True,
    )
    assert planned.host_key_fingerprint == ssh_server.host_key_fingerprint
    assert not known_hosts.exists(), "a dry run wrote known_hosts"
    assert host_count(uow) == 0

    created, _plan = create(
        make_uow, ssh_fields(ssh_server, host_key_fingerprint=ssh_server.host_key_fingerprint)
    )

    assert created.ssh_user == ssh_server.user
    assert (created.ssh_address, created.ssh_port) == (ssh_server.host, ssh_server.port)
    assert created.probe_address == ssh_server.host
    recorded = paramiko.HostKeys(str(known_hosts))
    assert ssh_server.host_key_name in recorded
    spec = hosts.spec_for(uow, OPERATOR, "mx2", Permission.HOST_READ)
    assert not spec.is_local

    # The audit entry names the key file and the fingerprint, never the key or the host key.
    [entry] = audit_entries(uow)
    text = json.dumps(entry.after)
    assert ssh_server.host_key_fingerprint in text
    assert ssh_server.host_public_key.split()[1] not in text
    assert "PRIVATE KEY" not in text
    private_key_body = ssh_server.client_key.read_text().splitlines()[1]
    assert private_key_body not in text

    with make_uow() as change:
        hosts.remove(change, OPERATOR, "mx2")
        change.finish()

    assert ssh_server.host_key_name not in paramiko.HostKeys(str(known_hosts))


def test_check_of_a_local_host_reports_every_item(make_uow: UowFactory, uow: UnitOfWork) -> None:
    create(
        make_uow,
        {
            "name": "mx1",
            "transport": "local",
            "log_paths": ["/nonexistent/mail.log"],
            "mail_root": "/nonexistent/vmail",
        },
    )

    result = hosts.check(uow, OPERATOR, "mx1")

    by_check = {item.check: item for item in result.items}
    assert by_check["connection"].ok
    assert not by_check["log /nonexistent/mail.log"].ok
    assert not by_check["mail root"].ok
    assert not result.ok
