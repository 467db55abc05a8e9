"""Start, stop and inspect a devstack: one private Postfix + Dovecot below one directory.

`up` is a service: it renders the daemons' configuration, database credentials included, so it
requires Permission.STACK_CONFIG itself, before anything else. `down` and `status` read no
configuration and need no database: they act only on processes that /proc proves to be this
instance's (processes.py), and never run a command named by files in the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.config import write_rendered
from mailwarden.stack.dialect import DatabaseConnection, connection_from_url

from .errors import DevstackError
from .fs import (
    Ownership,
    check_location,
    create_private_file,
    is_regular_file,
    make_directory,
    open_log,
    read_private_file,
    read_small_file,
    read_tail,
    stack_directory,
)
from .hostprep import (
    DOVECOT_USER,
    POSTFIX_USER,
    MailOwner,
    check_reachable,
    check_sqlite_database,
    ensure_mail_owner,
    share_sqlite_database,
)
from .instance import DOVECOT_CONF, POSTFIX_MAIN_CF, POSTFIX_MASTER_CF, StackLayout
from .packages import install_command, missing_packages
from .ports import HOST, StackPorts, ports_in_use, wait_until_closed, wait_until_open
from .processes import MasterProcess, dovecot_master, postfix_master, running
from .render import StackFiles, render_stack

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_LOG_TAIL_LINES = 25
# Which daemon answers on which port, to show the right log when one stays closed.
_DOVECOT_PORTS = ("imap", "pop3", "lmtp", "sieve")
# The devstack's own directories: root's, readable by the daemons, writable by no one else.
_DIRECTORY_MODE = 0o755


@dataclass(frozen=True, slots=True)
class StackInfo:
    """What `up` and `status` report."""

    layout: StackLayout
    ports: StackPorts
    postfix_running: bool
    dovecot_running: bool
    already_running: bool = False
    # Settings a client of the stack exports (MAILWARDEN_MANAGESIEVE_HOST, ...): no secret.
    env: dict[str, str] = field(default_factory=dict)
    # Set when the devstack generated the ManageSieve master password (kept in this file).
    sieve_password_file: Path | None = None

    @property
    def running(self) -> bool:
        return self.postfix_running and self.dovecot_running

    def as_dict(self) -> dict[str, object]:
        return {
            "dir": str(self.layout.root),
            "running": self.running,
            "already_running": self.already_running,
            "postfix_running": self.postfix_running,
            "dovecot_running": self.dovecot_running,
            "ports": self.ports.as_dict(),
            "mail_root": str(self.layout.mail_root),
            "logs": {
                "postfix": str(self.layout.postfix_log),
                "dovecot": str(self.layout.dovecot_log),
            },
            "env": dict(self.env),
            "sieve_master_password_file": (
                str(self.sieve_password_file) if self.sieve_password_file else None
            ),
        }


# --- commands and logs --------------------------------------------------------------------------


def _run(argv: Sequence[str], log: Path) -> int:
    """A command whose output goes to the log, never to the caller's pipes."""
    descriptor = open_log(log)
    try:
        os.write(descriptor, f"$ {' '.join(argv)}\n".encode())
        # An argv list of fixed binaries and paths this module built: no shell, no user text.
        return subprocess.run(  # noqa: S603
            list(argv), stdin=subprocess.DEVNULL, stdout=descriptor, stderr=descriptor, check=False
        ).returncode
    finally:
        os.close(descriptor)


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    text = read_tail(path)
    return "\n".join(f"{path.name}: {line}" for line in text.splitlines()[-lines:])


# --- state -------------------------------------------------------------------------------------


def _save_state(layout: StackLayout, ports: StackPorts) -> None:
    state = json.dumps({"ports": ports.as_dict()}, indent=2) + "\n"
    write_rendered({layout.state_file.name: state}, layout.state_file.parent)


