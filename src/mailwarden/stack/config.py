"""The daemons' configuration: render it, write it, compare it with what is deployed.

Public contract (the devstack renders the very same files for its private instances):

    render_postfix(settings, target) -> {relative path: text}
    render_dovecot(settings, target) -> {relative path: text}
    check_deployed(rendered, directory) -> [Difference]   (missing or differing files only)

`generate` and `check` are the services behind `mailwarden config`: the files hold database
credentials, so they require Permission.STACK_CONFIG (superadmins, and the local operator).
"""

from __future__ import annotations

import difflib
import grp
import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings

from . import dovecot, postfix
from .target import DeployTarget

__all__ = [
    "Daemon",
    "Difference",
    "FileStatus",
    "WrittenFile",
    "check",
    "check_deployed",
    "compare_deployed",
    "file_mode",
    "generate",
    "redact",
    "render_dovecot",
    "render_postfix",
    "write_rendered",
]

# A secret file given to the daemon's group; one that could not be given to it; the others.
SECRET_MODE: Final = 0o640
PRIVATE_MODE: Final = 0o600
PUBLIC_MODE: Final = 0o644
REDACTED: Final = "<redacted>"

# From `password = ` (Postfix maps), `password=` (Dovecot connect strings) or `&password=`
# (a postgresql:// URI) to the end of the line: the generated files put the password last on
# its line, and a value with spaces or quotes can then never leak half of itself.
_PASSWORD_VALUE = re.compile(r"(\bpassword[ \t]*=[ \t]*).*$", re.MULTILINE)
# A Dovecot setting whose value is double-quoted (`connect = "... password=..."`): its closing
# quote is kept, so that a preview stays a valid settings file. Only in Dovecot's files: a
# Postfix value is never quoted, and a quote at its end belongs to the password.
_QUOTED_SETTING = re.compile(r'[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=[ \t]*".*"')
_DOVECOT_SETTINGS_FILES: Final = (".conf", ".conf.ext")


class Daemon(StrEnum):
    POSTFIX = "postfix"
    DOVECOT = "dovecot"

    @property
    def group(self) -> str:
        """The group whose processes read the secret files (proxymap; auth and dict)."""
        return self.value


class FileStatus(StrEnum):
    SAME = "same"
    DIFFERS = "differs"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Difference:
    """One generated file compared with the deployed one; `diff` never shows a secret."""

    file: str
    status: FileStatus
    diff: str = ""


def render_postfix(settings: Settings, target: DeployTarget) -> dict[str, str]:
    """main.cf.mailwarden, master.cf.mailwarden and mailwarden/*.cf, relative to postfix_dir."""
    return postfix.render(settings, target)


def render_dovecot(settings: Settings, target: DeployTarget) -> dict[str, str]:
    """conf.d/90-mailwarden.conf and the files it names, relative to dovecot_dir."""
    return dovecot.render(settings, target)


_RENDERERS: Final[dict[Daemon, Callable[[Settings, DeployTarget], dict[str, str]]]] = {
    Daemon.POSTFIX: render_postfix,
    Daemon.DOVECOT: render_dovecot,
}


def file_mode(relative: str) -> int:
    """0640 for files holding the database password or the master user's hash (readable by the
    daemon's group; `write_rendered` makes them 0600 where it cannot give them to it), else
    0644."""
    secret = (
        relative.startswith("mailwarden/")
        or relative.endswith(".conf.ext")
        or relative == dovecot.MASTER_USERS
    )
    return SECRET_MODE if secret else PUBLIC_MODE


def redact(relative: str, text: str) -> str:
    """The file's text with every password (and the master user's hash) replaced."""
    if relative == dovecot.MASTER_USERS:
        return "\n".join(
            f"{line.partition(':')[0]}:{REDACTED}" if ":" in line else line
            for line in text.split("\n")
        )
    quoted_values = relative.endswith(_DOVECOT_SETTINGS_FILES)

    def hide(match: re.Match[str]) -> str:
        line = text[text.rfind("\n", 0, match.start()) + 1 : match.end()]
        closing = '"' if quoted_values and _QUOTED_SETTING.fullmatch(line) else ""
        return f"{match.group(1)}{REDACTED}{closing}"

    # Lines end at "\n" only, as the daemons read them (not at str.splitlines' other breaks).
    return _PASSWORD_VALUE.sub(hide, text)


# --- services --------------------------------------------------------------------------------


def generate(uow: UnitOfWork, actor: Actor, daemon: Daemon, target: DeployTarget) -> dict[str, str]:
    """The files for `daemon`; they hold database credentials: superadmins only."""
    require(actor, Permission.STACK_CONFIG)
    return _RENDERERS[daemon](uow.settings, target)


def check(
    uow: UnitOfWork, actor: Actor, daemon: Daemon, target: DeployTarget, directory: Path
) -> list[Difference]:
    """Every generated file of `daemon` compared with `directory`, same ones included."""
    rendered = generate(uow, actor, daemon, target)
    password = uow.settings.sieve_master_password
    return compare_deployed(
        rendered,
        directory,
        sieve_master_password=None if password is None else password.get_secret_value(),
        group=daemon.group,
    )


# --- comparing -------------------------------------------------------------------------------


