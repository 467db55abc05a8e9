"""Files and directories of a devstack, handled by root in a place others may have touched first.

`devstack up` runs as root, usually below /tmp, where any local user can create a name before
we do. So:
- --dir and every directory above it are checked without following symlinks: a symlink
  anywhere in the path is refused, and no directory on the way may be writable by anyone but
  root and us (sticky directories such as /tmp excepted: there nobody can rename our entries).
- A directory is either created here or used only when it is a real directory owned by us (or
  by the account the devstack gave it to) that nobody else can write to, except the group the
  devstack itself shared it with. Owners and modes are then set through a descriptor opened with
  O_NOFOLLOW on exactly what was created or checked, never through a path.
- Files are written by rename (mkstemp + os.replace: a symlink in the way is replaced, never
  followed), logs opened with O_NOFOLLOW, a secret read only from a private regular file.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import DevstackError

# Whatever a devstack reads back (a pid, its ports, a password, a log tail) is small.
_READ_LIMIT = 64 * 1024
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def _account(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


# --- the path of --dir ---------------------------------------------------------------------------


def stack_directory(directory: Path) -> Path:
    """--dir as an absolute path; refused when a symlink or a non-directory lies on its way.

    Nothing is resolved: the daemons are given exactly the directories that were checked.
    """
    path = Path(os.path.abspath(directory))
    for part in (*reversed(path.parents), path):
        info = _lstat(part)
        if info is None:
            # Nothing exists below a missing directory.
            break
        if stat.S_ISLNK(info.st_mode):
            what = "--dir" if part == path else f"{part}, on the way to --dir,"
            raise DevstackError(
                f"{what} is a symbolic link (to {os.path.realpath(part)}): the devstack writes "
                "configuration as root and never follows one; give a real directory"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise DevstackError(f"{part} is not a directory")
    return path


def check_location(root: Path) -> None:
    """Before writing below `root`: nobody but root and us can change what its path leads to.

    Every existing directory above it belongs to root or to us and is writable by no one else
    unless it is sticky; `root` itself, when it exists, is ours and writable by no one else.
    """
    euid = os.geteuid()
    for parent in reversed(root.parents):
        info = _lstat(parent)
        if info is None:
            break
        sticky = bool(info.st_mode & stat.S_ISVTX)
        if info.st_uid not in (0, euid) or (info.st_mode & _WRITABLE_BY_OTHERS and not sticky):
            raise DevstackError(
                f"{parent} (above --dir) belongs to {_account(info.st_uid)} with mode "
                f"{stat.S_IMODE(info.st_mode):04o}: someone other than root could replace "
                "--dir after it was checked; choose a --dir under /tmp or a directory of root's"
            )
    info = _lstat(root)
    if info is not None:
        _check_directory(root, info, Ownership(uid=euid, mode=None))


# --- directories ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ownership:
    """Owner and mode the devstack gives a directory it makes (mode None: left as it is)."""

    uid: int
    mode: int | None
    # -1: the group stays. A group-writable `mode` shares the directory with this group alone.
    gid: int = -1

    def allows_group_write(self, gid: int) -> bool:
        return self.mode is not None and bool(self.mode & stat.S_IWGRP) and gid == self.gid


def _check_directory(path: Path, info: os.stat_result, ownership: Ownership) -> None:
    """An existing directory is used only when nobody else could have put anything into it."""
    if not stat.S_ISDIR(info.st_mode):
        raise DevstackError(
            f"{path} exists and is not a directory; remove it or choose another --dir"
        )
    owners = {os.geteuid(), ownership.uid}
    mode = stat.S_IMODE(info.st_mode)
    others_write = mode & stat.S_IWOTH or (
        mode & stat.S_IWGRP and not ownership.allows_group_write(info.st_gid)
    )
    if info.st_uid not in owners or others_write:
        raise DevstackError(
            f"{path} exists, owned by {_account(info.st_uid)}:{_group(info.st_gid)} with mode "
            f"{mode:04o}: the devstack uses only directories it made itself (owned by "
            f"{' or '.join(sorted(_account(uid) for uid in owners))}, writable by nobody else); "
            "remove it or choose another --dir"
        )


def make_directory(path: Path, ownership: Ownership) -> None:
    """Create `path`, or check the existing one; then give it its owner and mode.

    Its parent must already be one nobody else can write to (checked by the caller), so the
    name cannot be swapped between the check and the change, which go through one descriptor.
    """
    created = False
    try:
        # Private until its owner and mode are set below.
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        pass
    with _open_directory(path) as descriptor:
        if not created:
            _check_directory(path, os.fstat(descriptor), ownership)
        if ownership.uid != os.geteuid() or ownership.gid != -1:
            os.fchown(descriptor, ownership.uid, ownership.gid)
        if ownership.mode is not None:
            os.fchmod(descriptor, ownership.mode)
        elif created:
            os.fchmod(descriptor, 0o755)


@contextlib.contextmanager
def _open_directory(path: Path) -> Iterator[int]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DevstackError(
                f"{path} exists and is not a directory (a symbolic link or a file): remove it "
                "or choose another --dir"
            ) from None
        raise DevstackError(f"cannot open {path}: {error.strerror}") from None
    try:
        yield descriptor
    finally:
        os.close(descriptor)


# --- files ---------------------------------------------------------------------------------------


def _open_regular(path: Path, flags: int, mode: int = 0o600) -> tuple[int, os.stat_result]:
    """A descriptor of a regular file, never through a symlink (nor a FIFO that would block)."""
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DevstackError(f"{path} is a symbolic link; remove it") from None
        raise
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise DevstackError(f"{path} is not a regular file; remove it")
    return descriptor, info


def read_small_file(path: Path) -> str | None:
    """The start of a file the devstack or a daemon wrote (pid, state), or None if unusable.

    A file we may not read is an error, not an absence: the daemons keep their pid files
    private, so only root can tell whether they run.
    """
    try:
        descriptor, _ = _open_regular(path, os.O_RDONLY)
    except PermissionError:
        raise DevstackError(
            f"{_account(os.geteuid())} may not read {path}: run this as root"
        ) from None
    except (OSError, DevstackError):
        return None
    try:
        return os.read(descriptor, _READ_LIMIT).decode(errors="replace")
    finally:
        os.close(descriptor)


def read_tail(path: Path) -> str:
    """The end of a log file (at most 64 KiB), "" when it cannot be read."""
    try:
        descriptor, info = _open_regular(path, os.O_RDONLY)
    except (OSError, DevstackError):
        return ""
    try:
        os.lseek(descriptor, max(info.st_size - _READ_LIMIT, 0), os.SEEK_SET)
        return os.read(descriptor, _READ_LIMIT).decode(errors="replace")
    finally:
        os.close(descriptor)


def open_log(path: Path) -> int:
    """A descriptor to append to a log: an existing regular file or a new one, never a symlink.

    The caller closes it.
    """
    try:
        descriptor, info = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except OSError as error:
        raise DevstackError(f"cannot open the log {path}: {error.strerror}") from None
    if info.st_nlink != 1:
        os.close(descriptor)
        raise DevstackError(f"{path} has other hard links; remove it")
    return descriptor


def is_regular_file(path: Path) -> bool:
    info = _lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def read_private_file(path: Path) -> str:
    """A secret the devstack keeps: only from a regular file of ours with mode 0600."""
    descriptor, info = _open_regular(path, os.O_RDONLY)
    try:
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or mode != 0o600 or info.st_nlink != 1:
            raise DevstackError(
                f"{path} must be a file of {_account(os.geteuid())} with mode 0600 (it is "
                f"{_account(info.st_uid)}'s, mode {mode:04o}); remove it and run up again"
            )
        return os.read(descriptor, _READ_LIMIT).decode()
    finally:
        os.close(descriptor)


def create_private_file(path: Path, text: str) -> None:
    """A new file with mode 0600; an existing name (a file, a symlink) is never reused."""
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except FileExistsError:
        raise DevstackError(
            f"{path} appeared while the devstack was starting; run up again"
        ) from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def share_file(path: Path, gid: int, mode: int, owners: set[int]) -> None:
    """Give an existing regular file to a group: never through a symlink or onto a hard link."""
    descriptor, info = _open_regular(path, os.O_RDONLY)
    try:
        if info.st_nlink != 1 or info.st_uid not in owners:
            raise DevstackError(
                f"{path} belongs to {_account(info.st_uid)} or has other hard links; the "
                "devstack shares only its own database files"
            )
        os.fchown(descriptor, -1, gid)
        os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)
