"""Fixed-window counters of failed authentication, kept in the database.

The database is the one store every worker process and every host running mailwarden shares,
so a limit holds whatever `--workers` says. Only failures write; a success reads one row per
subject (by primary key) and clears the account's counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import Executable

from mailwarden.db.types import utcnow
from mailwarden.kernel.errors import RateLimited
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings

from .models import AuthFailure

# Subjects are stored at most this long (longer input is cut; it only identifies a counter).
_SUBJECT_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is counted: scope "account", "api-key" or "client", the value, and its limit."""

    scope: str
    value: str
    limit: int

    @property
    def key(self) -> str:
        return self.value[:_SUBJECT_LENGTH]


def client(settings: Settings, address: str | None) -> Subject:
    """The counter of one client address (None: the address is not known)."""
    return Subject("client", address or "unknown", settings.auth_failures_per_client)


def account(settings: Settings, username: str) -> Subject:
    """The counter of one account's password."""
    return Subject("account", username, settings.auth_failures_per_account)


def api_key(settings: Settings, key_id: str) -> Subject:
    """The counter of one API key (by its public id)."""
    return Subject("api-key", key_id, settings.auth_failures_per_account)


def registration(settings: Settings, address: str | None) -> Subject:
    """The counter of one client's registration requests, accepted or not. Apart from its
    login failures: registering neither uses them up nor is blocked by them."""
    return Subject("registration", address or "unknown", settings.registrations_per_client)


def _window(uow: UnitOfWork) -> timedelta:
    return timedelta(seconds=uow.settings.auth_failure_window_seconds)


def _live(row: AuthFailure | None, now: datetime, window: timedelta) -> AuthFailure | None:
    return row if row is not None and row.window_started_at + window > now else None


def _retry_after(row: AuthFailure, now: datetime, window: timedelta) -> int:
    return max(1, math.ceil((row.window_started_at + window - now).total_seconds()))


def blocked_for(uow: UnitOfWork, subjects: list[Subject]) -> int | None:
    """Seconds until every subject may try again, or None when none used up its failures."""
    now = utcnow()
    window = _window(uow)
    waits = [
        _retry_after(row, now, window)
        for subject in subjects
        if (row := _live(uow.session.get(AuthFailure, (subject.scope, subject.key)), now, window))
        and row.failures >= subject.limit
    ]
    return max(waits) if waits else None


def ensure_allowed(uow: UnitOfWork, subjects: list[Subject]) -> None:
    """Raise RateLimited when any subject used up its failures in the current window."""
    if (wait := blocked_for(uow, subjects)) is not None:
        raise RateLimited(wait)


def record_failure(uow: UnitOfWork, subjects: list[Subject]) -> None:
    """Count one failure for each subject; the caller commits (even though the request fails)."""
    now = utcnow()
    window = _window(uow)
    for subject in subjects:
        _count(uow, subject, now, window)
    # Stale windows are only clutter: drop a bounded batch of them while we write anyway.
    stale = select(AuthFailure.scope, AuthFailure.subject).where(
        AuthFailure.window_started_at < now - window
    )
    for scope, value in uow.session.execute(stale.limit(100)).all():
        uow.session.execute(
            delete(AuthFailure).where(AuthFailure.scope == scope, AuthFailure.subject == value)
        )
    uow.session.flush()


def _count(uow: UnitOfWork, subject: Subject, now: datetime, window: timedelta) -> None:
    """One statement that inserts the counter or counts on it, atomically on every backend.

    Looking for the row and inserting it when missing races with other workers: on MariaDB the
    two locking reads of a missing row take gap locks that deadlock both inserts, and the
    deadlock rolls back the whole transaction. An upsert has no window between look and write.
    """
    stamp = AuthFailure.window_started_at.type
    moment = literal(now, stamp)
    expired = AuthFailure.window_started_at <= literal(now - window, stamp)
    # MariaDB applies the assignments in order, each seeing the ones before it: the count goes
    # first, while `window_started_at` still holds the old window.
    assignments = [
        ("failures", case((expired, 1), else_=AuthFailure.failures + 1)),
        ("window_started_at", case((expired, moment), else_=AuthFailure.window_started_at)),
    ]
    values = {
        "scope": subject.scope,
        "subject": subject.key,
        "window_started_at": now,
        "failures": 1,
    }
    dialect = uow.session.get_bind().dialect.name
    statement: Executable
    if dialect in {"mysql", "mariadb"}:
        statement = mysql_insert(AuthFailure).values(values).on_duplicate_key_update(assignments)
    elif dialect == "postgresql":
        statement = (
            postgresql_insert(AuthFailure)
            .values(values)
            .on_conflict_do_update(
                index_elements=[AuthFailure.scope, AuthFailure.subject], set_=dict(assignments)
            )
        )
    elif dialect == "sqlite":
        statement = (
            sqlite_insert(AuthFailure)
            .values(values)
            .on_conflict_do_update(
                index_elements=[AuthFailure.scope, AuthFailure.subject], set_=dict(assignments)
            )
        )
    else:  # pragma: no cover - the schema supports these three only
        raise NotImplementedError(f"no upsert for {dialect}")
    uow.session.execute(statement)


def clear(uow: UnitOfWork, subject: Subject) -> None:
    """A success ends the account's run of failures (the client's count stands)."""
    uow.session.execute(
        delete(AuthFailure).where(
            AuthFailure.scope == subject.scope, AuthFailure.subject == subject.key
        )
    )
    uow.session.flush()
