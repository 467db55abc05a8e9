"""Maildirs on the mail host: find one safely, delete it, or archive it as a .tar.gz first.

The `maildir` column is relative to the mail root (`example.org/alice/`). Whatever the column
holds (an import, a hand edit, a tampered row), nothing outside the mail root, nor the mail root
itself, is ever deleted: the path is checked lexically (no absolute path, no `..`) and then
resolved, and any symbolic link on the way is refused, because a link inside the root can point
at another mailbox or outside the root. `shutil.rmtree` then removes the tree without following
links (its fd-based implementation on Linux).

Every failure is a `MaildirError` naming the maildir (or the mail root, or the archive
directory) and saying why. The purge calls this before it deletes the mailbox's row and keeps
the row when it fails, so a maildir is never left on disk without the row that explains it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path, PurePosixPath

# The archive holds a user's mail: readable by the owner (root or vmail) only.
ARCHIVE_MODE = 0o600
ARCHIVE_DIR_MODE = 0o700


class MaildirState(StrEnum):
    PRESENT = "present"
    # Never delivered to (Dovecot creates the directory on first delivery or login).
    MISSING = "missing"


class MaildirError(Exception):
    """A maildir, the mail root or the archive directory could not be used: `what` names it,
    `reason` says why and what was left (a deletion that fails half-way leaves the rest)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


def _refuse(maildir: str, reason: str) -> MaildirError:
    return MaildirError(f"maildir {maildir!r}", reason)


def _failed(path: Path, reason: str) -> MaildirError:
    return MaildirError(f"maildir {path}", reason)


def mail_root_of(mail_root: Path) -> Path:
    """The resolved mail root; MaildirError when it is not an existing directory.

    A missing root is not "nothing to delete": it means this is not the mail host (or the
    setting is wrong), and treating every maildir as missing would orphan them all.
    """
    try:
        root = mail_root.resolve(strict=True)
    except OSError as exc:
        raise MaildirError(
            f"mail root {mail_root}", f"not found ({exc.strerror}); is MAILWARDEN_MAIL_ROOT right?"
        ) from None
    if not root.is_dir():
        raise MaildirError(f"mail root {mail_root}", "is not a directory")
    return root


def relative_parts(maildir: str) -> tuple[str, ...]:
    """The maildir's path components below the mail root; MaildirError when it escapes."""
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

    The archive is written under a temporary name, synced, and only then given its final name
    and the maildir deleted: a failure at any step leaves the maildir untouched. An existing
    archive is never overwritten: a second one of the same name becomes `name-2.tar.gz`.
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
    temporary: Path | None = None
    try:
        # mkstemp creates the file 0600 with O_EXCL; the chmod only makes the mode explicit.
        handle, temporary_name = tempfile.mkstemp(
            dir=target_dir, prefix=".", suffix=".tar.gz.partial"
        )
        temporary = Path(temporary_name)
        with os.fdopen(handle, "wb") as raw:
            os.fchmod(raw.fileno(), ARCHIVE_MODE)
            # Links are stored as links (never followed), so the archive holds only this tree.
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                tar.add(path, arcname="/".join(relative_parts(maildir)), recursive=True)
            raw.flush()
            os.fsync(raw.fileno())
        target = _publish(temporary, target_dir, name)
    except (OSError, tarfile.TarError) as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise _failed(
            path, f"could not be archived in {target_dir} ({exc}); left in place"
        ) from None
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise _failed(path, f"archived to {target} but not deleted completely ({exc})") from None
    return path, state, target


def _archive_names(directory: Path, name: str) -> Iterator[Path]:
    yield directory / f"{name}.tar.gz"
    for counter in itertools.count(2):
        yield directory / f"{name}-{counter}.tar.gz"


def _publish(temporary: Path, directory: Path, name: str) -> Path:
    """Give the finished archive the first free name; an existing archive is never replaced.

    The name is claimed with O_EXCL before the rename, so two purges running at once cannot
    pick the same one (a plain exists() check followed by a rename could overwrite).
    """
    for target in _archive_names(directory, name):
        try:
            claim = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ARCHIVE_MODE)
        except FileExistsError:
            continue
        os.close(claim)
        try:
            os.replace(temporary, target)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return target
    raise AssertionError("unreachable: the names never run out")


def existing_archives(archive_dir: Path, name: str) -> list[Path]:
    """Archives already written under `name` (`name.tar.gz`, `name-2.tar.gz`, ...), in order.

    A purge interrupted after archiving a maildir but before deleting its row finds the
    maildir gone the next time; these say where its mail went.
    """
    found = []
    for candidate in _archive_names(archive_dir, name):
        if not candidate.is_file():
            break
        found.append(candidate)
    return found


def leftover(mail_root: Path, maildir: str) -> Path | None:
    """The maildir's path when something is already there on this host, else None.

    For a new mailbox: files left at its maildir (by an earlier mailbox of the same address)
    would become its mail. None as well when the mail root is not on this host (mailwarden may
    run elsewhere) or cannot be read: then there is nothing this host can tell. Symbolic links
    are followed here (a domain directory linked to another disk is common); only the purge
    refuses them.
    """
    try:
        parts = relative_parts(maildir)
    except MaildirError:
        return None  # not a path this host can look at; the purge refuses it with its reason
    path = mail_root.joinpath(*parts)
    try:
        if not mail_root.is_dir():
            return None
        if not path.is_dir():
            return path if path.exists() or path.is_symlink() else None
        with os.scandir(path) as entries:
            return path if next(entries, None) is not None else None
    except OSError:
        return None


def check_archive_dir(archive_dir: Path) -> None:
    """MaildirError unless archives can be written there; reads only (for a pre-flight).

    Checked before any maildir is handled, so that a purge that cannot archive stops before
    it starts rather than failing on every mailbox.
    """
    existing = archive_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise MaildirError(f"archive directory {archive_dir}", f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MaildirError(f"archive directory {archive_dir}", f"{existing} is not writable")
