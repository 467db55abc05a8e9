"""`apply-config`: write the generated Postfix and Dovecot configuration to a registered host,
check it with the daemons' own tools, and reload only the daemons whose files changed.

Public contract:

    apply_config(uow, actor, host_name_or_None) -> ApplyReport
    target_for(spec, settings, queue_directory) -> DeployTarget
    ConfigRejected (a HostError): the daemon refused the new files; they were put back

The service renders what `mailwarden config` renders (stack/config.py), reads the host's copy of
every file over the host's runner (locally or over SSH), and reports each one as created,
changed or unchanged with a unified diff whose passwords are hidden. A dry run (`uow.dry_run`)
stops there. A real run, per daemon whose files differ:

1. writes each file atomically (a temporary file beside it, then a rename). A file holding the
   database password is staged 0600, given to the daemon's group, made 0640 and only then
   renamed into place: it is never readable by anyone else, not even for a moment;
2. validates the whole configuration (`postfix -c DIR check`, `doveadm -c FILE config -n`);
3. on failure puts back the previous contents (read in the first step; new files are removed)
   and raises ConfigRejected without reloading; on success reloads that daemon only.

One audit entry ("stack.apply-config", key: the host's name) lists the paths written and the
daemons reloaded, never the contents: they hold database credentials. A run that finds nothing
to change leaves no entry, like an update that changes no field.

Host work happens inside the service call, not after commit: the database does not change, and
the report (what was written, what was reloaded, what was refused) is the answer itself.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mailwarden.hosts import service as hosts
from mailwarden.hosts import validation
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack import dovecot
from mailwarden.stack.config import (
    PRIVATE_MODE,
    SECRET_MODE,
    Daemon,
    file_mode,
    redact,
    render_dovecot,
    render_postfix,
)
from mailwarden.stack.hosts import HostError, HostRunner, HostSpec, open_runner
from mailwarden.stack.target import DeployTarget, UnixSocket

from .schemas import ApplyReport, ConfigFile, DaemonName, FileState

__all__ = ["AUDIT_ACTION", "ConfigRejected", "apply_config", "target_for"]

AUDIT_ACTION: Final = "stack.apply-config"
# Beside the file it replaces (same filesystem, so the final rename is atomic); a leftover from
# an interrupted run is simply overwritten by the next one.
_STAGING_SUFFIX: Final = ".mailwarden-new"


class ConfigRejected(HostError):
    """The daemon's own check refused the new configuration; the previous files are back in
    place and nothing was reloaded."""


@dataclass(frozen=True, slots=True)
class _File:
    daemon: Daemon
    relative: str
    path: str
    text: str
    previous: bytes | None
    status: FileState
    diff: str


def target_for(spec: HostSpec, settings: Settings, queue_directory: str) -> DeployTarget:
    """Where the generated files will run, on the host `spec` describes.

    From the host registration: Postfix's configuration directory, Dovecot's (the directory of
    its dovecot.conf) and the mail root; and, asked from the host's Postfix itself, its queue
    directory, below which Dovecot's LMTP and auth listeners are placed for Postfix to reach
    (`private/dovecot-lmtp`, `private/auth`).
    From Settings: the mail owner (vmail_user, vmail_group): the database's mail is owned by
    one account on every host mailwarden serves.
    Production defaults for the rest: unix sockets rather than TCP for LMTP and auth, Sieve
    replies through the host's sendmail, and the `submission` service of master.cf.
    """
    spool = Path(queue_directory)
    return DeployTarget(
        postfix_dir=Path(spec.postfix_config_dir),
        dovecot_dir=Path(posixpath.dirname(spec.dovecot_config)),
        mail_root=Path(spec.mail_root),
        vmail_user=settings.vmail_user,
        vmail_group=settings.vmail_group,
        postfix_spool=spool,
        lmtp=UnixSocket(spool / "private" / "dovecot-lmtp"),
        sasl=UnixSocket(spool / "private" / "auth"),
    )


def apply_config(uow: UnitOfWork, actor: Actor, name: str | None) -> ApplyReport:
    """Bring the host's generated configuration up to date (see the module docstring)."""
    spec = hosts.spec_for(uow, actor, name, Permission.STACK_APPLY)
    with open_runner(spec) as runner:
        queue_directory = _queue_directory(runner, spec)
        target = target_for(spec, uow.settings, queue_directory)
        files = _compare(runner, spec, uow.settings, target)
        to_reload = [
            daemon
            for daemon in Daemon
            if any(file.daemon is daemon and file.status != "unchanged" for file in files)
        ]
        reloaded: list[Daemon] = []
        if not uow.dry_run:
            for daemon in to_reload:
                _install(runner, spec, daemon, [f for f in files if f.daemon is daemon])
                reloaded.append(daemon)
    changed = [file.path for file in files if file.status != "unchanged"]
    if changed:
        uow.record(
            actor,
            ChangeKind.UPDATE,
            "host_config",
            spec.name,
            domain=None,
            after={"files": changed, "reloaded": [daemon.value for daemon in to_reload]},
            action=AUDIT_ACTION,
        )
    return ApplyReport(
        host=spec.name,
        dry_run=uow.dry_run,
        files=[
            ConfigFile(path=f.path, daemon=_name(f.daemon), status=f.status, diff=f.diff)
            for f in files
        ],
        reloaded=[_name(daemon) for daemon in reloaded],
        would_reload=[_name(daemon) for daemon in to_reload],
    )


