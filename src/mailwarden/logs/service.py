"""Mail logs of registered hosts: summaries on demand, and hourly traffic kept in the database.

`summarize_host` reads a host's logs (and their rotated siblings) through its runner and
summarizes them like `logs summary FILE`. `ingest` reads what a host logged since the previous
run and adds it, per clock hour, to `traffic_hours` and to the hourly top lists in
`traffic_top`; `traffic` and `top` read those back for charts.

Incremental reading. Each log path has a cursor: the file read (dev:inode) and the offset of
the first unread line. The next run continues there when the file is the same one and no
shorter; after a rotation it finishes the old file (found among the rotated siblings by its
identity, while it is still uncompressed) from the offset, then reads the new file from its
start. Only complete lines are read: a line being written is left for the next run. Each run
adds to the stored hours in one transaction together with the moved cursors, so a run either
counts its lines once or not at all, and running again over the same data counts nothing.

Approximations (pflogsumm has the same ones at the edges of the log it is given). Every run is
summarized on its own, so a message whose lines fall into two runs is joined only within one:
- counts made from one line each (received, delivered, deferrals, bounced, rejected, ...) are
  exact, whatever the split;
- bytes delivered of a recipient delivered in a later run than the message's `size=` line are
  not counted, and a message received (client= line) in one run and activated by qmgr
  (from=/size=) in the next is counted as received, but its sender and bytes received are not;
- `deferred` (distinct queue ids) is per hour, so summing hours may count a message twice;
- each hour keeps only its 20 most frequent entries of each top list kind (the tail is
  dropped, also when a later run adds to that hour).
A log rotated twice between runs (or compressed before the run found it) loses the unread tail
of the old file; the report names those paths.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, desc, func, select

from mailwarden.db.types import utcnow
from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.stack.hosts import FileInfo, HostRunner, open_runner

from .engine import summarize
from .models import TOP_KEY_LENGTH, TOP_KINDS, LogCursor, TrafficHour, TrafficTop
from .remote import HostLogFile, host_sources, last_line_end, rotated_siblings
from .schemas import (
    Bucket,
    IngestedFile,
    IngestReport,
    TopEntry,
    TopKind,
    TopList,
    TrafficPoint,
    TrafficSeries,
)
from .summary import HourBucket, LogSummary, TrafficCounts

TOP_PER_HOUR: Final = 20
MAX_TOP_LIMIT: Final = 100
MAX_RANGE_DAYS: Final = 400
# Hourly points one series may hold (a quarter of a year); longer ranges take day buckets.
MAX_HOURLY_POINTS: Final = 24 * 92
# Rows looked up or deleted per statement.
BATCH: Final = 500
COUNTER_NAMES: Final = tuple(item.name for item in fields(TrafficCounts))
_TOP_COUNTERS: Final = {
    "sender": "senders",
    "recipient": "recipients",
    "sender_domain": "sender_domains",
    "recipient_domain": "recipient_domains",
    "reject_reason": "reject_reasons",
}


def summarize_host(
    uow: UnitOfWork,
    actor: Actor,
    host: str | None,
    *,
    since: datetime | None = None,
    hourly: bool = False,
) -> LogSummary:
    """Summarize every log of `host` (None: the only host) with its rotated siblings."""
    spec = hosts.spec_for(uow, actor, host, Permission.LOGS_READ)
    with open_runner(spec) as runner:
        sources = [source for path in spec.log_paths for source in host_sources(runner, path)]
        if not sources:
            raise ValidationError(
                "host",
                "no_logs",
                f"{spec.name}: none of {', '.join(spec.log_paths)} (or a rotated sibling) exists",
            )
        return summarize(sources, since=since, hourly=hourly, workers=1)


# --- ingest ----------------------------------------------------------------------------------


class _PathPlan:
    """What to read of one log path, and where its cursor goes afterwards."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sources: list[HostLogFile] = []
        self.lost = False
        self.next_cursor: tuple[str, int, int, int] | None = None  # identity, position, size, mtime


