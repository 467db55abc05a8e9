"""What `devstack` checks on the host before it touches anything, run for real (as root).

`devstack up` runs as root in a directory (usually below /tmp) that others may have prepared:
every directory, file and pid it finds there is checked before it is used, and nothing is ever
followed through a symlink. These tests plant what an attacker would and check that nothing
outside the directory changes. The daemons are not started here (tests/e2e/test_devstack.py
does that); `up` is refused before it would start them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.devstack import (
    DevstackError,
    StackLayout,
    StackPorts,
    down,
    missing_packages,
    status,
    up,
)
from mailwarden.stack.devstack.fs import check_location
from mailwarden.stack.devstack.hostprep import (
    DATABASE_GROUP,
    check_reachable,
    check_sqlite_database,
    share_sqlite_database,
    user_exists,
)
from tests.support.services import POSTGRES_URL

from .conftest import free_ports, unavailable

# Someone else: an account that exists on every Debian system.
OTHER_USER = "nobody"


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


def _owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def _chown_to_other(path: Path) -> None:
    other = pwd.getpwnam(OTHER_USER)
    os.chown(path, other.pw_uid, other.pw_gid)


# --- reachability and the SQLite database -----------------------------------------------------


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

    share_sqlite_database(database, StackLayout(work_dir))
    # Shared once, it is the devstack's own group-writable directory: used again as it is.
    share_sqlite_database(database, StackLayout(work_dir))

    check_sqlite_database(database)
    assert database.parent.stat().st_mode & 0o7777 == 0o2770
    assert database.stat().st_mode & 0o777 == 0o660


@pytest.mark.parametrize("place", [".", "mail", "postfix"])
def test_a_sqlite_file_outside_a_directory_of_its_own_is_refused(
    work_dir: Path, place: str
) -> None:
    database = work_dir / place / "mailwarden.db"
    database.parent.mkdir(exist_ok=True)
    database.write_bytes(b"")
    before = _owner_and_mode(database.parent)

    with pytest.raises(DevstackError, match=r"in a subdirectory of .* of its own"):
        share_sqlite_database(database, StackLayout(work_dir))
    assert _owner_and_mode(database.parent) == before


def test_a_symlinked_database_directory_is_never_given_to_the_daemons(work_dir: Path) -> None:
    victim = work_dir / "victim"
    victim.mkdir(mode=0o700)
    (victim / "mailwarden.db").write_bytes(b"")
    (work_dir / "stack").mkdir()
    (work_dir / "stack" / "db").symlink_to(victim)
    before = _owner_and_mode(victim), _owner_and_mode(victim / "mailwarden.db")

    with pytest.raises(DevstackError, match="is not a directory"):
        share_sqlite_database(
            work_dir / "stack" / "db" / "mailwarden.db", StackLayout(work_dir / "stack")
        )

    assert (_owner_and_mode(victim), _owner_and_mode(victim / "mailwarden.db")) == before


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "foreign"])
def test_only_the_database_files_of_ours_are_given_to_the_daemons(
    work_dir: Path, plant: str
) -> None:
    """Group postfix can write to the database directory: what it plants is never taken over."""
    database = work_dir / "db" / "mailwarden.db"
    database.parent.mkdir()
    database.write_bytes(b"")
    victim = work_dir / "victim"
    victim.write_text("root's\n")
    victim.chmod(0o600)
    wal = database.with_name("mailwarden.db-wal")
    if plant == "symlink":
        wal.symlink_to(victim)
    elif plant == "hardlink":
        os.link(victim, wal)
    else:
        wal.write_bytes(b"")
        _chown_to_other(wal)
    before = _owner_and_mode(victim)

    with pytest.raises(DevstackError, match=re.escape(str(work_dir / "db" / "mailwarden.db-wal"))):
        share_sqlite_database(database, StackLayout(work_dir))

    assert _owner_and_mode(victim) == before


# --- --dir and its directories ----------------------------------------------------------------


def test_a_dir_or_a_parent_of_someone_else_is_refused(work_dir: Path) -> None:
    theirs = work_dir / "theirs"
    theirs.mkdir()
    _chown_to_other(theirs)

    with pytest.raises(DevstackError, match=re.escape(f"{theirs} exists, owned by {OTHER_USER}")):
        check_location(theirs)
    with pytest.raises(
        DevstackError, match=re.escape(f"{theirs} (above --dir) belongs to {OTHER_USER}")
    ):
        check_location(theirs / "stack")


@pytest.fixture
def layout(work_dir: Path) -> Iterator[StackLayout]:
    if missing := missing_packages("pgsql"):
        unavailable(f"Debian packages missing: {' '.join(missing)}")
    layout = StackLayout(work_dir / "s")
    yield layout
    # Should a check fail to refuse, the daemons it started must not outlive the test.
    down(layout)


def _up(layout: StackLayout) -> None:
    # Rendering only needs the URL: `up` never connects to the database.
    settings = Settings(database_url=POSTGRES_URL, password_scheme="SHA256-CRYPT")
    uow = UnitOfWork(Session(), settings, dry_run=True)
    up(uow, Actor.local_operator(Channel.SYSTEM), layout, StackPorts(*free_ports(6)))


def test_a_mail_root_that_is_a_symlink_is_refused_and_its_target_left_alone(
    work_dir: Path, layout: StackLayout
) -> None:
    victim = work_dir / "victim"
    victim.mkdir(mode=0o755)
    layout.root.mkdir()
    layout.mail_root.symlink_to(victim)
    before = _owner_and_mode(victim)

    with pytest.raises(
        DevstackError, match=re.escape(f"{layout.mail_root} exists and is not a directory")
    ):
        _up(layout)

    assert _owner_and_mode(victim) == before


def test_a_directory_of_someone_else_is_never_taken_over(layout: StackLayout) -> None:
    layout.postfix_data.mkdir(parents=True)
    _chown_to_other(layout.postfix_data)
    before = _owner_and_mode(layout.postfix_data)

    with pytest.raises(
        DevstackError, match=re.escape(f"{layout.postfix_data} exists, owned by {OTHER_USER}")
    ):
        _up(layout)

    assert _owner_and_mode(layout.postfix_data) == before


def test_a_log_planted_as_a_symlink_is_refused_and_nothing_starts(
    work_dir: Path, layout: StackLayout
) -> None:
    victim = work_dir / "victim"
    victim.write_text("untouched\n")
    layout.log_dir.mkdir(parents=True)
    layout.startup_log.symlink_to(victim)

    with pytest.raises(DevstackError, match=re.escape(f"{layout.startup_log} is a symbolic link")):
        _up(layout)

    assert victim.read_text() == "untouched\n"
    after = status(layout)
    assert not after.postfix_running and not after.dovecot_running


def test_an_existing_dir_keeps_its_mode(layout: StackLayout) -> None:
    layout.root.mkdir(mode=0o700)

    with pytest.raises(DevstackError, match="cannot be entered by postfix, dovecot"):
        _up(layout)

    assert _owner_and_mode(layout.root)[2] == 0o700


# --- which process is this instance's daemon -------------------------------------------------


@pytest.fixture
def fake_daemon(work_dir: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """A process named like a master (`master`, `dovecot`): a shell script of that name."""
    started: list[subprocess.Popen[bytes]] = []
    programs = work_dir / "bin"
    programs.mkdir(mode=0o755)

    def start(
        name: str, *args: str, cwd: Path = Path("/"), user: str | None = None
    ) -> subprocess.Popen[bytes]:
        program = programs / name
        program.write_text("#!/bin/sh\nsleep 60\n")
        program.chmod(0o755)
        # Popen returns once the program runs: /proc/<pid>/comm is its name by then.
        process = subprocess.Popen(
            [str(program), *args], cwd=cwd, user=user, start_new_session=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _pid_files(layout: StackLayout, postfix: int, dovecot: int) -> None:
    layout.postfix_pid_file.parent.mkdir(parents=True, exist_ok=True)
    layout.postfix_pid_file.write_text(f"{postfix:>11}\n")
    layout.dovecot_base.mkdir(parents=True, exist_ok=True)
    layout.dovecot_pid_file.write_text(f"{dovecot}\n")


def test_a_pid_counts_only_when_proc_ties_it_to_the_directory(
    work_dir: Path, fake_daemon: Callable[..., subprocess.Popen[bytes]]
) -> None:
    layout = StackLayout(work_dir / "s")
    ports = StackPorts(*free_ports(6))
    layout.root.mkdir()
    layout.state_file.write_text(f'{{"ports": {ports.as_dict()}}}'.replace("'", '"'))
    # Stale pid files naming another Postfix (working in another queue directory), another
    # Dovecot (another configuration) and a local user's process that claims our dovecot.conf.
    strangers = [
        fake_daemon("master", cwd=work_dir),
        fake_daemon("dovecot", "-c", "/etc/dovecot/dovecot.conf"),
        fake_daemon("dovecot", "-c", str(layout.dovecot_conf), user=OTHER_USER),
    ]
    for dovecot in strangers[1:]:
        _pid_files(layout, strangers[0].pid, dovecot.pid)

        info = status(layout)
        stopped = down(layout)

        assert (info.postfix_running, info.dovecot_running) == (False, False)
        assert stopped == []
    assert all(process.poll() is None for process in strangers)

    layout.postfix_queue.mkdir(exist_ok=True)
    ours = [
        fake_daemon("master", cwd=layout.postfix_queue),
        fake_daemon("dovecot", "-c", str(layout.dovecot_conf)),
    ]
    _pid_files(layout, ours[0].pid, ours[1].pid)

    assert status(layout).running
    assert down(layout) == ["postfix", "dovecot"]
    assert [process.wait(timeout=5) for process in ours] == [-signal.SIGTERM] * 2
    assert all(process.poll() is None for process in strangers)
