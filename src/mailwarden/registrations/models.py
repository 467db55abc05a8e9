from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import EmailAddress, UTCDateTime, utcnow


class RegistrationRequest(Base):
    """A visitor's request for a mailbox, waiting for a domain admin's decision."""

    __tablename__ = "registration_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        # The moderation queue of a domain, oldest first; also counts pending requests.
        Index(
            "ix_registration_requests_domain_status_created", "domain_id", "status", "created_at"
        ),
        Index("ix_registration_requests_address", "address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(EmailAddress())
    name: Mapped[str] = mapped_column(String(255), default="")
    # The password the visitor chose, hashed at once; it becomes the mailbox's on approval.
    password_hash: Mapped[str] = mapped_column(String(512))
    # Where the visitor can be reached about the decision (optional).
    contact: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    client_address: Mapped[str | None] = mapped_column(String(45), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(254), default=None)
    reason: Mapped[str] = mapped_column(String(255), default="")
