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

SECRET_MODE: Final = 0o640
PUBLIC_MODE: Final = 0o644
REDACTED: Final = "<redacted>"

# From `password = ` (Postfix maps) or `password=` (Dovecot connect strings) to the end of the
# line: the generated files put the password last on its line, and a value with spaces or
# quotes can then never leak half of itself.
_PASSWORD_VALUE = re.compile(r"(\bpassword[ \t]*=[ \t]*).*$", re.MULTILINE)


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
    """0640 for files holding the database password or the master user's hash, else 0644."""
    secret = (
        relative.startswith("mailwarden/")
        or relative.endswith(".conf.ext")
        or relative == dovecot.MASTER_USERS
    )
    return SECRET_MODE if secret else PUBLIC_MODE


def redact(relative: str, text: str) -> str:
    """The file's text with every password (and the master user's hash) replaced."""
    if relative == dovecot.MASTER_USERS:
        return "".join(
            f"{line.partition(':')[0]}:{REDACTED}\n" if ":" in line else line + "\n"
            for line in text.splitlines()
        )
    return _PASSWORD_VALUE.sub(rf"\1{REDACTED}", text)


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
    )


# --- comparing -------------------------------------------------------------------------------


def check_deployed(
    rendered: dict[str, str], directory: Path, *, sieve_master_password: str | None = None
) -> list[Difference]:
    """The rendered files that are missing from `directory` or differ there; [] = up to date.

    The master-users file holds a salted hash, different at every rendering: given the
    configured password, a deployed file counts as the same when its hash verifies it for the
    same user. Without the password it must match byte for byte.
    """
    return [
        difference
        for difference in compare_deployed(
            rendered, directory, sieve_master_password=sieve_master_password
        )
        if difference.status is not FileStatus.SAME
    ]


def compare_deployed(
    rendered: dict[str, str], directory: Path, *, sieve_master_password: str | None = None
) -> list[Difference]:
    """One Difference per rendered file, in path order, `same` ones included."""
    return [
        _compare(relative, rendered[relative], directory, sieve_master_password)
        for relative in sorted(rendered)
    ]


def _compare(
    relative: str, expected: str, directory: Path, sieve_master_password: str | None
) -> Difference:
    path = directory / relative
    try:
        deployed = path.read_text(encoding="utf-8")
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return Difference(relative, FileStatus.MISSING)
    except (UnicodeDecodeError, IsADirectoryError):
        return Difference(relative, FileStatus.DIFFERS, f"{path} is not a text file\n")
    if file_mode(relative) == SECRET_MODE and mode & 0o007:
        return Difference(
            relative,
            FileStatus.DIFFERS,
            f"{path} has mode {mode:04o}: every local user can read the secret in it; "
            f"it should be {SECRET_MODE:04o}\n",
        )
    if deployed == expected or (
        relative == dovecot.MASTER_USERS
        and sieve_master_password is not None
        and _same_master_user(deployed, expected, sieve_master_password)
    ):
        return Difference(relative, FileStatus.SAME)
    return Difference(relative, FileStatus.DIFFERS, _diff(relative, deployed, expected, path))


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


def write_rendered(
    rendered: dict[str, str], directory: Path, *, group: str | None = None
) -> list[Path]:
    """Write every file below `directory` (created as needed), each replaced atomically.

    Secret files get mode 0640; when `group` names an existing group and we run as root, they
    are given to that group so the daemon's unprivileged processes can read them.
    """
    gid = _group_id(group)
    written: list[Path] = []
    for relative in sorted(rendered):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = file_mode(relative)
        # A temporary file in the same directory, made private before a byte is written, then
        # renamed: a reader never sees half a file, and the secret is never world-readable.
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(rendered[relative])
            if gid is not None and mode == SECRET_MODE:
                os.chown(temporary, -1, gid)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(path)
    return written


def _group_id(group: str | None) -> int | None:
    if group is None or os.geteuid() != 0:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None
