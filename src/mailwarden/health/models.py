"""What the health checks found last, per host and check, and the monitor's incidents.

A scrape of /metrics or a look at the dashboard reads these rows and never reaches a host.
An incident row lives from the first warning or critical result of a check to its next ok
result, so "one alert per incident" holds across separate `monitor --once` runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import UTCDateTime, utcnow


class HealthResult(Base):
    """The latest result of one check on one host (replaced by each run)."""

    __tablename__ = "health_results"
    __table_args__ = (UniqueConstraint("host_id", "check_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    check_name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # The measured figure where there is one: messages, seconds, a ratio of the disk.
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(String(500))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HealthIncident(Base):
    """A check of a host that went warning or critical, until it is ok again."""

    __tablename__ = "health_incidents"
    __table_args__ = (
        Index(
            "ix_health_incidents_host_id_check_name_resolved_at",
            "host_id",
            "check_name",
            "resolved_at",
        ),
        # The incidents list, newest first: of one host, and the open ones.
        Index("ix_health_incidents_host_id_id", "host_id", "id"),
        Index("ix_health_incidents_resolved_at_id", "resolved_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    check_name: Mapped[str] = mapped_column(String(32))
    # The latest non-ok status seen during the incident, and what the check said then.
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set once the alert (recovery notice) reached at least one channel: never sent twice.
    alert_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recovery_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
