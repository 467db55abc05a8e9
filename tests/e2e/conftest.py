"""End-to-end tests: real Postfix and Dovecot reading a mailwarden database.

How it works
------------
`mail_stack` (session scope, once per backend and pytest-xdist worker) creates a private,
migrated database for the backend, picks six free loopback ports (the kernel's choice on
port 0, so the two xdist workers do not collide; a port taken in the meantime is chosen again),
and runs the installed `.venv/bin/mailwarden devstack up --fast-auth-failures --json` as a real
subprocess in a short directory under /tmp. It yields a `MailStack`; `devstack down` runs at
teardown, also when the tests failed.

A `MailStack` gives a test:
- `stack.mail`: a `MailClient` (tests/e2e/mail.py) bound to the ports: `send` (smtp listener),
  `submission(user, password)` (AUTH PLAIN), `lmtp_deliver`, `imap_login_ok`, `pop3_login_ok`,
  `imap_subjects`, `pop3_count`, `wait_for_message(address, password, subject)` (polls IMAP)
  and `wait_for_log(*fragments)` (polls Postfix's log).
- data set-up through the real services, committed (as `Actor.local_operator`):
  `new_domain()` (a fresh domain per call, so tests never share addresses), `add_mailbox`,
  `add_alias`, `add_alias_domain`, `set_password`, `update_mailbox`, `get_mailbox`,
  `quota_usage_bytes`, and `run(fn)` for any other service call, e.g.
  `stack.run(lambda uow, actor: vacation.set_vacation(uow, actor, address, data))`; `run`
  fails the test when host work after the commit (a Sieve upload, ...) failed.
- `settings` (a `Settings` for in-process service calls: database URL, mail root, password
  scheme, ManageSieve host/port and master password of this instance), `database_url`,
  `engine`, `dir`, `ports` and `info` (the JSON that `devstack up` printed).

Writing a new e2e test: take `stack: MailStack`, create what you need under
`stack.new_domain()`, give every message `unique_subject(...)`, and wait with `wait_for_message`
or `poll` (tests/e2e/mail.py), never with sleep. Tests run on every selected backend.

Missing Debian packages skip these tests locally (with the apt-get command) and fail them under
CI=true; `python -m tests.support.services` (run by scripts/test) installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.db.engine import session_factory
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import Scheme
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic, MailboxUpdate
from mailwarden.settings import Settings
from mailwarden.stack.devstack import install_command, missing_packages
from mailwarden.stack.devstack.instance import StackLayout
from tests.support.databases import migrated_engine, private_database
from tests.support.services import IN_CI

from .mail import MailClient

T = TypeVar("T")

PASSWORD = "e2e correct horse battery"
# Cheap and Dovecot-native; every writable scheme is tested on its own (test_login.py).
PASSWORD_SCHEME = "SHA256-CRYPT"
PORT_NAMES = ("smtp", "submission", "imap", "pop3", "lmtp", "sieve")
_UP_TIMEOUT = 90


def mailwarden_command() -> str:
    """The installed console script, run as a real process like an administrator would."""
    script = Path(sys.prefix) / "bin" / "mailwarden"
    assert script.is_file(), f"console script not installed at {script}"
    return str(script)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on, chosen by the kernel: all bound at once, so all distinct."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI=true, where nothing may be skipped for a missing tool."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(reason)


def stack_environment(database_url: str, stack_dir: Path) -> dict[str, str]:
    """The environment of every `mailwarden` process run against the stack."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILWARDEN_")}
    environment.update(
        {
            "MAILWARDEN_DATABASE_URL": database_url,
            "MAILWARDEN_MAIL_ROOT": str(stack_dir / "mail"),
            "MAILWARDEN_DATA_DIR": str(stack_dir / "data"),
            "MAILWARDEN_PASSWORD_SCHEME": PASSWORD_SCHEME,
            "NO_COLOR": "1",
        }
    )
    return environment