def _name(daemon: Daemon) -> DaemonName:
    return "postfix" if daemon is Daemon.POSTFIX else "dovecot"


def _queue_directory(runner: HostRunner, spec: HostSpec) -> str:
    result = runner.run(spec.postfix_command("postconf", "-h", "queue_directory")).checked()
    return validation.check_absolute_path(result.text().strip(), "queue_directory")


# --- comparing -------------------------------------------------------------------------------


def _compare(
    runner: HostRunner, spec: HostSpec, settings: Settings, target: DeployTarget
) -> list[_File]:
    master_password = settings.sieve_master_password
    rendered = [
        (Daemon.POSTFIX, spec.postfix_config_dir, render_postfix(settings, target)),
        (Daemon.DOVECOT, str(target.dovecot_dir), render_dovecot(settings, target)),
    ]
    files: list[_File] = []
    for daemon, directory, texts in rendered:
        for relative in sorted(texts):
            path = posixpath.join(directory, relative)
            previous = runner.read_file(path)
            files.append(
                _compared(
                    daemon,
                    relative,
                    path,
                    texts[relative],
                    previous,
                    None if master_password is None else master_password.get_secret_value(),
                )
            )
    return _with_exposed_secrets(runner, files)


def _compared(
    daemon: Daemon,
    relative: str,
    path: str,
    expected: str,
    previous: bytes | None,
    master_password: str | None,
) -> _File:
    if previous is None:
        diff = _unified(relative, path, "", expected, fromfile="/dev/null")
        return _File(daemon, relative, path, expected, None, "created", diff)
    try:
        deployed = previous.decode("utf-8")
    except UnicodeDecodeError:
        return _File(
            daemon, relative, path, expected, previous, "changed", f"{path} is not a text file\n"
        )
    if deployed == expected:
        return _File(daemon, relative, path, expected, previous, "unchanged", "")
    if (
        relative == dovecot.MASTER_USERS
        and master_password is not None
        and _same_master_user(deployed, expected, master_password)
    ):
        # A salted hash differs at every rendering: the deployed one stays when it verifies.
        return _File(daemon, relative, path, deployed, previous, "unchanged", "")
    before, after = redact(relative, deployed), redact(relative, expected)
    if before == after:
        what = "master user's password" if relative == dovecot.MASTER_USERS else "password"
        diff = f"{path}: the {what} differs (not shown)\n"
    else:
        diff = _unified(relative, path, deployed, expected, fromfile=f"{path} (on the host)")
    return _File(daemon, relative, path, expected, previous, "changed", diff)


def _unified(relative: str, path: str, deployed: str, expected: str, *, fromfile: str) -> str:
    return "".join(
        difflib.unified_diff(
            redact(relative, deployed).splitlines(keepends=True),
            redact(relative, expected).splitlines(keepends=True),
            fromfile=fromfile,
            tofile=f"{path} (generated)",
        )
    )


def _same_master_user(deployed: str, expected: str, password: str) -> bool:
    lines = [line for line in deployed.splitlines() if line.strip()]
    if len(lines) != 1:
        return False
    user, _, stored = lines[0].partition(":")
    return user == expected.partition(":")[0] and verify_password(password, stored)


