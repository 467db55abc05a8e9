from __future__ import annotations

from datetime import datetime
from typing import Literal

from mailwarden.kernel.schemas import PublicSchema

TopKind = Literal["sender", "recipient", "sender_domain", "recipient_domain", "reject_reason"]
Bucket = Literal["hour", "day"]


class IngestedFile(PublicSchema):
    """One file read by an ingest run: which bytes (`start` to `end`; a compressed file is
    read whole, `end` None)."""

    path: str
    start: int
    end: int | None


class IngestReport(PublicSchema):
    """What one `logs ingest` run on a host read and stored (on a dry run: would store).

    lost_rotations: log paths rotated twice (or rotated and compressed) since the last run,
    whose unread tail could not be found; their remaining lines were not counted.
    """

    host: str
    dry_run: bool
    files: list[IngestedFile]
    lines: int
    first: datetime | None
    last: datetime | None
    hours_touched: int
    hours_skipped_as_expired: int
    hours_deleted: int
    lost_rotations: list[str]


class TrafficPoint(PublicSchema):
    """The counters of one hour or day (pflogsumm's meaning; `deferred` here is summed over
    the hours, so a message deferred in two hours counts twice)."""

    start: datetime
    received: int
    delivered: int
    forwarded: int
    deferred: int
    deferrals: int
    bounced: int
    rejected: int
    reject_warnings: int
    held: int
    discarded: int
    bytes_received: int
    bytes_delivered: int


class TrafficSeries(PublicSchema):
    """Counters per hour or day from `since` (included) to `until` (excluded), one point per
    bucket (zeros where nothing was logged). Times are the host's wall clock."""

    host: str
    bucket: Bucket
    since: datetime
    until: datetime
    points: list[TrafficPoint]


class TopEntry(PublicSchema):
    entry: str
    count: int


class TopList(PublicSchema):
    """The most frequent entries of one kind from `since` to `until`, summed over the hourly
    top lists `logs ingest` keeps (each hour keeps its top 20 per kind, so an entry rare in
    every hour but frequent overall can be missing or undercounted)."""

    host: str
    kind: TopKind
    since: datetime
    until: datetime
    entries: list[TopEntry]
