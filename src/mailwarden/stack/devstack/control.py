"""Start, stop and inspect a devstack: one private Postfix + Dovecot below one directory."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.config import write_rendered

from .errors import DevstackError
from .hostprep import (
    DOVECOT_USER,
    POSTFIX_USER,
    check_reachable,
    check_sqlite_database,
    ensure_mail_owner,
    share_sqlite_database,
)
from .instance import StackLayout
from .packages import database_dialect, install_command, missing_packages
from .ports import HOST, StackPorts, ports_in_use, wait_until_closed, wait_until_open
from .render import StackFiles, render_stack

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_LOG_TAIL_LINES = 25
# Which daemon answers on which port, to show the right log when one stays closed.
_DOVECOT_PORTS = ("imap", "pop3", "lmtp", "sieve")


def authorize(uow: UnitOfWork, actor: Actor) -> None:
    """A devstack renders the daemons' configuration (database credentials): STACK_CONFIG."""
    require(actor, Permission.STACK_CONFIG)


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


# --- processes ---------------------------------------------------------------------------------


def _pid_alive(pid_file: Path, name: str) -> int | None:
    """The pid in `pid_file` when that process runs and is `name` (not a reused pid)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if comm == name else None


def postfix_pid(layout: StackLayout) -> int | None:
    return _pid_alive(layout.postfix_pid_file, "master")


def dovecot_pid(layout: StackLayout) -> int | None:
    return _pid_alive(layout.dovecot_pid_file, "dovecot")


def _run(argv: Sequence[str], log: Path) -> int:
    """A command whose output goes to the log, never to the caller's pipes."""
    with open(log, "ab") as sink:
        sink.write(f"$ {' '.join(argv)}\n".encode())
        sink.flush()
        # An argv list of fixed binaries and paths this module built: no shell, no user text.
        return subprocess.run(  # noqa: S603
            list(argv), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, check=False
        ).returncode


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(f"{path.name}: {line}" for line in text.splitlines()[-lines:])


# --- state -------------------------------------------------------------------------------------


def _save_state(layout: StackLayout, ports: StackPorts) -> None:
    layout.state_file.write_text(json.dumps({"ports": ports.as_dict()}, indent=2) + "\n")


