"""Fixtures shared by the whole suite.

Database tests run once per backend (SQLite, PostgreSQL, MariaDB). Each backend gets one
private database per test worker, built by the Alembic migrations. Service tests run inside an
outer transaction that is rolled back; CLI tests commit for real and the tables are emptied after.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from tests.factories.world import World, build_world
from tests.support.databases import delete_all_rows, migrated_engine, private_database
from tests.support.services import IN_CI, SERVICES, reachable, require_tool, selected_backends
from tests.support.sshd import SshServer, running_sshd

BACKENDS = selected_backends()


def pytest_report_header() -> str:
    return f"mailwarden backends: {', '.join(BACKENDS)}; CI={IN_CI}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name in SERVICES and (reason := reachable(SERVICES[name].url)):
        message = f"{name} is not reachable at {SERVICES[name].url}: {reason}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service fails the run)", pytrace=False)
        pytest.skip(message)
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(backend, tmp_path_factory.mktemp(backend)) as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = migrated_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Cheap hashing keeps the suite fast; the schemes themselves are tested on their own.
    return Settings(data_dir=tmp_path, password_scheme="SHA256-CRYPT")


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """An outer transaction around the whole test, rolled back at the end."""
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            outer.rollback()


UowFactory = Callable[..., UnitOfWork]


@pytest.fixture
def make_uow(connection: Connection, settings: Settings) -> Iterator[UowFactory]:
    """Units of work whose commits release savepoints inside the test's outer transaction."""
    sessions: list[Session] = []

    def factory(*, dry_run: bool = False) -> UnitOfWork:
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        sessions.append(session)
        return UnitOfWork(session, settings, dry_run=dry_run)

    yield factory
    for session in sessions:
        session.close()


@pytest.fixture
def uow(make_uow: UowFactory) -> UnitOfWork:
    return make_uow()


@pytest.fixture
def committed_database(engine: Engine, database_url: str) -> Iterator[str]:
    """For tests that commit for real (the CLI): the URL, with every table emptied after."""
    delete_all_rows(engine)
    yield database_url
    delete_all_rows(engine)


@pytest.fixture
def world(make_uow: UowFactory) -> World:
    """The personas and their domains (see tests/factories/world.py)."""
    return build_world(make_uow)


@pytest.fixture(scope="session")
def ssh_server() -> Iterator[SshServer]:
    """A private OpenSSH server on 127.0.0.1 for this test worker (see tests/support/sshd.py)."""
    sshd = require_tool("sshd", "openssh-server")
    require_tool("ssh-keygen", "openssh-client")
    # A short path of its own: sshd's files, keys and log; removed with everything in it.
    with (
        tempfile.TemporaryDirectory(prefix="mw-sshd-", dir="/tmp") as directory,
        running_sshd(Path(directory), sshd=sshd) as server,
    ):
        yield server