def _with_exposed_secrets(runner: HostRunner, files: list[_File]) -> list[_File]:
    """A secret file whose content is right but that others may read, or that belongs to
    another group than the daemon's, is changed too: writing it again fixes its mode."""
    unchanged_secrets = [
        file
        for file in files
        if file.status == "unchanged" and file_mode(file.relative) == SECRET_MODE
    ]
    if not unchanged_secrets:
        return files
    result = runner.run(["stat", "-c", "%a %G", "--", *(f.path for f in unchanged_secrets)])
    lines = result.text().splitlines()
    if len(lines) != len(unchanged_secrets):
        # One vanished since it was read: its status is not worth guessing; stat says why.
        result.checked()
    exposed: dict[str, str] = {}
    for file, line in zip(unchanged_secrets, lines, strict=True):
        mode_text, _, group = line.partition(" ")
        mode = int(mode_text, 8)
        if mode & 0o007 or (mode & 0o070 and group != file.daemon.group):
            exposed[file.path] = (
                f"{file.path} has mode {mode:04o} and group {group}: it holds a password and "
                f"should be {SECRET_MODE:04o} with group {file.daemon.group}\n"
            )
    return [
        _File(f.daemon, f.relative, f.path, f.text, f.previous, "changed", exposed[f.path])
        if f.path in exposed
        else f
        for f in files
    ]


# --- writing ---------------------------------------------------------------------------------


def _install(runner: HostRunner, spec: HostSpec, daemon: Daemon, files: list[_File]) -> None:
    changed = [file for file in files if file.status != "unchanged"]
    written: list[_File] = []
    try:
        _make_parents(runner, [file.path for file in changed if file.previous is None])
        for file in changed:
            written.append(file)
            _put(runner, daemon, file.relative, file.path, file.text.encode("utf-8"))
        check = runner.run(_check_command(spec, daemon))
    except HostError:
        _restore(runner, daemon, written)
        raise
    if not check.ok:
        _restore(runner, daemon, written)
        reason = "; ".join((check.error_text() or check.text()).strip().splitlines()[-3:])
        raise ConfigRejected(
            runner.name,
            f"{daemon.value} refused the new configuration (`{' '.join(check.argv)}` exited "
            f"{check.returncode}: {reason or 'no message'}); the previous files were put back "
            "and nothing was reloaded",
        )
    runner.run(_reload_command(spec, daemon)).checked()


def _check_command(spec: HostSpec, daemon: Daemon) -> list[str]:
    if daemon is Daemon.POSTFIX:
        return spec.postfix_command("postfix", "check")
    return spec.doveadm_command("config", "-n")


def _reload_command(spec: HostSpec, daemon: Daemon) -> list[str]:
    if daemon is Daemon.POSTFIX:
        return spec.postfix_command("postfix", "reload")
    return spec.doveadm_command("reload")


def _make_parents(runner: HostRunner, paths: Sequence[str]) -> None:
    parents = sorted({posixpath.dirname(path) for path in paths})
    if parents:
        runner.run(["mkdir", "-p", "--", *parents]).checked()


def _put(runner: HostRunner, daemon: Daemon, relative: str, path: str, data: bytes) -> None:
    """Replace one file atomically with its mode; a secret file reaches its final path only
    once it belongs to the daemon's group and nobody else can read it."""
    mode = file_mode(relative)
    if mode != SECRET_MODE:
        runner.write_file(path, data, mode)
        return
    staging = path + _STAGING_SUFFIX
    runner.write_file(staging, data, PRIVATE_MODE)
    try:
        runner.run(["chgrp", "--", daemon.group, staging]).checked()
        runner.run(["chmod", f"{SECRET_MODE:04o}", "--", staging]).checked()
        runner.run(["mv", "-f", "--", staging, path]).checked()
    except HostError:
        runner.run(["rm", "-f", "--", staging])
        raise


def _restore(runner: HostRunner, daemon: Daemon, written: list[_File]) -> None:
    """Put back what was there before this run: the previous bytes, or no file at all."""
    for file in reversed(written):
        if file.previous is None:
            runner.run(["rm", "-f", "--", file.path]).checked()
        else:
            _put(runner, daemon, file.relative, file.path, file.previous)
