"""What `devstack up` checks on the host before it starts anything, run for real (as root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwarden.stack.devstack import DevstackError
from mailwarden.stack.devstack.hostprep import (
    DATABASE_GROUP,
    check_reachable,
    check_sqlite_database,
    share_sqlite_database,
    user_exists,
)

from .conftest import unavailable


@pytest.fixture
def work_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        unavailable("these checks change owners and switch users, which needs root")
    if not (user_exists("postfix") and user_exists("dovecot")):
        unavailable("the users postfix and dovecot come with the Debian packages of the stack")
    directory = Path(tempfile.mkdtemp(prefix="mw-e2e-host-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_directory_the_daemons_cannot_enter_is_refused(work_dir: Path) -> None:
    private = work_dir / "private"
    private.mkdir(mode=0o700)
    stack_dir = private / "stack"
    stack_dir.mkdir()

    with pytest.raises(DevstackError) as refused:
        check_reachable(stack_dir, ["postfix", "dovecot"])

    assert str(refused.value).startswith(f"{stack_dir} cannot be entered by postfix, dovecot")
    check_reachable(work_dir, ["postfix", "dovecot"])


def test_a_sqlite_file_elsewhere_is_checked_and_the_fix_named(work_dir: Path) -> None:
    database = work_dir / "data" / "mailwarden.db"
    database.parent.mkdir()
    database.write_bytes(b"")
    database.chmod(0o600)

    with pytest.raises(DevstackError) as refused:
        check_sqlite_database(database)

    message = str(refused.value)
    assert f"the SQLite database {database} must be readable and writable by postfix" in message
    assert f"chgrp {DATABASE_GROUP} {database.parent} {database}" in message


def test_a_sqlite_file_inside_the_stack_is_shared_with_the_daemons(work_dir: Path) -> None:
    database = work_dir / "db" / "mailwarden.db"
    database.parent.mkdir()
    database.write_bytes(b"")
    database.chmod(0o600)

    share_sqlite_database(database, work_dir)

    check_sqlite_database(database)
    assert database.parent.stat().st_mode & 0o7777 == 0o2770
    assert database.stat().st_mode & 0o777 == 0o660


def test_a_sqlite_file_directly_in_the_stack_directory_is_refused(work_dir: Path) -> None:
    database = work_dir / "mailwarden.db"
    database.write_bytes(b"")

    with pytest.raises(DevstackError, match="in a subdirectory of"):
        share_sqlite_database(database, work_dir)
    assert work_dir.stat().st_mode & 0o777 == 0o755
