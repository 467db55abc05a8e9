from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class TotpEnrolment(Base):
    """An admin's TOTP secret. `confirmed_at` is set once a first code proved the enrolment."""

    __tablename__ = "totp_enrolments"

    admin_id: Mapped[int] = mapped_column(
        ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True
    )
    # Base32, as authenticator apps take it. Never shown again after enrolment.
    secret: Mapped[str] = mapped_column(String(64))
    # The last time step accepted: a code is good once (no replay within its 30 seconds).
    last_used_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class RecoveryCode(Base):
    """One single-use recovery code, stored as SHA-256 (the codes carry 50 random bits)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