def saved_ports(layout: StackLayout) -> StackPorts | None:
    try:
        data = json.loads(layout.state_file.read_text())
        return StackPorts(**{key: int(value) for key, value in data["ports"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _client_env(layout: StackLayout, ports: StackPorts) -> dict[str, str]:
    """What mailwarden commands need to work on this instance (maildirs, ManageSieve)."""
    return {
        "MAILWARDEN_MAIL_ROOT": str(layout.mail_root),
        "MAILWARDEN_MANAGESIEVE_HOST": HOST,
        "MAILWARDEN_MANAGESIEVE_PORT": str(ports.sieve),
    }


def status(layout: StackLayout) -> StackInfo:
    ports = saved_ports(layout) or StackPorts()
    password_file = layout.sieve_password_file
    return StackInfo(
        layout=layout,
        ports=ports,
        postfix_running=postfix_pid(layout) is not None,
        dovecot_running=dovecot_pid(layout) is not None,
        env=_client_env(layout, ports),
        sieve_password_file=password_file if password_file.exists() else None,
    )


# --- preparation -------------------------------------------------------------------------------


def _sieve_master_password(settings: Settings, layout: StackLayout) -> tuple[SecretStr, bool]:
    """The configured master password, or the devstack's own (generated once, mode 0600)."""
    if settings.sieve_master_password is not None:
        return settings.sieve_master_password, False
    path = layout.sieve_password_file
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return SecretStr(path.read_text().strip()), True


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def _prepare_directories(layout: StackLayout, vmail_uid: int, vmail_gid: int) -> None:
    # The queue directory too: `postfix set-permissions` creates what lies below it.
    for directory in (
        layout.root,
        layout.postfix_dir,
        layout.postfix_queue,
        layout.dovecot_dir,
        layout.log_dir,
    ):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
    layout.postfix_data.mkdir(exist_ok=True)
    os.chown(layout.postfix_data, _uid(POSTFIX_USER), _gid(POSTFIX_USER))
    layout.postfix_data.chmod(0o700)
    layout.mail_root.mkdir(exist_ok=True)
    os.chown(layout.mail_root, vmail_uid, vmail_gid)
    layout.mail_root.chmod(0o770)


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def _gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid


def _write_files(layout: StackLayout, files: StackFiles) -> None:
    # The generated files exactly as `mailwarden config --out` installs them (modes, groups).
    write_rendered(files.postfix, layout.postfix_dir, group=POSTFIX_USER)
    write_rendered(files.dovecot, layout.dovecot_dir, group=DOVECOT_USER)
    # Postfix commands pause 1.5 s when main.cf is younger than a second (so that an edit
    # within the same second is not missed); these files are complete, so date them back.
    stamp = time.time() - 2
    for path, text in files.instance.items():
        path.write_text(text)
        path.chmod(0o644)
        os.utime(path, (stamp, stamp))


# --- up / down ---------------------------------------------------------------------------------


def up(
    settings: Settings,
    layout: StackLayout,
    ports: StackPorts,
    *,
    fast_auth_failures: bool = False,
    package_root: Path = Path("/"),
) -> StackInfo:
    """Start the instance and return once every port accepts connections.

    Raises DevstackError, with nothing left running, when a package, a port, the mail owner,
    a permission or a daemon is missing or fails.
    """
    dialect = database_dialect(settings.effective_database_url)
    missing = missing_packages(dialect, package_root)
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
    if os.geteuid() != 0:
        raise DevstackError("devstack up must run as root: Postfix's master process needs it")
    if problem := layout.socket_path_problem():
        raise DevstackError(problem)

    vmail_uid, vmail_gid = ensure_mail_owner(settings.vmail_user, settings.vmail_group)
    _prepare_directories(layout, vmail_uid, vmail_gid)
    check_reachable(layout.root, [POSTFIX_USER, DOVECOT_USER, settings.vmail_user])
    database = _sqlite_path(settings.effective_database_url)
    if database is not None:
        if database.is_relative_to(layout.root.resolve()):
            share_sqlite_database(database, layout.root.resolve())
        else:
            check_sqlite_database(database)

    password, generated = _sieve_master_password(settings, layout)
    instance_settings = settings.model_copy(
        update={
            "sieve_master_password": password,
            "mail_root": layout.mail_root,
            "managesieve_host": HOST,
            "managesieve_port": ports.sieve,
        }
    )
    _write_files(
        layout,
        render_stack(instance_settings, layout, ports, fast_auth_failures=fast_auth_failures),
    )
    _save_state(layout, ports)
    _start(layout, ports)
    return StackInfo(
        layout=layout,
        ports=ports,
        postfix_running=True,
        dovecot_running=True,
        env=_client_env(layout, ports),
        sieve_password_file=layout.sieve_password_file if generated else None,
    )


def _start(layout: StackLayout, ports: StackPorts) -> None:
    log = layout.startup_log
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
    """Stop both daemons at once (each takes a second or two to wind down) and wait for both."""
    stopped: dict[str, int] = {}
    if (pid := postfix_pid(layout)) is not None:
        # `postfix stop` asks master to end its children in order; SIGTERM does the same.
        if _run([POSTFIX, "-c", str(layout.postfix_dir), "stop"], layout.startup_log) != 0:
            _terminate(pid)
        stopped["postfix"] = pid
    if (pid := dovecot_pid(layout)) is not None:
        # The master pid, not `doveadm stop`: that would need a configuration that still parses.
        _terminate(pid)
        stopped["dovecot"] = pid
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, pid in stopped.items():
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            raise DevstackError(f"{name} (pid {pid}) still runs {STOP_TIMEOUT:.0f} s after stop")
    still_open = wait_until_closed(ports.as_dict().values(), max(deadline - time.monotonic(), 0))
    if still_open:
        raise DevstackError(f"still listening after {STOP_TIMEOUT:.0f} s: ports {still_open}")
    return list(stopped)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def down(layout: StackLayout) -> list[str]:
    """Stop whatever of the instance runs; the daemons stopped (empty: nothing ran)."""
    ports = saved_ports(layout) or StackPorts()
    if postfix_pid(layout) is None and dovecot_pid(layout) is None:
        return []
    return _stop(layout, ports)