def _plan_path(runner: HostRunner, path: str, cursor: LogCursor | None) -> _PathPlan:
    plan = _PathPlan(path)
    live = runner.stat(path)
    if cursor is None:
        if live is None:
            # Between a rotation and the next line (or not there yet): start once it exists,
            # with its rotated siblings then, so nothing is read twice.
            return plan
        # First run: the rotated siblings too (hours beyond the retention are dropped).
        plan.sources += [HostLogFile(runner, p, info) for p, info in rotated_siblings(runner, path)]
        _follow(plan, runner, path, live, 0)
    elif live is not None and live.identity == cursor.identity and live.size >= cursor.position:
        _follow(plan, runner, path, live, cursor.position)
    else:
        # Rotated since the last run: finish the old file where we stopped, if it is still
        # there as it was (same identity, so not compressed yet), then the new one from 0.
        old = next(
            (
                (p, info)
                for p, info in rotated_siblings(runner, path)
                if info.identity == cursor.identity and info.size >= cursor.position
            ),
            None,
        )
        if old is None:
            plan.lost = True
        elif live is None:
            # No new file yet: the old one is still the one being written to.
            _follow(plan, runner, old[0], old[1], cursor.position)
        else:
            plan.sources.append(HostLogFile(runner, old[0], old[1], start=cursor.position))
        if live is not None:
            _follow(plan, runner, path, live, 0)
    return plan


def _follow(plan: _PathPlan, runner: HostRunner, path: str, info: FileInfo, start: int) -> None:
    """Read the complete lines of `path` from `start`, and leave the cursor after them."""
    end = last_line_end(runner, path, start, info.size)
    if end > start:
        plan.sources.append(HostLogFile(runner, path, info, start=start, end=end))
    plan.next_cursor = (info.identity, end, info.size, int(info.mtime))


