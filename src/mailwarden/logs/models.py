"""Hourly traffic kept by `mailwarden logs ingest`, and where each log was read up to.

Hours are the host's wall-clock hours as its log stamps them (naive, not UTC): a chart of a
host's traffic reads in the host's own time, as pflogsumm's per-hour table does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow

# What a top list ranks; `traffic_top.kind` holds one of these.
TOP_KINDS = ("sender", "recipient", "sender_domain", "recipient_domain", "reject_reason")
# Longest key stored (an address is at most 254; a reject reason is cut here).
TOP_KEY_LENGTH = 255


class TrafficHour(Base):
    """pflogsumm's counters for one clock hour of one host (`deferred`: distinct queue ids
    deferred in that hour, so summing hours may count a message twice)."""

    __tablename__ = "traffic_hours"
    __table_args__ = (UniqueConstraint("host_id", "hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(DateTime())
    received: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    forwarded: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)
    deferrals: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    reject_warnings: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    discarded: Mapped[int] = mapped_column(Integer, default=0)
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_delivered: Mapped[int] = mapped_column(BigInteger, default=0)


class TrafficTop(Base):
    """The top entries of one kind in one hour of one host (at most `TOP_PER_HOUR` rows per
    hour and kind, so the table stays bounded; a top list over a range sums these)."""

    __tablename__ = "traffic_top"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('sender', 'recipient', 'sender_domain', 'recipient_domain', 'reject_reason')",
            name="kind_known",
        ),
        # "Top senders from T1 to T2": one range scan. Not unique: MariaDB compares strings
        # without case, and the entries keep the case they were logged with.
        Index("ix_traffic_top_host_id_kind_hour", "host_id", "kind", "hour"),
        Index("ix_traffic_top_hour", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    hour: Mapped[datetime] = mapped_column(DateTime())
    entry: Mapped[str] = mapped_column(String(TOP_KEY_LENGTH))
    count: Mapped[int] = mapped_column(Integer)


class LogCursor(Base):
    """How far `logs ingest` read one log path of a host: the file read (dev:inode), up to
    which byte, and what the file looked like then."""

    __tablename__ = "log_cursors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    identity: Mapped[str] = mapped_column(String(64))
    # The next byte to read (always the start of a line).
    position: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    # Modification time, whole seconds since the epoch.
    mtime: Mapped[int] = mapped_column(BigInteger)
    last_line_at: Mapped[datetime | None] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
