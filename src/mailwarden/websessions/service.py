"""Browser sessions of the console and the portal, kept in the database.

The cookie carries 256 random bits; the database keeps their SHA-256, so a copy of the database
does not yield live sessions. A session ends at logout, after `session_idle_minutes` without a
request and after `session_max_hours` in all. Logging in always starts a new session (a new id),
and so does completing the second factor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select

from mailwarden.db.types import utcnow
from mailwarden.kernel.unit_of_work import UnitOfWork

from .models import WebSession

# last_seen_at is written at most this often: a page view should not always be a write.
_TOUCH_EVERY = timedelta(seconds=60)
_USER_AGENT_LENGTH = 255


class SessionKind(StrEnum):
    ADMIN = "admin"
    MAILBOX = "mailbox"


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new session: `token` goes into the cookie and is never stored."""

    token: str
    csrf_token: str
    session_id: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    uow: UnitOfWork,
    kind: SessionKind,
    principal_id: int,
    *,
    second_factor_pending: bool = False,
    client_address: str | None = None,
    user_agent: str = "",
) -> OpenedSession:
    """Open a session for an admin (kind ADMIN) or a mailbox user (kind MAILBOX)."""
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_digest(token),
        kind=kind.value,
        admin_id=principal_id if kind is SessionKind.ADMIN else None,
        mailbox_id=principal_id if kind is SessionKind.MAILBOX else None,
        csrf_token=csrf_token,
        second_factor_pending=second_factor_pending,
        client_address=client_address,
        user_agent=user_agent[:_USER_AGENT_LENGTH],
    )
    uow.session.add(row)
    uow.session.flush()
    return OpenedSession(token, csrf_token, row.id)


def _expired(row: WebSession, now: datetime, uow: UnitOfWork) -> bool:
    settings = uow.settings
    return now - row.last_seen_at > timedelta(
        minutes=settings.session_idle_minutes
    ) or now - row.created_at > timedelta(hours=settings.session_max_hours)


def resolve(uow: UnitOfWork, token: str | None, kind: SessionKind) -> WebSession | None:
    """The live session of `kind` the cookie names, or None; an expired one is deleted."""
    if not token or len(token) > 128:
        return None
    row = uow.session.scalars(
        select(WebSession).where(WebSession.token_hash == _digest(token))
    ).one_or_none()
    if row is None or row.kind != kind.value:
        return None
    now = utcnow()
    if _expired(row, now, uow):
        uow.session.delete(row)
        uow.session.flush()
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
        uow.session.flush()
    return row


def renew(uow: UnitOfWork, row: WebSession, *, second_factor_pending: bool) -> OpenedSession:
    """Replace `row` by a new session of the same principal (a new id, a new CSRF token)."""
    kind = SessionKind(row.kind)
    principal = row.admin_id if kind is SessionKind.ADMIN else row.mailbox_id
    assert principal is not None
    client, agent = row.client_address, row.user_agent
    uow.session.delete(row)
    uow.session.flush()
    return start(
        uow,
        kind,
        principal,
        second_factor_pending=second_factor_pending,
        client_address=client,
        user_agent=agent,
    )


def end(uow: UnitOfWork, token: str | None) -> None:
    """Logout: the session stops working at once, on every worker."""
    if token:
        uow.session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))


def end_all(
    uow: UnitOfWork,
    kind: SessionKind,
    principal_id: int,
    *,
    keep: int | None = None,
) -> None:
    """End every session of one admin or mailbox (after a password change), but `keep`."""
    column = WebSession.admin_id if kind is SessionKind.ADMIN else WebSession.mailbox_id
    stmt = delete(WebSession).where(column == principal_id)
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    uow.session.execute(stmt)


def sweep(uow: UnitOfWork) -> int:
    """Delete sessions idle for longer than the timeout; returns how many went."""
    cutoff = utcnow() - timedelta(minutes=uow.settings.session_idle_minutes)
    result = uow.session.execute(delete(WebSession).where(WebSession.last_seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
