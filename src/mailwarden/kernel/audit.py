"""Audit entries: who did what to which object, before and after, never with secrets.

Entries are written in the same transaction as the change they describe, so a rolled-back change
(a failure or a dry run) leaves no entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow

REDACTED = "[redacted]"
# Keys whose values must never reach an audit entry, a plan or a log line.
SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "new_password",
        "current_password",
        "totp_secret",
        "recovery_codes",
        "api_key",
        "key",
        "key_hash",
        "token",
        "private_key",
        "secret",
    }
)


def redact(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of `values` with secret keys replaced, recursively."""
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECRET_KEYS:
            clean[key] = REDACTED
        elif isinstance(value, dict):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_domain_id", "domain", "id"),
        Index("ix_audit_log_object", "object_type", "object_key"),
    )

    # SQLite only autoincrements INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254), index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    client_address: Mapped[str | None] = mapped_column(String(45), default=None)
    # The public id of the API key that made the change (None outside the API).
    api_key: Mapped[str | None] = mapped_column(String(32), default=None)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(512))
    # The domain the object belongs to (ASCII), so domain admins see their domains' history.
    domain: Mapped[str | None] = mapped_column(String(253), default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
