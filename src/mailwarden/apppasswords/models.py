from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class AppPassword(Base):
    """A password for one mail client, accepted by Dovecot (IMAP, POP3) and SMTP AUTH.

    The password text starts with `public_id`, so Dovecot's passdb query picks the one row to
    check from the password it was given, however many app passwords the mailbox has.
    """

    __tablename__ = "app_passwords"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # `{SCHEME}...` of the whole password text, as Dovecot verifies it.
    password_hash: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