def check_deployed(
    rendered: dict[str, str],
    directory: Path,
    *,
    sieve_master_password: str | None = None,
    group: str | None = None,
) -> list[Difference]:
    """The rendered files that are missing from `directory` or differ there; [] = up to date.

    The master-users file holds a salted hash, different at every rendering: given the
    configured password, a deployed file counts as the same when its hash verifies it for the
    same user. Without the password it must match byte for byte.

    A secret file readable by other users differs whatever its content; so does one readable
    by its group when `group` (the daemon's) is given and the file's group is another one.
    """
    return [
        difference
        for difference in compare_deployed(
            rendered, directory, sieve_master_password=sieve_master_password, group=group
        )
        if difference.status is not FileStatus.SAME
    ]


def compare_deployed(
    rendered: dict[str, str],
    directory: Path,
    *,
    sieve_master_password: str | None = None,
    group: str | None = None,
) -> list[Difference]:
    """One Difference per rendered file, in path order, `same` ones included."""
    return [
        _compare(relative, rendered[relative], directory, sieve_master_password, group)
        for relative in sorted(rendered)
    ]


def _compare(
    relative: str,
    expected: str,
    directory: Path,
    sieve_master_password: str | None,
    group: str | None,
) -> Difference:
    path = directory / relative
    try:
        deployed = path.read_text(encoding="utf-8")
        info = path.stat()
    except FileNotFoundError:
        return Difference(relative, FileStatus.MISSING)
    except (UnicodeDecodeError, IsADirectoryError):
        return Difference(relative, FileStatus.DIFFERS, f"{path} is not a text file\n")
    if file_mode(relative) == SECRET_MODE:
        exposed = _exposed_secret(path, info, group)
        if exposed:
            return Difference(relative, FileStatus.DIFFERS, exposed)
    if deployed == expected or (
        relative == dovecot.MASTER_USERS
        and sieve_master_password is not None
        and _same_master_user(deployed, expected, sieve_master_password)
    ):
        return Difference(relative, FileStatus.SAME)
    return Difference(relative, FileStatus.DIFFERS, _diff(relative, deployed, expected, path))


def _exposed_secret(path: Path, info: os.stat_result, group: str | None) -> str:
    """Why users other than the owner and the daemon can read this secret file, or ""."""
    mode = stat.S_IMODE(info.st_mode)
    wanted = (
        f"{SECRET_MODE:04o} with group {group}"
        if group
        else f"{SECRET_MODE:04o} or {PRIVATE_MODE:04o}"
    )
    if mode & 0o007:
        return (
            f"{path} has mode {mode:04o}: every local user can read the secret in it; "
            f"it should be {wanted}\n"
        )
    if group is None or not mode & 0o070 or info.st_gid == _group_id_or_none(group):
        return ""
    owner_group = _group_name(info.st_gid)
    return (
        f"{path} has mode {mode:04o} and group {owner_group}: every member of {owner_group} can "
        f"read the secret in it; it should be {wanted}\n"
    )


def _group_id_or_none(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _same_master_user(deployed: str, expected: str, password: str) -> bool:
    deployed_lines = [line for line in deployed.splitlines() if line.strip()]
    if len(deployed_lines) != 1:
        return False
    user, _, stored = deployed_lines[0].partition(":")
    expected_user = expected.partition(":")[0]
    return user == expected_user and verify_password(password, stored)


def _diff(relative: str, deployed: str, expected: str, path: Path) -> str:
    before = redact(relative, deployed)
    after = redact(relative, expected)
    if before == after:
        # Only a secret differs; say so without showing either value.
        what = "master user's password" if relative == dovecot.MASTER_USERS else "password"
        return f"{path}: the {what} differs (not shown)\n"
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (deployed)",
            tofile=f"{relative} (generated)",
        )
    )


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """One file as `write_rendered` left it: `group` is set when a secret file was given to the
    daemon's group (mode 0640); a secret file it could not give away is 0600."""

    relative: str
    path: Path
    mode: int
    group: str | None = None

    @property
    def needs_daemon_group(self) -> bool:
        """A secret file that only its owner reads: it must be given to the daemon's group
        where it is installed."""
        return self.mode == PRIVATE_MODE


def write_rendered(
    rendered: dict[str, str], directory: Path, *, group: str | None = None
) -> list[WrittenFile]:
    """Write every file below `directory` (created as needed), each replaced atomically.

    A secret file is given to `group` (the daemon's, whose unprivileged processes read it) and
    made 0640 when that works: as root, or as a member of that group. Otherwise it is 0600,
    never readable through whatever group the writer happens to have. As root, a `group` that
    does not exist is refused before anything is written: the files would be root's alone and
    the daemon would fail only when it first reads them.
    """
    gid = _daemon_group_id(group)
    written: list[WrittenFile] = []
    for relative in sorted(rendered):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = file_mode(relative) == SECRET_MODE
        # A temporary file in the same directory, private (0600) from its creation, then
        # renamed: a reader never sees half a file, and the secret is never readable by others.
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(rendered[relative])
            given = secret and _give_to_group(temporary, gid)
            if not secret:
                mode = PUBLIC_MODE
            elif given:
                mode = SECRET_MODE
            else:
                mode = PRIVATE_MODE
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(WrittenFile(relative, path, mode, group if given else None))
    return written


def _daemon_group_id(group: str | None) -> int | None:
    if group is None:
        return None
    gid = _group_id_or_none(group)
    if gid is None and os.geteuid() == 0:
        raise ValidationError(
            "group",
            "unknown_group",
            f"there is no group {group!r} here, so the files that hold the database "
            f"password cannot be given to it and {group} could not read them: install "
            f"{group} first, or write them as another user than root (they are then 0600, "
            "to be given to the group where they are installed)",
        )
    return gid


def _give_to_group(path: str, gid: int | None) -> bool:
    if gid is None:
        return False
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        # Not root and not a member of the group: the file stays private.
        return False
    return True
