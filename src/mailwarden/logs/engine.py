"""One pass over a set of mail logs: `summarize(sources) -> LogSummary`.

Plain local files are cut into newline-aligned byte ranges that worker processes (see
workers.py) read in bounded chunks; compressed and remote sources are read here as one stream
and their chunks handed to the same workers. Inputs with less than PARALLEL_THRESHOLD bytes of
plain files are read in this process alone. Each task returns a `scanner.Partial`; partials
are joined in log order, so a message whose lines straddle two ranges (or a rotation) is
counted exactly once, as if the logs had been read line by line. Memory stays bounded: a few
chunks in flight, message state dropped when qmgr logs "removed", and the aggregate itself.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from mailwarden.kernel.errors import ValidationError

from .records import Clock
from .scanner import (
    BOUNCED,
    BYTES_DELIVERED,
    BYTES_RECEIVED,
    DEFERRALS,
    DELIVERED,
    DISCARDED,
    FORWARDED,
    HELD,
    RECEIVED,
    REJECT_WARNINGS,
    REJECTED,
    Partial,
)
from .sources import LogSource
from .summary import HourBucket, LogSummary, ReasonCounts, ReasonDetail, TrafficCounts
from .tallies import HourTallies, RejectRows, Tallies
from .workers import Task, WorkerPool

CHUNK_SIZE = 1 << 20  # bytes read at a time
RANGE_SIZE = 64 << 20  # bytes of a plain file one task covers, at most
PARALLEL_THRESHOLD = 24 << 20  # smaller inputs are read here, without worker processes

Progress = Callable[[int], None]


_RELATIVE = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO date or date-time (2024-03-01, 2024-03-01T12:00, with or without an
    offset) or a span back from now (90m, 24h, 7d, 2w). Returns naive local time."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        span = timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return (now or datetime.now()) - span
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            "since",
            "time",
            "must be an ISO date or date-time (2024-03-01, 2024-03-01T12:00) "
            "or a span such as 24h or 7d",
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def summarize(
    sources: Sequence[LogSource],
    *,
    since: datetime | None = None,
    workers: int | None = None,
    hourly: bool = False,
    progress: Progress | None = None,
) -> LogSummary:
    """Read `sources` in the order given (oldest first) and aggregate them.

    since: skip each log up to its first line at or after this time (naive local time, as the
    log's; an aware datetime is converted to local time). workers: processes reading in parallel
    (default: one per CPU; 1 reads everything in this process). hourly: also fill
    `LogSummary.hours`. progress: called with the number of bytes just read.
    """
    if since is not None and since.tzinfo is not None:
        since = since.astimezone().replace(tzinfo=None)
    workers = default_workers() if workers is None else max(1, workers)
    total_plain = sum(
        path.stat().st_size for source in sources if (path := source.plain_path) is not None
    )
    if workers > 1 and total_plain >= PARALLEL_THRESHOLD:
        return _summarize_parallel(sources, since, workers, hourly, progress)
    return _summarize_inline(sources, since, hourly, progress)


# --- tasks ------------------------------------------------------------------------------------


def scan_file_range(
    path: str, start: int, end: int, reference: datetime | None, hourly: bool, chunk_size: int
) -> Partial:
    """Worker task: the whole lines of `path` in [start, end) (start is a line start)."""
    partial = Partial(reference, hourly)
    with open(path, "rb") as handle:
        handle.seek(start)
        for buf, cut in _chunks(handle, end - start, chunk_size):
            partial.scan(buf, cut)
    partial.finish()
    return partial


def scan_bytes(data: bytes, reference: datetime | None, hourly: bool) -> Partial:
    """Worker task: a chunk of whole lines."""
    partial = Partial(reference, hourly)
    partial.scan(data)
    partial.finish()
    return partial


def _chunks(handle: BinaryIO, limit: int | None, chunk_size: int) -> Iterator[tuple[bytes, int]]:
    """(buffer, end): `buffer[:end]` is the next run of whole lines, each ending in "\\n"."""
    carry = b""
    remaining = limit
    while remaining is None or remaining > 0:
        data = handle.read(chunk_size if remaining is None else min(chunk_size, remaining))
        if not data:
            break
        if remaining is not None:
            remaining -= len(data)
        buf = carry + data if carry else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            carry = buf
            continue
        carry = buf[cut:]
        yield buf, cut
    if carry:
        yield carry + b"\n", len(carry) + 1


def _ranges(path: Path, start: int, size: int, pieces: int) -> list[tuple[int, int]]:
    """`pieces` newline-aligned byte ranges covering [start, size) of a file."""
    if start >= size:
        return []
    step = max(1 << 20, -(-(size - start) // pieces))
    bounds = [start]
    with path.open("rb") as handle:
        position = start + step
        while position < size:
            handle.seek(position - 1)
            handle.readline()  # to the end of the line `position - 1` is in
            aligned = handle.tell()
            if aligned >= size:
                break
            if aligned > bounds[-1]:
                bounds.append(aligned)
            position = aligned + step
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _offset_since(path: Path, size: int, clock: Clock, since: datetime) -> int:
    """Where the first line at or after `since` starts, searching a log in time order."""
    with path.open("rb") as handle:

        def line_after(position: int) -> tuple[int, datetime | None]:
            handle.seek(max(position - 1, 0))
            if position > 0:
                handle.readline()
            start = handle.tell()
            return start, clock.line_time(handle.readline(), 0)

        low, high = 0, size
        while high - low > 65536:
            middle = (low + high) // 2
            _, when = line_after(middle)
            if when is not None and when >= since:
                high = middle
            else:
                low = middle
        handle.seek(max(low - 1, 0))
        if low > 0:
            handle.readline()
        while True:
            start = handle.tell()
            line = handle.readline()
            if not line:
                return size
            when = clock.line_time(line, 0)
            if when is not None and when >= since:
                return start


def _skip_before(buf: bytes, end: int, clock: Clock, since: datetime) -> int:
    """Offset of the first line in `buf[:end]` at or after `since` (`end` when none is)."""
    position = 0
    while position < end:
        when = clock.line_time(buf, position)
        if when is not None and when >= since:
            return position
        position = buf.find(b"\n", position, end) + 1 or end
    return end


def _stream_chunks(
    source: LogSource, since: datetime | None, progress: Progress | None
) -> Iterator[bytes]:
    clock = Clock(source.modified)
    started = since is None
    with source.open() as handle:
        for buf, cut in _chunks(handle, None, CHUNK_SIZE):
            if progress is not None:
                progress(cut)
            if not started:
                assert since is not None
                first = _skip_before(buf, cut, clock, since)
                if first == cut:
                    continue
                started = True
                yield buf[first:cut]
                continue
            yield buf if cut == len(buf) else buf[:cut]


# --- the two ways of running ------------------------------------------------------------------


def _summarize_inline(
    sources: Sequence[LogSource],
    since: datetime | None,
    hourly: bool,
    progress: Progress | None,
) -> LogSummary:
    joined = _Joined()
    for source in sources:
        partial = Partial(source.modified, hourly)
        path = source.plain_path
        if path is not None:
            size = path.stat().st_size
            start = 0 if since is None else _offset_since(path, size, Clock(source.modified), since)
            with path.open("rb") as handle:
                handle.seek(start)
                for buf, cut in _chunks(handle, size - start, CHUNK_SIZE):
                    partial.scan(buf, cut)
                    if progress is not None:
                        progress(cut)
        else:
            for chunk in _stream_chunks(source, since, progress):
                partial.scan(chunk)
        partial.finish()
        joined.add(partial)
    return joined.summary([source.name for source in sources])


def _summarize_parallel(
    sources: Sequence[LogSource],
    since: datetime | None,
    workers: int,
    hourly: bool,
    progress: Progress | None,
) -> LogSummary:
    joined = _Joined()
    # Bytes to report once each task's result is in (streams report as they are read).
    reports: deque[int] = deque()

    def tasks() -> Iterator[Task]:
        for source in sources:
            path = source.plain_path
            if path is None:
                for chunk in _stream_chunks(source, since, progress):
                    reports.append(0)
                    yield "scan_bytes", (chunk, source.modified, hourly)
                continue
            size = path.stat().st_size
            start = 0 if since is None else _offset_since(path, size, Clock(source.modified), since)
            pieces = max(workers * 2, -(-(size - start) // RANGE_SIZE))
            for low, high in _ranges(path, start, size, pieces):
                reports.append(high - low)
                yield "scan_file_range", (str(path), low, high, source.modified, hourly, CHUNK_SIZE)

    with WorkerPool(workers) as pool:
        for partial in pool.run(tasks()):
            joined.add(partial)
            done = reports.popleft()
            if progress is not None and done:
                progress(done)
    return joined.summary([source.name for source in sources])


# --- joining partials -------------------------------------------------------------------------


class _Joined:
    """The partials joined in log order."""

    def __init__(self) -> None:
        self.state = Partial(None, False)  # message state: sizes and clients so far
        self.hourly = False
        self.lines = 0
        self.bytes = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.hours: dict[datetime, list[int]] = {}
        self.deferred: dict[datetime, set[bytes]] = {}
        self.tallies = Tallies()
        self.hour_tallies: dict[datetime, HourTallies] = {}
        self.sasl_failures = 0
        self.no_size = 0

    def add(self, partial: Partial) -> None:
        """Join the next partial (already `finish()`ed)."""
        self.state.absorb(partial)
        self.hourly = self.hourly or partial.hourly
        clock = Clock(partial.reference)
        self.lines += partial.lines
        self.bytes += partial.bytes
        for line, earliest in ((partial.first, True), (partial.last, False)):
            when = clock.line_time(line, 0) if line else None
            if when is None:
                continue
            if earliest and (self.first is None or when < self.first):
                self.first = when
            if not earliest and (self.last is None or when > self.last):
                self.last = when
        for key, counts in partial.hours.items():
            hour = clock.hour_start(key)
            if hour is None:
                continue
            mine = self.hours.get(hour)
            if mine is None:
                self.hours[hour] = list(counts)
            else:
                for index, value in enumerate(counts):
                    mine[index] += value
        for key, qids in partial.deferred.items():
            hour = clock.hour_start(key)
            if hour is not None:
                self.deferred.setdefault(hour, set()).update(qids)
        self.tallies.add(partial.tallies)
        for key, tallies in partial.hour_tallies.items():
            hour = clock.hour_start(key)
            if hour is not None:
                self.hour_tallies.setdefault(hour, HourTallies()).add(tallies)
        self.sasl_failures += partial.sasl_failures
        self.no_size += partial.no_size

    def summary(self, names: list[str]) -> LogSummary:
        tallies = self.tallies
        result = LogSummary(
            sources=names,
            lines=self.lines,
            bytes_read=self.bytes,
            first=self.first,
            last=self.last,
            senders=tallies.senders,
            sender_bytes=tallies.sender_bytes,
            sending_domains=tallies.sending_domains,
            sending_domain_bytes=tallies.sending_domain_bytes,
            recipients=tallies.recipients,
            recipient_bytes=tallies.recipient_bytes,
            recipient_domains=tallies.recipient_domains,
            recipient_domain_bytes=tallies.recipient_domain_bytes,
            recipient_domain_deferrals=tallies.recipient_domain_deferrals,
            deferral_reasons=_reason_counts(tallies.deferral_reasons),
            bounce_reasons=_reason_counts(tallies.bounce_reasons),
            warnings=_reason_counts(tallies.warnings),
            no_size_deliveries=self.no_size,
        )
        details = _reason_details(tallies.rejects)
        result.rejects = details[REJECTED]
        result.reject_warnings = details[REJECT_WARNINGS]
        result.holds = details[HELD]
        result.discards = details[DISCARDED]
        result.smtp_auth_failures.total = self.sasl_failures
        result.smtp_auth_failures.clients = tallies.sasl_clients
        result.smtp_auth_failures.usernames = tallies.sasl_usernames
        dovecot = result.dovecot
        for row, count in tallies.dovecot.items():
            protocol, login, user, failed_user, address, verdict = row
            if login:
                dovecot.logins[protocol] += count
                dovecot.login_users[user] += count
            elif protocol:
                dovecot.auth_failures[protocol] += count
                dovecot.auth_failure_clients[address] += count
                if failed_user:
                    dovecot.auth_failure_users[failed_user] += count
            elif verdict:
                dovecot.auth_failure_reasons[verdict] += count

        every_deferred: set[bytes] = set()
        per_day_deferred: dict[date, set[bytes]] = {}
        per_hour_deferred: dict[int, set[bytes]] = {}
        for hour, qids in self.deferred.items():
            every_deferred.update(qids)
            per_day_deferred.setdefault(hour.date(), set()).update(qids)
            per_hour_deferred.setdefault(hour.hour, set()).update(qids)
        for hour, counts in sorted(self.hours.items()):
            traffic = _traffic(counts, len(self.deferred.get(hour, ())))
            result.totals.add(traffic)
            result.per_day.setdefault(hour.date(), TrafficCounts()).add(traffic)
            result.per_hour_of_day[hour.hour].add(traffic)
            if self.hourly:
                who = self.hour_tallies.get(hour, HourTallies())
                result.hours[hour] = HourBucket(
                    start=hour,
                    counts=traffic,
                    senders=who.senders,
                    recipients=who.recipients,
                    sender_domains=who.sender_domains,
                    recipient_domains=who.recipient_domains,
                    reject_reasons=who.reject_reasons,
                )
        result.totals.deferred = len(every_deferred)
        for day, counts_of_day in result.per_day.items():
            counts_of_day.deferred = len(per_day_deferred.get(day, ()))
        for hour_of_day, counts_of_hour in enumerate(result.per_hour_of_day):
            counts_of_hour.deferred = len(per_hour_deferred.get(hour_of_day, ()))
        return result


def _reason_details(rows: RejectRows) -> dict[int, ReasonDetail]:
    """Reject rows nested as pflogsumm prints them, per kind (the detail Counters moved)."""
    result: dict[int, ReasonDetail] = {REJECTED: {}, REJECT_WARNINGS: {}, HELD: {}, DISCARDED: {}}
    for (kind, stage, reason), details in rows.items():
        result[kind].setdefault(stage, {})[reason] = details
    return result


def _reason_counts(rows: Counter[tuple[str, str]]) -> ReasonCounts:
    result: ReasonCounts = {}
    for (group, reason), count in rows.items():
        result.setdefault(group, Counter())[reason] = count
    return result


def _traffic(counts: list[int], deferred: int) -> TrafficCounts:
    return TrafficCounts(
        received=counts[RECEIVED],
        delivered=counts[DELIVERED],
        forwarded=counts[FORWARDED],
        deferred=deferred,
        deferrals=counts[DEFERRALS],
        bounced=counts[BOUNCED],
        rejected=counts[REJECTED],
        reject_warnings=counts[REJECT_WARNINGS],
        held=counts[HELD],
        discarded=counts[DISCARDED],
        bytes_received=counts[BYTES_RECEIVED],
        bytes_delivered=counts[BYTES_DELIVERED],
    )