def ingest(
    uow: UnitOfWork,
    actor: Actor,
    host: str | None,
    *,
    retention_days: int | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Read what `host` logged since the last run and add it to its hourly traffic; then
    delete hours older than the retention (days; default the setting `log_retention_days`).

    `now` (the host's wall clock, naive) is for tests. On a dry run nothing is stored: the
    report says what would be.
    """
    spec = hosts.spec_for(uow, actor, host, Permission.LOGS_INGEST)
    days = uow.settings.log_retention_days if retention_days is None else retention_days
    if not 1 <= days <= 3660:
        raise ValidationError(
            "retention_days", "out_of_range", "retention must be between 1 and 3660 days"
        )
    # One run per host at a time: the row lock holds a second run until this one commits.
    row = uow.session.scalars(select(Host).where(Host.name == spec.name).with_for_update()).one()
    cutoff = _hour_of(now or datetime.now()) - timedelta(days=days)
    cursors = {
        cursor.path: cursor
        for cursor in uow.session.scalars(select(LogCursor).where(LogCursor.host_id == row.id))
    }
    summary = LogSummary()
    with open_runner(spec) as runner:
        plans = [_plan_path(runner, path, cursors.get(path)) for path in spec.log_paths]
        for plan in plans:
            if plan.sources:
                summary.merge(summarize(plan.sources, hourly=True, workers=1))
    kept = [bucket for start, bucket in summary.hours.items() if start >= cutoff]
    _add_hours(uow, row.id, kept)
    for plan in plans:
        _move_cursor(uow, row.id, plan, cursors.get(plan.path), summary.last)
    deleted = _expire(uow, row.id, cutoff)
    report = IngestReport(
        host=spec.name,
        dry_run=uow.dry_run,
        files=[
            IngestedFile(
                path=source.path,
                start=0 if source.compressed else source.start,
                end=None if source.compressed else source.end,
            )
            for plan in plans
            for source in plan.sources
        ],
        lines=summary.lines,
        first=summary.first,
        last=summary.last,
        hours_touched=len(kept),
        hours_skipped_as_expired=len(summary.hours) - len(kept),
        hours_deleted=deleted,
        lost_rotations=[plan.path for plan in plans if plan.lost],
    )
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "host",
        spec.name,
        domain=None,
        after={
            "lines": report.lines,
            "hours_touched": report.hours_touched,
            "hours_deleted": report.hours_deleted,
            "files": [f"{item.path}@{item.start}-{item.end}" for item in report.files],
            "lost_rotations": report.lost_rotations,
        },
        action="logs.ingest",
    )
    return report


def _hour_of(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None, minute=0, second=0, microsecond=0)


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


def _add_hours(uow: UnitOfWork, host_id: int, buckets: list[HourBucket]) -> None:
    """Add each bucket's counters to its stored hour, and merge its top lists."""
    session = uow.session
    for chunk in _chunks(sorted(buckets, key=lambda bucket: bucket.start)):
        starts = [bucket.start for bucket in chunk]
        stored = {
            row.hour: row
            for row in session.scalars(
                select(TrafficHour).where(
                    TrafficHour.host_id == host_id, TrafficHour.hour.in_(starts)
                )
            )
        }
        tops: dict[tuple[datetime, str], list[TrafficTop]] = {}
        for top in session.scalars(
            select(TrafficTop).where(TrafficTop.host_id == host_id, TrafficTop.hour.in_(starts))
        ):
            tops.setdefault((top.hour, top.kind), []).append(top)
        for bucket in chunk:
            row = stored.get(bucket.start)
            if row is None:
                row = TrafficHour(host_id=host_id, hour=bucket.start)
                for name in COUNTER_NAMES:
                    setattr(row, name, 0)
                session.add(row)
            for name in COUNTER_NAMES:
                setattr(row, name, getattr(row, name) + getattr(bucket.counts, name))
            for kind in TOP_KINDS:
                counter: Counter[str] = getattr(bucket, _TOP_COUNTERS[kind])
                _merge_top(
                    uow, host_id, bucket.start, kind, counter, tops.get((bucket.start, kind), [])
                )
    session.flush()


def _merge_top(
    uow: UnitOfWork,
    host_id: int,
    hour: datetime,
    kind: str,
    counter: Counter[str],
    rows: list[TrafficTop],
) -> None:
    if not counter:
        return
    merged: Counter[str] = Counter()
    for entry, count in counter.items():
        merged[entry[:TOP_KEY_LENGTH]] += count
    by_entry = {row.entry: row for row in rows}
    for entry, row in by_entry.items():
        merged[entry] += row.count
    # Most frequent first; ties by entry, so the cut does not depend on the reading order.
    keep = sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:TOP_PER_HOUR]
    kept = dict(keep)
    for entry, row in by_entry.items():
        if entry in kept:
            row.count = kept[entry]
        else:
            uow.session.delete(row)
    for entry, count in keep:
        if entry not in by_entry:
            uow.session.add(
                TrafficTop(host_id=host_id, kind=kind, hour=hour, entry=entry, count=count)
            )


def _move_cursor(
    uow: UnitOfWork,
    host_id: int,
    plan: _PathPlan,
    cursor: LogCursor | None,
    last_line: datetime | None,
) -> None:
    if plan.next_cursor is None:
        return  # the log is gone: keep the cursor, a rotated sibling may still hold its tail
    identity, position, size, mtime = plan.next_cursor
    if cursor is None:
        cursor = LogCursor(host_id=host_id, path=plan.path)
        uow.session.add(cursor)
    cursor.identity, cursor.position, cursor.size, cursor.mtime = identity, position, size, mtime
    if last_line is not None:
        cursor.last_line_at = last_line
    cursor.updated_at = utcnow()
    uow.session.flush()


def _expire(uow: UnitOfWork, host_id: int, cutoff: datetime) -> int:
    """Delete the host's hours (and their top lists) before `cutoff`, BATCH rows at a time."""
    deleted = 0
    for model in (TrafficTop, TrafficHour):
        while True:
            ids = uow.session.scalars(
                select(model.id).where(model.host_id == host_id, model.hour < cutoff).limit(BATCH)
            ).all()
            if not ids:
                break
            uow.session.execute(delete(model).where(model.id.in_(ids)))
            if model is TrafficHour:
                deleted += len(ids)
    return deleted


# --- reading the stored traffic --------------------------------------------------------------


def _range(
    since: datetime | None, until: datetime | None, default_days: int
) -> tuple[datetime, datetime]:
    """[since, until) on whole hours; until defaults to the end of the current hour."""
    end = _hour_of(until) if until is not None else _hour_of(datetime.now()) + timedelta(hours=1)
    if until is not None and until.replace(tzinfo=None) > end:
        end += timedelta(hours=1)  # a partial hour is included
    start = _hour_of(since) if since is not None else end - timedelta(days=default_days)
    if start >= end:
        raise ValidationError("since", "before_until", "since must be before until")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationError(
            "since", "range_too_long", f"a range is at most {MAX_RANGE_DAYS} days"
        )
    return start, end


def _host_id(uow: UnitOfWork, actor: Actor, host: str | None) -> tuple[str, int]:
    spec = hosts.spec_for(uow, actor, host, Permission.LOGS_READ)
    host_id = uow.session.scalar(select(Host.id).where(Host.name == spec.name))
    assert host_id is not None
    return spec.name, host_id


def traffic(
    uow: UnitOfWork,
    actor: Actor,
    host: str | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: Bucket = "hour",
) -> TrafficSeries:
    """The stored counters of `host` per hour or day over [since, until) (host wall-clock
    time; an offset is dropped; default: the last 24 hours, or 30 days by day)."""
    if bucket not in ("hour", "day"):
        raise ValidationError("bucket", "unknown", "bucket must be hour or day")
    name, host_id = _host_id(uow, actor, host)
    start, end = _range(since, until, 1 if bucket == "hour" else 30)
    step = timedelta(hours=1)
    if bucket == "day":
        start = start.replace(hour=0)
        if end.hour or end.minute:
            end = end.replace(hour=0) + timedelta(days=1)
        step = timedelta(days=1)
    elif (end - start) / step > MAX_HOURLY_POINTS:
        raise ValidationError(
            "bucket", "too_many_points", "hourly points cover at most 92 days; use bucket=day"
        )
    totals: dict[datetime, TrafficCounts] = {}
    moment = start
    while moment < end:
        totals[moment] = TrafficCounts()
        moment += step
    rows = uow.session.scalars(
        select(TrafficHour)
        .where(TrafficHour.host_id == host_id, TrafficHour.hour >= start, TrafficHour.hour < end)
        .order_by(TrafficHour.hour)
    )
    for row in rows:
        key = row.hour if bucket == "hour" else row.hour.replace(hour=0)
        counts = totals[key]
        for field_name in COUNTER_NAMES:
            setattr(counts, field_name, getattr(counts, field_name) + getattr(row, field_name))
    return TrafficSeries(
        host=name,
        bucket=bucket,
        since=start,
        until=end,
        points=[TrafficPoint(start=key, **counts.to_dict()) for key, counts in totals.items()],
    )


def top(
    uow: UnitOfWork,
    actor: Actor,
    host: str | None,
    *,
    kind: TopKind,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10,
) -> TopList:
    """The `limit` most frequent entries of `kind` over [since, until) (default: 24 hours)."""
    if kind not in TOP_KINDS:
        raise ValidationError("kind", "unknown", f"kind must be one of {', '.join(TOP_KINDS)}")
    if not 1 <= limit <= MAX_TOP_LIMIT:
        raise ValidationError(
            "limit", "out_of_range", f"limit must be between 1 and {MAX_TOP_LIMIT}"
        )
    name, host_id = _host_id(uow, actor, host)
    start, end = _range(since, until, 1)
    total = func.sum(TrafficTop.count).label("total")
    rows = uow.session.execute(
        select(TrafficTop.entry, total)
        .where(
            TrafficTop.host_id == host_id,
            TrafficTop.kind == kind,
            TrafficTop.hour >= start,
            TrafficTop.hour < end,
        )
        .group_by(TrafficTop.entry)
        .order_by(desc(total), TrafficTop.entry)
        .limit(limit)
    ).all()
    return TopList(
        host=name,
        kind=kind,
        since=start,
        until=end,
        entries=[TopEntry(entry=entry, count=int(count)) for entry, count in rows],
    )
