"""Maildirs on the mail host: find one safely, delete it, or archive it as a .tar.gz first.

The `maildir` column is relative to the mail root (`example.org/alice/`). Whatever the column
holds (an import, a hand edit, a tampered row), nothing outside the mail root, nor the mail root
itself, is ever deleted: the path is checked lexically (no absolute path, no `..`) and then
resolved, and any symbolic link on the way is refused, because a link inside the root can point
at another mailbox or outside the root. `shutil.rmtree` then removes the tree without following
links (its fd-based implementation on Linux).

Everything here runs after the database change has committed, so every failure is reported as
`FollowUpFailed` naming the maildir: the row is gone, the files are left as they were.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
from enum import StrEnum
from pathlib import Path, PurePosixPath

from mailwarden.kernel.errors import FollowUpFailed

# The archive holds a user's mail: readable by the owner (root or vmail) only.
ARCHIVE_MODE = 0o600
ARCHIVE_DIR_MODE = 0o700


class MaildirState(StrEnum):
    PRESENT = "present"
    # Never delivered to (Dovecot creates the directory on first delivery or login).
    MISSING = "missing"


def _refuse(maildir: str, reason: str) -> FollowUpFailed:
    return FollowUpFailed(f"maildir {maildir!r}", reason)


def _failed(path: Path, reason: str) -> FollowUpFailed:
    return FollowUpFailed(f"maildir {path}", reason)


def mail_root_of(mail_root: Path) -> Path:
    """The resolved mail root; FollowUpFailed when it is not an existing directory.

    A missing root is not "nothing to delete": it means this is not the mail host (or the
    setting is wrong), and treating every maildir as missing would orphan them all.
    """
    try:
        root = mail_root.resolve(strict=True)
    except OSError as exc:
        raise FollowUpFailed(
            f"mail root {mail_root}", f"not found ({exc.strerror}); is MAILWARDEN_MAIL_ROOT right?"
        ) from None
    if not root.is_dir():
        raise FollowUpFailed(f"mail root {mail_root}", "is not a directory")
    return root


def relative_parts(maildir: str) -> tuple[str, ...]:
    """The maildir's path components below the mail root; FollowUpFailed when it escapes."""
    if "\x00" in maildir:
        raise _refuse(maildir, "contains a NUL character")
    path = PurePosixPath(maildir)
    if path.is_absolute():
        raise _refuse(maildir, "is an absolute path; maildirs are relative to the mail root")
    if ".." in path.parts:
        raise _refuse(maildir, "contains '..'; refusing a path that may leave the mail root")
    # PurePosixPath drops '.' components and repeated or trailing slashes.
    if not path.parts:
        raise _refuse(maildir, "names the mail root itself")
    return path.parts


def locate(mail_root: Path, maildir: str) -> Path:
    """The absolute path of `maildir`, strictly inside the mail root and free of symlinks."""
    parts = relative_parts(maildir)
    root = mail_root_of(mail_root)
    candidate = root.joinpath(*parts)
    try:
        # Not strict: a missing tail stays as written, which is fine (nothing to delete there).
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise _failed(candidate, f"cannot be resolved ({exc})") from None
    if resolved != candidate:
        raise _failed(
            candidate,
            f"leads through a symbolic link (to {resolved}); refusing to delete through it",
        )
    if resolved == root or not resolved.is_relative_to(root):
        raise _failed(candidate, f"is not strictly inside the mail root {root}")
    return candidate


def probe(mail_root: Path, maildir: str) -> tuple[Path, MaildirState]:
    """Where the maildir is and whether it exists; touches nothing (for dry runs)."""
    path = locate(mail_root, maildir)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path, MaildirState.MISSING
    except OSError as exc:
        raise _failed(path, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _failed(path, "is not a directory; left in place")
    return path, MaildirState.PRESENT


def remove(mail_root: Path, maildir: str) -> tuple[Path, MaildirState]:
    """Delete the maildir tree. A missing maildir is fine: it was never delivered to."""
    path, state = probe(mail_root, maildir)
    if state is MaildirState.PRESENT:
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise _failed(path, f"could not be deleted completely ({exc})") from None
    return path, state


def archive(
    mail_root: Path, maildir: str, archive_dir: Path, name: str
) -> tuple[Path, MaildirState, Path | None]:
    """Write the maildir to `archive_dir/name.tar.gz` (mode 0600), then delete the maildir.

    The archive is written under a temporary name, synced, and only then renamed and the
    maildir deleted: a failure at any step leaves the maildir untouched.
    """
    if not name or name != Path(name).name or name.startswith("."):
        raise _refuse(maildir, f"unsafe archive name {name!r}")
    path, state = probe(mail_root, maildir)
    if state is MaildirState.MISSING:
        return path, state, None
    try:
        archive_dir.mkdir(mode=ARCHIVE_DIR_MODE, parents=True, exist_ok=True)
        target_dir = archive_dir.resolve(strict=True)
    except OSError as exc:
        raise _failed(path, f"archive directory {archive_dir} is unusable ({exc})") from None
    if target_dir == path or target_dir.is_relative_to(path):
        raise _failed(path, f"the archive directory {target_dir} lies inside it; left in place")
    target = _free_name(target_dir, name)
    # mkstemp creates the file 0600 with O_EXCL; the chmod only makes the mode explicit.
    handle, temporary = tempfile.mkstemp(dir=target_dir, prefix=".", suffix=".tar.gz.partial")
    try:
        with os.fdopen(handle, "wb") as raw:
            os.fchmod(raw.fileno(), ARCHIVE_MODE)
            # Links are stored as links (never followed), so the archive holds only this tree.
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                tar.add(path, arcname="/".join(relative_parts(maildir)), recursive=True)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, target)
    except (OSError, tarfile.TarError) as exc:
        Path(temporary).unlink(missing_ok=True)
        raise _failed(path, f"could not be archived to {target} ({exc}); left in place") from None
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise _failed(path, f"archived to {target} but not deleted completely ({exc})") from None
    return path, state, target


def _free_name(directory: Path, name: str) -> Path:
    """`name.tar.gz`, or `name-2.tar.gz`, ...: an earlier archive is never overwritten."""
    target = directory / f"{name}.tar.gz"
    counter = 1
    while target.exists():
        counter += 1
        target = directory / f"{name}-{counter}.tar.gz"
    return target


def check_archive_dir(archive_dir: Path) -> None:
    """FollowUpFailed unless archives can be written there; reads only (for a pre-flight).

    Checked before any row is purged: a maildir whose archive cannot be written stays on disk
    with no row left to say whose it was.
    """
    existing = archive_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise FollowUpFailed(f"archive directory {archive_dir}", f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FollowUpFailed(f"archive directory {archive_dir}", f"{existing} is not writable")
