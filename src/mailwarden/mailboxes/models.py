from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import EmailAddress, UTCDateTime, utcnow

# Paths compare byte for byte, as the file system does: `maintenance purge` finds overlapping
# maildirs with a range over ix_mailboxes_maildir whose bounds are computed in Python, so the
# database must order the column by code point, not by a case-insensitive or linguistic
# collation (the default on MariaDB, and often on PostgreSQL). SQLite's default is binary.
MAILDIR_LENGTH = 512
MaildirPath = (
    String(MAILDIR_LENGTH)
    .with_variant(String(MAILDIR_LENGTH, collation="C"), "postgresql")
    .with_variant(String(MAILDIR_LENGTH, collation="utf8mb4_bin"), "mysql", "mariadb")
)
# A purge failure is a sentence naming a path; longer ones are cut.
PURGE_ERROR_LENGTH = 1024


class Mailbox(Base):
    """A mailbox. Postfix and Dovecot look it up by `address` (unique index), on every message."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        CheckConstraint("quota_bytes >= 0", name="quota_non_negative"),
        # Per-domain listing and counting walk this index in address order (keyset pages).
        Index("ix_mailboxes_domain_id_address", "domain_id", "address"),
        # The same by creation time (address breaks ties), across domains and within one.
        Index("ix_mailboxes_created_at_address", "created_at", "address"),
        Index("ix_mailboxes_domain_id_created_at_address", "domain_id", "created_at", "address"),
        # `maintenance purge` walks removed mailboxes oldest first.
        Index("ix_mailboxes_deleted_at", "deleted_at"),
        # `maintenance purge` looks for other mailboxes whose maildir overlaps the one it deletes.
        Index("ix_mailboxes_maildir", "maildir"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="RESTRICT"))
    local_part: Mapped[str] = mapped_column(String(64))
    # Lowercase `local@ascii-domain`.
    address: Mapped[str] = mapped_column(EmailAddress(), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    # `{SCHEME}...` exactly as Dovecot reads it.
    password_hash: Mapped[str] = mapped_column(String(512))
    quota_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Relative to the mail root, e.g. `example.com/alice/`.
    maildir: Mapped[str] = mapped_column(MaildirPath)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by `mailbox remove`: delivery and login stop at once; the maildir goes at purge time.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Why the last purge could not delete (or archive) the maildir; the row, and with it the
    # address, stays until a purge succeeds.
    purge_error: Mapped[str | None] = mapped_column(String(PURGE_ERROR_LENGTH), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class QuotaUsage(Base):
    """Usage as Dovecot counts it, written by Dovecot itself (quota_clone through dict-sql).

    Keyed by the Dovecot user name, which is the mailbox address. Mailwarden only reads it (and
    drops the row when a mailbox is purged).
    """

    __tablename__ = "quota_usage"

    username: Mapped[str] = mapped_column(EmailAddress(), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
