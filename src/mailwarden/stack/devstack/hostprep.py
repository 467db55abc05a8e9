"""Host preparation for a devstack: the mail owner, reachable directories, the SQLite file.

Every check names what is wrong and the command that fixes it.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .errors import DevstackError

# Postfix's daemons and Dovecot's dict both reach a SQLite database through this group: Postfix
# drops supplementary groups, so its primary group is the one they can share (the devstack's
# dovecot.conf gives Dovecot's dict service `extra_groups = postfix`).
DATABASE_GROUP = "postfix"
DOVECOT_USER = "dovecot"
POSTFIX_USER = "postfix"
_ACCOUNT_ATTEMPTS = 10
# What useradd accepts (and nothing it could read as an option).
_ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


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
        # useradd/groupadd with an account name checked against _ACCOUNT_NAME: no shell.
        done = subprocess.run(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
        if done.returncode == 0 or exists():
            return
        error = done.stderr.decode(errors="replace").strip()
        # Another devstack starting at the same moment holds the lock on /etc/passwd.
        time.sleep(0.2)
    raise DevstackError(f"`{shlex.join(argv)}` failed: {error}")


def ensure_mail_owner(user: str, group: str) -> tuple[int, int]:
    """uid and gid of the mail owner, created as a system account when missing (as root)."""
    for name, value in (("MAILWARDEN_VMAIL_USER", user), ("MAILWARDEN_VMAIL_GROUP", group)):
        if not _ACCOUNT_NAME.fullmatch(value):
            raise DevstackError(f"{name}={value!r} is not a user or group name such as vmail")
    if not user_exists(user) or not group_exists(group):
        if os.geteuid() != 0:
            raise DevstackError(
                f"the mail owner {user}:{group} does not exist; create it (as root: "
                f"useradd --system --no-create-home --shell /usr/sbin/nologin {user}) or set "
                "MAILWARDEN_VMAIL_USER and MAILWARDEN_VMAIL_GROUP to an existing account"
            )
        _add_account(["groupadd", "--system", group], lambda: group_exists(group))
        _add_account(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--gid",
                group,
                user,
            ],
            lambda: user_exists(user),
        )
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


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
    return [database.with_name(name) for name in names if database.with_name(name).exists()]


def share_sqlite_database(database: Path, stack_root: Path) -> None:
    """Give a SQLite file inside the devstack directory to the group the daemons share.

    Postfix reads it, Dovecot's dict writes `quota_usage` into it, and in WAL mode every reader
    also writes the `-shm` index and may create it: so the file is group read-write and its
    directory group-writable and setgid (new `-wal`/`-shm` files keep the group).
    """
    directory = database.parent
    if directory == stack_root:
        # The directory becomes group-only, and everything else below --dir must stay
        # reachable by the daemons and the mail owner.
        raise DevstackError(
            f"put the SQLite database {database} in a subdirectory of {stack_root} "
            f"(e.g. {stack_root / 'db' / database.name}), not directly in it"
        )
    gid = grp.getgrnam(DATABASE_GROUP).gr_gid
    os.chown(directory, -1, gid)
    directory.chmod(0o2770)
    for path in _sqlite_files(database):
        os.chown(path, -1, gid)
        path.chmod(0o660)


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
