"""Counters of failed authentication (throttle service), on every backend."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session

from mailwarden.db.types import utcnow
from mailwarden.kernel.errors import RateLimited
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.throttle import service as throttle
from mailwarden.throttle.models import AuthFailure
from mailwarden.throttle.service import Subject
from tests.conftest import UowFactory

WINDOW_SECONDS = 600
ACCOUNT = Subject("account", "alice", limit=3)
CLIENT = Subject("client", "192.0.2.7", limit=5)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_failure_window_seconds": WINDOW_SECONDS})


def fail(make_uow: UowFactory, subjects: list[Subject], times: int = 1) -> None:
    for _ in range(times):
        with make_uow() as uow:
            throttle.record_failure(uow, subjects)
            uow.finish()


def allowed(make_uow: UowFactory, subjects: list[Subject]) -> bool:
    with make_uow() as uow:
        try:
            throttle.ensure_allowed(uow, subjects)
        except RateLimited:
            return False
    return True


def failures(make_uow: UowFactory, subject: Subject) -> int | None:
    with make_uow() as uow:
        row = uow.session.get(AuthFailure, (subject.scope, subject.key))
        return None if row is None else row.failures


def age_window(make_uow: UowFactory, subject: Subject, seconds: int) -> None:
    """Move the subject's window into the past, as if `seconds` had gone by."""
    with make_uow() as uow:
        row = uow.session.get(AuthFailure, (subject.scope, subject.key))
        assert row is not None
        row.window_started_at -= timedelta(seconds=seconds)
        uow.finish()


def test_it_allows_failures_below_the_limit(make_uow: UowFactory) -> None:
    fail(make_uow, [ACCOUNT], times=ACCOUNT.limit - 1)
    assert allowed(make_uow, [ACCOUNT])
    assert failures(make_uow, ACCOUNT) == ACCOUNT.limit - 1


def test_reaching_the_limit_refuses_with_the_seconds_left_in_the_window(
    make_uow: UowFactory,
) -> None:
    fail(make_uow, [ACCOUNT, CLIENT], times=ACCOUNT.limit)
    with make_uow() as uow, pytest.raises(RateLimited) as info:
        throttle.ensure_allowed(uow, [CLIENT, ACCOUNT])
    assert WINDOW_SECONDS - 5 <= info.value.retry_after <= WINDOW_SECONDS
    # The client has failures left: only the account is refused.
    assert allowed(make_uow, [CLIENT])


def test_retry_after_shrinks_as_the_window_runs_out(make_uow: UowFactory) -> None:
    fail(make_uow, [ACCOUNT], times=ACCOUNT.limit)
    age_window(make_uow, ACCOUNT, WINDOW_SECONDS - 30)
    with make_uow() as uow, pytest.raises(RateLimited) as info:
        throttle.ensure_allowed(uow, [ACCOUNT])
    assert 25 <= info.value.retry_after <= 30


def test_an_expired_window_lets_the_subject_in_and_counts_afresh(make_uow: UowFactory) -> None:
    fail(make_uow, [ACCOUNT], times=ACCOUNT.limit)
    assert not allowed(make_uow, [ACCOUNT])
    age_window(make_uow, ACCOUNT, WINDOW_SECONDS + 1)
    assert allowed(make_uow, [ACCOUNT])
    fail(make_uow, [ACCOUNT])
    assert failures(make_uow, ACCOUNT) == 1
    assert allowed(make_uow, [ACCOUNT])


def test_a_success_clears_the_account_but_not_the_client(make_uow: UowFactory) -> None:
    client = Subject("client", CLIENT.value, limit=ACCOUNT.limit)
    fail(make_uow, [ACCOUNT, client], times=ACCOUNT.limit)
    with make_uow() as uow:
        throttle.clear(uow, ACCOUNT)
        uow.finish()
    assert failures(make_uow, ACCOUNT) is None
    assert allowed(make_uow, [ACCOUNT])
    assert not allowed(make_uow, [client])


def test_subjects_are_counted_apart_by_scope_and_value(make_uow: UowFactory) -> None:
    same_value_other_scope = Subject("api-key", ACCOUNT.value, limit=ACCOUNT.limit)
    fail(make_uow, [ACCOUNT], times=ACCOUNT.limit)
    assert allowed(make_uow, [same_value_other_scope])
    assert allowed(make_uow, [Subject("account", "bob", limit=ACCOUNT.limit)])


def test_an_overlong_subject_is_cut_to_the_stored_length(make_uow: UowFactory) -> None:
    long = Subject("client", "x" * 1000, limit=1)
    fail(make_uow, [long])
    assert not allowed(make_uow, [long])
    assert failures(make_uow, long) == 1


def test_stale_windows_are_dropped_while_failures_are_written(make_uow: UowFactory) -> None:
    stale = Subject("client", "198.51.100.1", limit=5)
    fail(make_uow, [stale])
    age_window(make_uow, stale, WINDOW_SECONDS + 60)
    fail(make_uow, [ACCOUNT])
    assert failures(make_uow, stale) is None
    assert failures(make_uow, ACCOUNT) == 1


# --- two workers counting the same subject's first failure at once ---------------------------


@pytest.fixture
def race_subject(engine: Engine) -> Iterator[Subject]:
    """A subject of its own, committed for real (the workers use their own connections)."""
    subject = Subject("client", f"race-{uuid.uuid4().hex}", limit=10)
    yield subject
    with engine.begin() as connection:
        connection.execute(
            delete(AuthFailure).where(
                AuthFailure.scope == subject.scope, AuthFailure.subject == subject.key
            )
        )


def test_concurrent_first_failures_are_both_counted(
    backend: str, engine: Engine, settings: Settings, race_subject: Subject
) -> None:
    """Both workers find no row, then both insert one: neither may crash, both must count.

    SQLite serializes writers at BEGIN IMMEDIATE, so there the second worker waits before it
    looks; the servers let both look first, and the workers are held until both have.
    """
    racers = {"racer-1", "racer-2"} if backend != "sqlite" else set()
    # Released once both workers have looked for the row and are about to insert theirs.
    at_insert = threading.Barrier(max(len(racers), 1), timeout=20)
    waited: set[str] = set()
    errors: list[BaseException] = []

    def hold_first_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        name = threading.current_thread().name
        if name in racers and name not in waited and statement.lstrip().startswith("INSERT"):
            waited.add(name)
            at_insert.wait()

    def record() -> None:
        try:
            with UnitOfWork(Session(engine), settings) as uow:
                throttle.record_failure(uow, [race_subject])
                uow.finish()
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)
            at_insert.abort()

    event.listen(engine, "before_cursor_execute", hold_first_insert)
    try:
        threads = [threading.Thread(target=record, name=f"racer-{n}") for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", hold_first_insert)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    with engine.connect() as connection:
        counted = connection.execute(
            select(AuthFailure.failures).where(
                AuthFailure.scope == race_subject.scope, AuthFailure.subject == race_subject.key
            )
        ).scalar_one()
    assert counted == 2


def test_the_window_starts_at_the_first_failure(make_uow: UowFactory) -> None:
    before = utcnow()
    fail(make_uow, [ACCOUNT])
    with make_uow() as uow:
        row = uow.session.get(AuthFailure, (ACCOUNT.scope, ACCOUNT.key))
        assert row is not None
        started = row.window_started_at
    fail(make_uow, [ACCOUNT])
    with make_uow() as uow:
        row = uow.session.get(AuthFailure, (ACCOUNT.scope, ACCOUNT.key))
        assert row is not None
        assert (row.window_started_at, row.failures) == (started, 2)
    assert before <= started <= utcnow()
