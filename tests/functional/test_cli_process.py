"""The installed `mailwarden` console script, as a real process: exit codes 0, 1 and 2."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from mailwarden.kernel.passwords import verify_password
from tests.functional.cli_helpers import PASSWORD, ok, password_hash, run_process
from tests.support.databases import migrated_engine


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('process') / 'mailwarden.db'}"
    engine = migrated_engine(url)
    ok(url, "domain", "add", "example.org")
    yield url, engine
    engine.dispose()


def test_a_real_process_exits_0_and_reads_the_password_from_a_pipe(
    sqlite_database: tuple[str, Engine],
) -> None:
    url, engine = sqlite_database
    done = run_process(
        url,
        "mailbox",
        "add",
        "alice@example.org",
        "--password-stdin",
        "--json",
        input=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["address"] == "alice@example.org"
    stored = password_hash(engine, "mailboxes", "address", "alice@example.org")
    assert verify_password(PASSWORD, stored)
    assert stored not in done.stdout + done.stderr


def test_a_real_process_exits_1_with_one_line_on_stderr(
    sqlite_database: tuple[str, Engine],
) -> None:
    url, _ = sqlite_database
    done = run_process(url, "domain", "add", "example.org")
    assert done.returncode == 1
    assert done.stderr == "mailwarden: name: domain example.org exists already [exists]\n"
    assert done.stdout == ""


def test_a_real_process_exits_2_on_a_usage_error(sqlite_database: tuple[str, Engine]) -> None:
    url, _ = sqlite_database
    done = run_process(
        url, "mailbox", "add", "bob@example.org", "--password-stdin", "--random-password"
    )
    assert done.returncode == 2
    assert "choose one of --password-stdin and --random-password" in done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
