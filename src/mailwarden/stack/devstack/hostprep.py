"""Host preparation for a devstack: the mail owner, reachable directories, the SQLite file.

Every check names what is wrong and the command that fixes it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DevstackError
from .fs import Ownership, make_directory, share_file
from .instance import StackLayout

# Postfix's daemons and Dovecot's dict both reach a SQLite database through this group: Postfix
# drops supplementary groups, so its primary group is the one they can share (the devstack's
# dovecot.conf gives Dovecot's dict service `extra_groups = postfix`).
DATABASE_GROUP = "postfix"
DOVECOT_USER = "dovecot"
POSTFIX_USER = "postfix"
_ACCOUNT_ATTEMPTS = 10
# The database directory inside --dir: group postfix may write (new -wal/-shm files), setgid so
# that those files keep the group.
SHARED_DATABASE_DIRECTORY_MODE = 0o2770
SHARED_DATABASE_FILE_MODE = 0o660


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _add_account(argv: list[str], exists: Callable[[], bool]) -> None:
    """Run useradd/groupadd, tolerating a concurrent creation of the same account."""
    error = ""
    for _ in range(_ACCOUNT_ATTEMPTS):
        if exists():
            return
        # useradd/groupadd as an argv list, the name after `--`: no shell, never an option.
        done = subprocess.run(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
        if done.returncode == 0 or exists():
            return
        error = done.stderr.decode(errors="replace").strip()
        # Another devstack starting at the same moment holds the lock on /etc/passwd.
        time.sleep(0.2)
    raise DevstackError(f"`{shlex.join(argv)}` failed: {error}")


@dataclass(frozen=True, slots=True)
class MailOwner:
    uid: int
    gid: int
    # The account was created just now (so the Dovecot fragment must be rendered again: it
    # names the owner's uid when that is below Dovecot's first_valid_uid).
    created: bool


def ensure_mail_owner(user: str, group: str) -> MailOwner:
    """The mail owner, created as a system account when missing (as root).

    The names are not checked here: `up` renders the Dovecot configuration first, and its rule
    for account names (mailwarden.stack.dovecot) is the one rule; useradd and groupadd still
    refuse what they cannot take, and get the name after `--`, so it is never an option.
    """
    created = False
    if not user_exists(user) or not group_exists(group):
        if os.geteuid() != 0:
            raise DevstackError(
                f"the mail owner {user}:{group} does not exist; create it (as root: "
                f"useradd --system --no-create-home --shell /usr/sbin/nologin {user}) or set "
                "MAILWARDEN_VMAIL_USER and MAILWARDEN_VMAIL_GROUP to an existing account"
            )
        _add_account(["groupadd", "--system", "--", group], lambda: group_exists(group))
        _add_account(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--gid",
                group,
                "--",
                user,
            ],
            lambda: user_exists(user),
        )
        created = True
    return MailOwner(pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid, created)


def _as_user_test(user: str, expression: list[str], extra_groups: list[str]) -> bool:
    """`test EXPRESSION` run with the identity of `user`: the kernel's answer, ACLs included."""
    entry = pwd.getpwnam(user)
    groups = ",".join(extra_groups) if extra_groups else ""
    argv = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--",
        "test",
        *expression,
    ]
    done = subprocess.run(  # noqa: S603 - setpriv and test(1) with paths as argv elements
        argv, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    return done.returncode == 0


def check_reachable(directory: Path, users: list[str]) -> None:
    """Every user must be able to enter `directory`, so each parent needs search permission."""
    blocked = [user for user in users if not _as_user_test(user, ["-x", str(directory)], [])]
    if blocked:
        raise DevstackError(
            f"{directory} cannot be entered by {', '.join(blocked)}: the daemons run as those "
            "users, so every parent directory needs search permission (chmod o+x), or choose "
            "another --dir (e.g. under /tmp)"
        )


def _sqlite_files(database: Path) -> list[Path]:
    # SQLite creates its journal and WAL files with the database file's mode and owner.
    names = [database.name, f"{database.name}-wal", f"{database.name}-shm"]
    names.append(f"{database.name}-journal")
    # lexists: a symlink by one of these names is refused when it is opened, not skipped.
    return [database.with_name(name) for name in names if os.path.lexists(database.with_name(name))]


def share_sqlite_database(database: Path, layout: StackLayout) -> None:
    """Give a SQLite file inside the devstack directory to the group the daemons share.

    Postfix reads it, Dovecot's dict writes `quota_usage` into it, and in WAL mode every reader
    also writes the `-shm` index and may create it: so the file is group read-write and its
    directory group-writable and setgid (new `-wal`/`-shm` files keep the group).

    Nothing is followed or taken over: every directory from --dir down to the database must be
    one the devstack could have made (ours; only the database directory shared with group
    postfix), and only regular files of ours or of the daemons are given to the group.
    """
    stack_root = layout.root
    if not os.path.lexists(database):
        raise DevstackError(
            f"the SQLite database {database} does not exist: run `mailwarden db upgrade`"
        )
    relative = database.parent.relative_to(stack_root)
    if not relative.parts or relative.parts[0] in layout.directory_names():
        # The directory becomes group-only; --dir and the devstack's own directories must
        # keep their modes.
        raise DevstackError(
            f"put the SQLite database {database} in a subdirectory of {stack_root} of its own "
            f"(e.g. {stack_root / 'db' / database.name}), not directly in it nor in one of "
            "the devstack's directories"
        )
    euid = os.geteuid()
    gid = grp.getgrnam(DATABASE_GROUP).gr_gid
    directory = stack_root
    for part in relative.parts[:-1]:
        directory = directory / part
        make_directory(directory, Ownership(uid=euid, mode=None))
    make_directory(
        database.parent, Ownership(uid=euid, mode=SHARED_DATABASE_DIRECTORY_MODE, gid=gid)
    )
    daemons = {euid, pwd.getpwnam(POSTFIX_USER).pw_uid, pwd.getpwnam(DOVECOT_USER).pw_uid}
    for path in _sqlite_files(database):
        share_file(path, gid, SHARED_DATABASE_FILE_MODE, daemons)


def check_sqlite_database(database: Path) -> None:
    """A SQLite file outside the devstack directory: check the daemons can use it, never fix."""
    if not database.is_file():
        raise DevstackError(
            f"the SQLite database {database} does not exist: run `mailwarden db upgrade`"
        )
    directory = database.parent
    need = ["-r", str(database), "-a", "-w", str(database), "-a", "-w", str(directory)]
    lacking = [
        user
        for user, groups in ((POSTFIX_USER, []), (DOVECOT_USER, [DATABASE_GROUP]))
        if not _as_user_test(user, need, groups)
    ]
    if lacking:
        files = " ".join(shlex.quote(str(path)) for path in _sqlite_files(database))
        raise DevstackError(
            f"the SQLite database {database} must be readable and writable by "
            f"{' and '.join(lacking)} (Postfix reads it; Dovecot writes quota usage; WAL "
            "readers write its -shm file), and so must its directory. Run: "
            f"chgrp {DATABASE_GROUP} {shlex.quote(str(directory))} {files} && "
            f"chmod g+rwxs {shlex.quote(str(directory))} && chmod g+rw {files}  "
            "(or put the database inside --dir, where devstack up sets this itself)"
        )