def saved_ports(layout: StackLayout) -> StackPorts | None:
    try:
        data = json.loads(read_small_file(layout.state_file) or "")
        return StackPorts(**{key: int(value) for key, value in data["ports"].items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _client_env(layout: StackLayout, ports: StackPorts) -> dict[str, str]:
    """What mailwarden commands need to work on this instance (maildirs, ManageSieve, kicks)."""
    return {
        "MAILWARDEN_MAIL_ROOT": str(layout.mail_root),
        "MAILWARDEN_MANAGESIEVE_HOST": HOST,
        "MAILWARDEN_MANAGESIEVE_PORT": str(ports.sieve),
        # Removing or deactivating a mailbox ends its open sessions on this instance.
        "MAILWARDEN_DOVEADM_CONFIG": str(layout.dovecot_conf),
    }


def _located(layout: StackLayout) -> StackLayout:
    """The layout at the absolute --dir; refused when a symlink lies on the way."""
    return StackLayout(stack_directory(layout.root))


def status(layout: StackLayout) -> StackInfo:
    """Whether this instance's daemons run: a pid counts only when /proc ties it to --dir."""
    layout = _located(layout)
    ports = saved_ports(layout) or StackPorts()
    postfix_running, dovecot_running = running(layout)
    password_file = layout.sieve_password_file
    return StackInfo(
        layout=layout,
        ports=ports,
        postfix_running=postfix_running,
        dovecot_running=dovecot_running,
        env=_client_env(layout, ports),
        sieve_password_file=password_file if is_regular_file(password_file) else None,
    )


# --- preparation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MasterPassword:
    value: SecretStr
    # The devstack's own password, kept in layout.sieve_password_file.
    own: bool
    # Generated now: written to its file once the directory is ready.
    new: bool


def _sieve_master_password(settings: Settings, layout: StackLayout) -> _MasterPassword:
    """The configured master password, or the devstack's own (generated once, mode 0600)."""
    if settings.sieve_master_password is not None:
        return _MasterPassword(settings.sieve_master_password, own=False, new=False)
    path = layout.sieve_password_file
    if os.path.lexists(path):
        return _MasterPassword(SecretStr(read_private_file(path).strip()), own=True, new=False)
    return _MasterPassword(SecretStr(secrets.token_urlsafe(24)), own=True, new=True)


def _prepare_directories(layout: StackLayout, owner: MailOwner, files: StackFiles) -> None:
    """Create (or check, then fix owner and mode of) every directory, top down."""
    euid = os.geteuid()
    ours = Ownership(uid=euid, mode=_DIRECTORY_MODE)
    # --dir keeps its mode when it exists: it is the caller's, checked but not changed.
    make_directory(layout.root, Ownership(uid=euid, mode=None))
    # The queue directory too: `postfix set-permissions` creates what lies below it.
    for directory in (
        layout.postfix_dir,
        layout.postfix_queue,
        layout.dovecot_dir,
        layout.dovecot_base,
        layout.dovecot_state,
        layout.log_dir,
    ):
        make_directory(directory, ours)
    # The directories the generated files go into (mailwarden/, conf.d/).
    for base, rendered in (
        (layout.postfix_dir, files.postfix),
        (layout.dovecot_dir, files.dovecot),
    ):
        parents = {
            base.joinpath(*Path(relative).parent.parts[:depth])
            for relative in rendered
            for depth in range(1, len(Path(relative).parent.parts) + 1)
        }
        for directory in sorted(parents):
            make_directory(directory, ours)
    postfix = pwd.getpwnam(POSTFIX_USER)
    make_directory(
        layout.postfix_data, Ownership(uid=postfix.pw_uid, gid=postfix.pw_gid, mode=0o700)
    )
    make_directory(layout.mail_root, Ownership(uid=owner.uid, gid=owner.gid, mode=0o770))


def _share_database(connection: DatabaseConnection, layout: StackLayout) -> None:
    """A SQLite file: shared with the daemons inside --dir, only checked elsewhere."""
    if not connection.is_sqlite:
        return
    # The very path the generated files give the daemons.
    database = Path(connection.database)
    if database.is_relative_to(layout.root):
        share_sqlite_database(database, layout)
    else:
        check_sqlite_database(database)


def write_instance_files(layout: StackLayout, files: StackFiles) -> None:
    """Every file replaced by rename (a symlink in the way is replaced, never followed), with
    the modes and groups `mailwarden config --out` gives them."""
    write_rendered(files.postfix, layout.postfix_dir, group=POSTFIX_USER)
    write_rendered(files.dovecot, layout.dovecot_dir, group=DOVECOT_USER)
    # Postfix commands pause 1.5 s when main.cf is younger than a second (so that an edit
    # within the same second is not missed); these files are complete, so date them back.
    stamp = time.time() - 2
    for path in (
        layout.postfix_dir / POSTFIX_MAIN_CF,
        layout.postfix_dir / POSTFIX_MASTER_CF,
        layout.dovecot_dir / DOVECOT_CONF,
    ):
        os.utime(path, (stamp, stamp), follow_symlinks=False)


# --- up / down ---------------------------------------------------------------------------------


def up(
    uow: UnitOfWork,
    actor: Actor,
    layout: StackLayout,
    ports: StackPorts,
    *,
    fast_auth_failures: bool = False,
    package_root: Path = Path("/"),
) -> StackInfo:
    """Start the instance and return once every port accepts connections.

    Requires Permission.STACK_CONFIG: the instance's files hold the database credentials.
    Every refusal (permission, invalid settings, --dir, packages, ports) comes before anything
    is touched. Raises DevstackError, with nothing left running, when a package, a port, the
    mail owner, a directory or a daemon is missing or fails.
    """
    require(actor, Permission.STACK_CONFIG)
    settings = uow.settings
    connection = connection_from_url(settings.effective_database_url)
    layout = _located(layout)
    check_location(layout.root)
    missing = missing_packages(connection.driver, package_root)
    if missing:
        raise DevstackError(
            f"the devstack needs the Debian packages {', '.join(missing)}; install them with: "
            f"{install_command(missing)}"
        )
    current = status(layout)
    if current.running:
        return StackInfo(
            layout=layout,
            ports=current.ports,
            postfix_running=True,
            dovecot_running=True,
            already_running=True,
            env=current.env,
            sieve_password_file=current.sieve_password_file,
        )
    if current.postfix_running or current.dovecot_running:
        half = "Postfix" if current.postfix_running else "Dovecot"
        raise DevstackError(
            f"only {half} of the devstack in {layout.root} runs: run "
            f"`mailwarden devstack down --dir {layout.root}` first"
        )
    if duplicates := ports.duplicates():
        raise DevstackError(f"each listener needs its own port; given twice: {duplicates}")
    if busy := ports_in_use(ports.as_dict().values()):
        names = [name for name, port in ports.as_dict().items() if port in busy]
        raise DevstackError(
            f"ports already in use on {HOST}: "
            + ", ".join(f"{port} ({name})" for name, port in zip(names, busy, strict=True))
            + "; choose others with --smtp-port, --imap-port, ..."
        )

    password = _sieve_master_password(settings, layout)
    instance_settings = settings.model_copy(
        update={
            "sieve_master_password": password.value,
            "mail_root": layout.mail_root,
            "managesieve_host": HOST,
            "managesieve_port": ports.sieve,
        }
    )
    # Rendered before the host is touched: an invalid setting changes nothing.
    files = render_stack(instance_settings, layout, ports, fast_auth_failures=fast_auth_failures)
    if problem := layout.socket_path_problem():
        raise DevstackError(problem)
    if os.geteuid() != 0:
        raise DevstackError("devstack up must run as root: Postfix's master process needs it")

    owner = ensure_mail_owner(settings.vmail_user, settings.vmail_group)
    if owner.created:
        # The Dovecot fragment names the new account's uid (Dovecot's first_valid_uid).
        files = render_stack(
            instance_settings, layout, ports, fast_auth_failures=fast_auth_failures
        )
    _prepare_directories(layout, owner, files)
    check_reachable(layout.root, [POSTFIX_USER, DOVECOT_USER, settings.vmail_user])
    _share_database(connection, layout)
    if password.new:
        create_private_file(layout.sieve_password_file, password.value.get_secret_value() + "\n")
    write_instance_files(layout, files)
    _save_state(layout, ports)
    _start(layout, ports)
    return StackInfo(
        layout=layout,
        ports=ports,
        postfix_running=True,
        dovecot_running=True,
        env=_client_env(layout, ports),
        sieve_password_file=layout.sieve_password_file if password.own else None,
    )


def _start(layout: StackLayout, ports: StackPorts) -> None:
    log = layout.startup_log
    # Only on the directory checked and written above, with the main.cf written there: the
    # postfix command runs programs named by main.cf (daemon_directory), as root.
    postfix = ["-c", str(layout.postfix_dir)]
    try:
        # set-permissions creates the queue directories with their owners and modes.
        for action in ("set-permissions", "check", "start"):
            if _run([POSTFIX, *postfix, action], log) != 0:
                raise DevstackError(
                    f"`postfix {action}` failed",
                    log_tail(log) + "\n" + log_tail(layout.postfix_log),
                )
        if _run([DOVECOT, "-c", str(layout.dovecot_conf)], log) != 0:
            raise DevstackError(
                "dovecot did not start", log_tail(log) + "\n" + log_tail(layout.dovecot_log)
            )
        closed = wait_until_open(ports.as_dict().values(), START_TIMEOUT)
        if closed:
            names = [name for name, port in ports.as_dict().items() if port in closed]
            logs = [
                layout.dovecot_log if any(n in _DOVECOT_PORTS for n in names) else None,
                layout.postfix_log if any(n not in _DOVECOT_PORTS for n in names) else None,
            ]
            raise DevstackError(
                f"not listening after {START_TIMEOUT:.0f} s: "
                + ", ".join(f"{name} ({port})" for name, port in zip(names, closed, strict=True)),
                "\n".join(log_tail(path) for path in logs if path is not None),
            )
    except BaseException:
        # The start failure is the news; a failure to stop as well must not hide it.
        with contextlib.suppress(DevstackError):
            _stop(layout, ports)
        raise


def _stop(layout: StackLayout, ports: StackPorts) -> list[str]:
    """Stop both masters at once (each takes a second or two to wind down) and wait for both.

    A signal to the verified master, never `postfix -c DIR stop`: that command would run the
    programs a main.cf in the directory names, as root.
    """
    masters: list[MasterProcess] = []
    try:
        for find in (postfix_master, dovecot_master):
            if (master := find(layout)) is not None:
                masters.append(master)
        if not masters:
            return []
        for master in masters:
            master.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for master in masters:
            if not master.wait(deadline - time.monotonic()):
                raise DevstackError(
                    f"{master.name} (pid {master.pid}) still runs {STOP_TIMEOUT:.0f} s after stop"
                )
    finally:
        for master in masters:
            master.close()
    still_open = wait_until_closed(ports.as_dict().values(), max(deadline - time.monotonic(), 0))
    if still_open:
        raise DevstackError(f"still listening after {STOP_TIMEOUT:.0f} s: ports {still_open}")
    return [master.name for master in masters]


def down(layout: StackLayout) -> list[str]:
    """Stop whatever of the instance runs; the daemons stopped (empty: nothing ran)."""
    layout = _located(layout)
    return _stop(layout, saved_ports(layout) or StackPorts())
