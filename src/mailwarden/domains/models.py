from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import DomainName, UTCDateTime, utcnow


class Domain(Base):
    """A virtual domain. Postfix asks `virtual_mailbox_domains` by `name` (unique index)."""

    __tablename__ = "domains"
    __table_args__ = (
        CheckConstraint("max_mailboxes >= 0", name="max_mailboxes_non_negative"),
        CheckConstraint("max_aliases >= 0", name="max_aliases_non_negative"),
        CheckConstraint("quota_bytes >= 0", name="quota_non_negative"),
        CheckConstraint("default_mailbox_quota_bytes >= 0", name="default_quota_non_negative"),
        CheckConstraint("registration_pending_limit >= 0", name="registration_limit_non_negative"),
        # Listing by creation time (name breaks ties) walks this index (keyset pages).
        Index("ix_domains_created_at_name", "created_at", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # IDNA A-label, lowercase, no trailing dot.
    name: Mapped[str] = mapped_column(DomainName(), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0 means unlimited for every limit below.
    max_mailboxes: Mapped[int] = mapped_column(Integer, default=0)
    max_aliases: Mapped[int] = mapped_column(Integer, default=0)
    default_mailbox_quota_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    quota_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Relayed, not hosted: Postfix lists it in relay_domains instead of virtual_mailbox_domains.
    backup_mx: Mapped[bool] = mapped_column(Boolean, default=False)
    # A Postfix transport such as `smtp:[mx.internal]:25`; "" delivers through Dovecot LMTP.
    transport: Mapped[str] = mapped_column(String(255), default="")
    # Visitors may ask for a mailbox here (the portal's registration page); a domain admin
    # approves or rejects each request. At most `registration_pending_limit` wait at once.
    registration_open: Mapped[bool] = mapped_column(Boolean, default=False)
    registration_pending_limit: Mapped[int] = mapped_column(Integer, default=20)
    # Set by `domain remove --cascade` while the domain still has mailboxes: the domain is
    # inactive from then on and `maintenance purge` deletes it with its last mailbox.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def removed_at(self) -> datetime | None:
        """The public name of `deleted_at`, as for mailboxes."""
        return self.deleted_at
