from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class Forward(Base):
    """One mailbox's forwarding. Dovecot never queries it: it is applied as Sieve `redirect`."""

    __tablename__ = "forwards"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Normalized addresses, in the order given.
    targets: Mapped[list[str]] = mapped_column(JSON)
    # Keep a copy in the mailbox as well as forwarding it.
    keep_copy: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
