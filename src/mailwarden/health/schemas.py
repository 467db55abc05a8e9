from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from mailwarden.kernel.schemas import PublicSchema


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    # The check could not tell (the host was unreachable, TLS is not offered, ...).
    UNKNOWN = "unknown"

    @property
    def is_problem(self) -> bool:
        return self in (Status.WARNING, Status.CRITICAL)

    @property
    def gauge(self) -> int:
        """Its number on /metrics: 0 ok, 1 warning, 2 critical, 3 unknown."""
        return _GAUGE[self]


_GAUGE = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}


class CheckResult(PublicSchema):
    name: str
    status: Status
    # The figure measured, where there is one (unit per check: see health.checks).
    value: float | None = None
    detail: str
    checked_at: datetime


class HostHealth(PublicSchema):
    host: str
    # The worst of the checks' statuses (unknown ones left aside); unknown: never checked.
    status: Status
    # When the checks ran; None for a host the monitor has not checked yet.
    checked_at: datetime | None
    checks: list[CheckResult]


class IncidentPublic(PublicSchema):
    host: str
    check: str
    status: Status
    detail: str
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


class Delivery(PublicSchema):
    """One alert or recovery notice sent (or not) through one channel."""

    kind: str  # "alert" or "recovery"
    host: str
    check: str
    channel: str
    delivered: bool
    error: str | None = None


class MonitorResult(PublicSchema):
    health: HostHealth
    opened: list[IncidentPublic]
    resolved: list[IncidentPublic]
    deliveries: list[Delivery]
