from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class WebSession(Base):
    """A browser session of the console (an admin) or of the portal (a mailbox user).

    Kept in the database so that every worker and host sees the same sessions, and logout or a
    password change ends them everywhere.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('admin', 'mailbox')", name="kind_known"),
        CheckConstraint("(admin_id IS NULL) <> (mailbox_id IS NULL)", name="one_principal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the cookie value: a stolen database does not yield live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    admin_id: Mapped[int | None] = mapped_column(
        ForeignKey("admins.id", ondelete="CASCADE"), default=None, index=True
    )
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), default=None, index=True
    )
    # Every form and HTMX request of this session carries it.
    csrf_token: Mapped[str] = mapped_column(String(64))
    # The password was right but the second factor is still owed: nothing else is allowed.
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Idle sessions end: expiry is last_seen_at + the idle timeout (swept by this index).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    client_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str] = mapped_column(String(255), default="")