def run_mailwarden(
    environment: dict[str, str], *args: str, timeout: float = _UP_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mailwarden_command(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


@dataclass
class MailStack:
    backend: str
    dir: Path
    database_url: str
    engine: Engine
    settings: Settings
    ports: dict[str, int]
    info: dict[str, Any]
    mail: MailClient

    # --- data set-up through the services, committed -------------------------------------------

    def run(self, action: Callable[[UnitOfWork, Actor], T], *, dry_run: bool = False) -> T:
        """One service call in its own committed unit of work (or a dry run), as the local
        operator.

        Host work queued after the commit must succeed too: against a running stack a
        follow-up failure is a test failure, not a warning.
        """
        session = session_factory(self.engine)()
        with UnitOfWork(session, self.settings, dry_run=dry_run) as uow:
            result = action(uow, Actor.local_operator(Channel.SYSTEM))
            uow.finish()
        assert not uow.follow_up_failures, [str(failure) for failure in uow.follow_up_failures]
        return result

    def new_domain(self, label: str = "d") -> str:
        name = f"{label}-{uuid.uuid4().hex[:10]}.example"
        self.run(lambda uow, actor: domains.create(uow, actor, parse(DomainCreate, {"name": name})))
        return name

    def add_mailbox(
        self,
        address: str,
        password: str = PASSWORD,
        *,
        scheme: Scheme | None = None,
        quota_bytes: int | None = None,
        active: bool = True,
    ) -> MailboxPublic:
        fields: dict[str, Any] = {"address": address, "active": active}
        if quota_bytes is not None:
            fields["quota_bytes"] = quota_bytes
        return self.run(
            lambda uow, actor: mailboxes.create(
                uow, actor, parse(MailboxCreate, fields), password=password, scheme=scheme
            )
        )

    def add_alias(self, address: str, *targets: str) -> None:
        data = parse(AliasCreate, {"address": address, "targets": list(targets)})
        self.run(lambda uow, actor: aliases.create(uow, actor, data))

    def add_alias_domain(self, alias_domain: str, target_domain: str) -> None:
        data = parse(
            AliasDomainCreate, {"alias_domain": alias_domain, "target_domain": target_domain}
        )
        self.run(lambda uow, actor: alias_domains.create(uow, actor, data))

    def set_password(self, address: str, password: str) -> None:
        self.run(lambda uow, actor: mailboxes.set_password(uow, actor, address, password))

    def update_mailbox(self, address: str, **changes: Any) -> MailboxPublic:
        data = parse(MailboxUpdate, changes)
        return self.run(lambda uow, actor: mailboxes.update(uow, actor, address, data))

    def get_mailbox(self, address: str) -> MailboxPublic:
        return self.run(lambda uow, actor: mailboxes.get(uow, actor, address))

    def quota_usage_bytes(self, address: str) -> int | None:
        """What Dovecot's quota_clone wrote for the mailbox, read directly from the table."""
        with self.engine.connect() as connection:
            value = connection.execute(
                text("SELECT bytes FROM quota_usage WHERE username = :user"), {"user": address}
            ).scalar_one_or_none()
        return None if value is None else int(value)


@pytest.fixture(scope="session")
def mail_stack(backend: str) -> Iterator[MailStack]:
    if os.geteuid() != 0:
        unavailable("the devstack runs Postfix and Dovecot, which needs root")
    if missing := missing_packages(backend):
        unavailable(f"Debian packages missing: {' '.join(missing)}; {install_command(missing)}")

    with started_stack(backend, "e2e") as stack:
        yield stack


@contextmanager
def started_stack(backend: str, label: str) -> Iterator[MailStack]:
    """A devstack of its own (database, ports, daemons), stopped and removed afterwards; for a
    module whose tests stop daemons or rewrite configuration the shared stack must keep."""
    # Short and reachable by postfix, dovecot and vmail: pytest's own tmp directories are
    # mode 0700 and deep enough to push unix socket paths past their 107-byte limit.
    stack_dir = Path(tempfile.mkdtemp(prefix=f"mw-{label}-{backend[:2]}-", dir="/tmp"))
    stack_dir.chmod(0o755)
    try:
        with private_database(backend, stack_dir / "db") as database_url:
            environment = stack_environment(database_url, stack_dir)
            engine = migrated_engine(database_url)
            try:
                yield _start(backend, stack_dir, database_url, engine, environment)
            finally:
                _stop(environment, stack_dir)
                engine.dispose()
    finally:
        shutil.rmtree(stack_dir, ignore_errors=True)


def _start(
    backend: str, stack_dir: Path, database_url: str, engine: Engine, environment: dict[str, str]
) -> MailStack:
    for _attempt in range(3):
        ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        options = [item for name, port in ports.items() for item in (f"--{name}-port", str(port))]
        result = run_mailwarden(
            environment,
            "devstack",
            "up",
            "--dir",
            str(stack_dir),
            *options,
            "--fast-auth-failures",
            "--json",
        )
        # Between choosing a port and binding it, another process may take it: choose again.
        if "ports already in use" not in result.stderr:
            break
    if result.returncode != 0:
        pytest.fail(
            f"devstack up failed (exit {result.returncode}):\n{result.stderr}{result.stdout}",
            pytrace=False,
        )
    info: dict[str, Any] = json.loads(result.stdout)
    assert info["ports"] == ports, info
    password_file = info["sieve_master_password_file"]
    settings = Settings(
        database_url=database_url,
        data_dir=stack_dir / "data",
        mail_root=Path(info["mail_root"]),
        password_scheme=PASSWORD_SCHEME,
        managesieve_host=info["env"]["MAILWARDEN_MANAGESIEVE_HOST"],
        managesieve_port=int(info["env"]["MAILWARDEN_MANAGESIEVE_PORT"]),
        doveadm_config=Path(info["env"]["MAILWARDEN_DOVEADM_CONFIG"]),
        sieve_master_password=SecretStr(Path(password_file).read_text().strip()),
    )
    mail = MailClient(
        smtp_port=ports["smtp"],
        submission_port=ports["submission"],
        imap_port=ports["imap"],
        pop3_port=ports["pop3"],
        lmtp_port=ports["lmtp"],
        postfix_log=Path(info["logs"]["postfix"]),
    )
    return MailStack(
        backend=backend,
        dir=stack_dir,
        database_url=database_url,
        engine=engine,
        settings=settings,
        ports=ports,
        info=info,
        mail=mail,
    )


def _stop(environment: dict[str, str], stack_dir: Path) -> None:
    result = run_mailwarden(environment, "devstack", "down", "--dir", str(stack_dir))
    assert result.returncode == 0, f"devstack down failed:\n{result.stderr}{result.stdout}"


@pytest.fixture
def stack(mail_stack: MailStack) -> MailStack:
    """The running stack of this backend (the session fixture, under a shorter name)."""
    return mail_stack


# --- the stack as a registered mail host ------------------------------------------------------


@dataclass(frozen=True)
class StackHost:
    """The running stack registered as a mail host, reached as `transport` says."""

    name: str
    transport: str
    stack: MailStack

    def run(self, action: Callable[[UnitOfWork, Actor], T]) -> T:
        return self.stack.run(action)


def stack_host_fields(stack: MailStack) -> dict[str, Any]:
    """Where the devstack keeps what a host registration names (the same paths over SSH:
    the SSH server runs on this machine)."""
    layout = StackLayout.at(stack.dir)
    return {
        "postfix_config_dir": str(layout.postfix_dir),
        "dovecot_config": str(layout.dovecot_conf),
        "log_paths": [str(layout.postfix_log), str(layout.dovecot_log)],
        "mail_root": str(layout.mail_root),
        "probe_address": "127.0.0.1",
        "smtp_port": stack.ports["smtp"],
        "imap_port": stack.ports["imap"],
    }


@pytest.fixture(params=["local", "ssh"])
def stack_host(request: pytest.FixtureRequest, stack: MailStack) -> Iterator[StackHost]:
    """The stack registered under a fresh host name, once reached locally and once over a
    real OpenSSH server on loopback (tests/support/sshd.py): every host operation is proven
    both ways. The registration is removed afterwards."""
    transport: str = request.param
    name = f"{transport}-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {"name": name, "transport": transport, **stack_host_fields(stack)}
    if transport == "ssh":
        server = request.getfixturevalue("ssh_server")
        fields["ssh_target"] = f"{server.user}@{server.host}:{server.port}"
        fields["ssh_key_file"] = str(server.client_key)
        fields["host_key_fingerprint"] = server.host_key_fingerprint
    stack.run(lambda uow, actor: hosts.create(uow, actor, parse(HostCreate, fields)))
    try:
        yield StackHost(name=name, transport=transport, stack=stack)
    finally:
        stack.run(lambda uow, actor: hosts.remove(uow, actor, name))
