"""The aggregate of a mail log: what pflogsumm reports, plus SMTP AUTH and Dovecot logins.

Every count follows pflogsumm 1.1.5 (Debian's `pflogsumm`), so a report can be checked against it:

- received: `smtpd`/`postscreen` "QID: client=" lines plus `pickup` "QID: uid=|sender=" lines.
- bytes received, senders, sending domains: the first "from=<..>, size=N" line of a *received*
  queue id (a queue activation by qmgr); the first such line of any queue id fixes its size.
  Mail Postfix generated itself (bounces, i.e. `from=<>` without a client line) is not received.
- delivered: "to=<..>, relay=.., delay=.., status=sent" lines, one per recipient;
  bytes delivered adds the message's size once per delivered recipient.
  "status=sent (... forwarded as QID)" counts as forwarded instead.
- deferrals: every "status=deferred" line; deferred: distinct queue ids with at least one.
- bounced: "status=bounced" lines.
- rejected / reject warnings / held / discarded: smtpd "reject:" (`NOQUEUE: reject: RCPT
  from ...`), "reject_warning:", "hold:", "discard:" lines, and cleanup header/body checks.
- per day and per hour: the "rejected" column is rejected + reject warnings + held + discarded,
  as pflogsumm counts it; "deferred" in those tables is deferrals.
- addresses keep their local part as logged and lower-case everything from the "@".

Unlike pflogsumm, a queue id's data is forgotten once qmgr logs "QID: removed", which bounds the
memory on big logs (pflogsumm keeps every size it has seen).

Times are naive local wall-clock times exactly as logged (an RFC 3339 stamp's offset is dropped),
the way pflogsumm reads them.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from operator import itemgetter
from typing import Any

# group -> reason -> detail (client, address, ...) -> count, as pflogsumm's nested hashes.
ReasonDetail = dict[str, dict[str, Counter[str]]]
# group -> reason -> count (deferrals are grouped by delivery agent, bounces by relay).
ReasonCounts = dict[str, Counter[str]]


@dataclass
class TrafficCounts:
    """pflogsumm's "Grand Totals" counters; also the counters of one day or one hour.

    `deferred` is the number of distinct queue ids deferred at least once within the span the
    counters cover (the whole log for the totals, the day or the hour otherwise).
    """

    received: int = 0
    delivered: int = 0
    forwarded: int = 0
    deferred: int = 0
    deferrals: int = 0
    bounced: int = 0
    rejected: int = 0
    reject_warnings: int = 0
    held: int = 0
    discarded: int = 0
    bytes_received: int = 0
    bytes_delivered: int = 0

    @property
    def rejected_column(self) -> int:
        """What pflogsumm's per-day and per-hour tables show as "rejected"."""
        return self.rejected + self.reject_warnings + self.held + self.discarded

    def add(self, other: TrafficCounts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def to_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass
class HourBucket:
    """One clock hour (`summarize(..., hourly=True)`): the counters and who was involved.

    `start` is naive local time truncated to the hour. Senders (and sending domains) are counted
    at the message's first queue activation, recipients (and their domains) per delivered
    recipient, reject reasons per reject line as "STAGE: reason" (e.g. "RCPT: blocked using
    zen.spamhaus.org"), all within this hour.
    """

    start: datetime
    counts: TrafficCounts = field(default_factory=TrafficCounts)
    senders: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    sender_domains: Counter[str] = field(default_factory=Counter)
    recipient_domains: Counter[str] = field(default_factory=Counter)
    reject_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: HourBucket) -> None:
        self.counts.add(other.counts)
        self.senders.update(other.senders)
        self.recipients.update(other.recipients)
        self.sender_domains.update(other.sender_domains)
        self.recipient_domains.update(other.recipient_domains)
        self.reject_reasons.update(other.reject_reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            **self.counts.to_dict(),
            "senders": dict(self.senders),
            "recipients": dict(self.recipients),
            "sender_domains": dict(self.sender_domains),
            "recipient_domains": dict(self.recipient_domains),
            "reject_reasons": dict(self.reject_reasons),
        }


@dataclass
class SmtpAuthFailures:
    """smtpd "warning: CLIENT: SASL MECH authentication failed: ..." lines."""

    total: int = 0
    clients: Counter[str] = field(default_factory=Counter)  # "host[ip]" as logged
    usernames: Counter[str] = field(default_factory=Counter)  # when sasl_username= is logged

    def add(self, other: SmtpAuthFailures) -> None:
        self.total += other.total
        self.clients.update(other.clients)
        self.usernames.update(other.usernames)


@dataclass
class DovecotActivity:
    """Dovecot logins and authentication failures.

    logins: "<proto>-login: Login: user=<..>" lines per protocol (imap, pop3, ...);
    auth_failures: "<proto>-login: ... (auth failed, N attempts ...)" lines per protocol, with the
    user and remote ip they name; auth_failure_reasons: the auth process's own verdicts
    ("unknown user", "Password mismatch", ...).
    """

    logins: Counter[str] = field(default_factory=Counter)
    login_users: Counter[str] = field(default_factory=Counter)
    auth_failures: Counter[str] = field(default_factory=Counter)
    auth_failure_users: Counter[str] = field(default_factory=Counter)
    auth_failure_clients: Counter[str] = field(default_factory=Counter)
    auth_failure_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: DovecotActivity) -> None:
        for item in fields(self):
            getattr(self, item.name).update(getattr(other, item.name))


@dataclass
class LogSummary:
    """Everything `summarize()` learnt from one pass over a set of logs.

    Per-address and per-domain Counters are complete (not truncated); `top()` and the report
    choose what to show. Keys are `str` (the log's bytes decoded as UTF-8, bad bytes escaped).

    - sources: names of the sources read, in order; lines / bytes_read: what was read from them
      (after `since`).
    - first / last: the earliest and latest line time seen (None for an empty log).
    - per_day: counters per calendar day; per_hour_of_day: 24 counters (hour 0..23) summed over
      all days; days: how many calendar days the log touches (pflogsumm divides the hour table by
      it to show a daily average).
    - senders / sender_bytes: messages and bytes per envelope sender (received mail only;
      an empty sender is "from=<>"); sending_domains / sending_domain_bytes likewise per domain
      (the client's domain when the sender has none, as pflogsumm does).
    - recipients / recipient_bytes: delivered recipients; recipient_domains /
      recipient_domain_bytes per domain; recipient_domain_deferrals: deferrals per domain.
    - rejects, reject_warnings, holds, discards: stage (RCPT, MAIL, CONNECT, DATA, header, body
      ...) -> reason -> client/address -> count, as pflogsumm's "message reject detail".
    - deferral_reasons: delivery agent (smtp, lmtp ...) -> reason -> count;
      bounce_reasons: relay -> reason -> count.
    - warnings: daemon (smtpd, ...) -> warning text -> count.
    - no_size_deliveries: delivered recipients whose message size was not in the log.
    - hours: clock-hour buckets, filled only with `hourly=True`.
    """

    sources: list[str] = field(default_factory=list)
    lines: int = 0
    bytes_read: int = 0
    first: datetime | None = None
    last: datetime | None = None
    totals: TrafficCounts = field(default_factory=TrafficCounts)
    per_day: dict[date, TrafficCounts] = field(default_factory=dict)
    per_hour_of_day: list[TrafficCounts] = field(
        default_factory=lambda: [TrafficCounts() for _ in range(24)]
    )
    senders: Counter[str] = field(default_factory=Counter)
    sender_bytes: Counter[str] = field(default_factory=Counter)
    sending_domains: Counter[str] = field(default_factory=Counter)
    sending_domain_bytes: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    recipient_bytes: Counter[str] = field(default_factory=Counter)
    recipient_domains: Counter[str] = field(default_factory=Counter)
    recipient_domain_bytes: Counter[str] = field(default_factory=Counter)
    recipient_domain_deferrals: Counter[str] = field(default_factory=Counter)
    rejects: ReasonDetail = field(default_factory=dict)
    reject_warnings: ReasonDetail = field(default_factory=dict)
    holds: ReasonDetail = field(default_factory=dict)
    discards: ReasonDetail = field(default_factory=dict)
    deferral_reasons: ReasonCounts = field(default_factory=dict)
    bounce_reasons: ReasonCounts = field(default_factory=dict)
    warnings: ReasonCounts = field(default_factory=dict)
    smtp_auth_failures: SmtpAuthFailures = field(default_factory=SmtpAuthFailures)
    dovecot: DovecotActivity = field(default_factory=DovecotActivity)
    no_size_deliveries: int = 0
    hours: dict[datetime, HourBucket] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return len(self.per_day)

    def merge(self, other: LogSummary) -> None:
        """Add the summary of another, independent log (another host) to this one.

        Counts add up; a message whose lines are split between the two logs is not joined, and
        `deferred` adds the two distinct counts.
        """
        self.sources.extend(other.sources)
        self.lines += other.lines
        self.bytes_read += other.bytes_read
        if other.first is not None and (self.first is None or other.first < self.first):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last > self.last):
            self.last = other.last
        self.totals.add(other.totals)
        for day, counts in other.per_day.items():
            self.per_day.setdefault(day, TrafficCounts()).add(counts)
        for mine, theirs in zip(self.per_hour_of_day, other.per_hour_of_day, strict=True):
            mine.add(theirs)
        for name in _COUNTER_FIELDS:
            getattr(self, name).update(getattr(other, name))
        for name in _DETAIL_FIELDS:
            merge_reason_detail(getattr(self, name), getattr(other, name))
        for name in _COUNTS_FIELDS:
            merge_reason_counts(getattr(self, name), getattr(other, name))
        self.smtp_auth_failures.add(other.smtp_auth_failures)
        self.dovecot.add(other.dovecot)
        self.no_size_deliveries += other.no_size_deliveries
        for start, bucket in other.hours.items():
            self.hours.setdefault(start, HourBucket(start)).add(bucket)

    def to_dict(self, *, top: int | None = None) -> dict[str, Any]:
        """A JSON-ready structure; `top` cuts every per-address/per-domain list to N entries."""
        return {
            "sources": list(self.sources),
            "lines": self.lines,
            "bytes_read": self.bytes_read,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "days": self.days,
            "totals": {
                **self.totals.to_dict(),
                "senders": len(self.senders),
                "sending_domains": len(self.sending_domains),
                "recipients": len(self.recipients),
                "recipient_domains": len(self.recipient_domains),
            },
            "per_day": {day.isoformat(): c.to_dict() for day, c in sorted(self.per_day.items())},
            "per_hour_of_day": [c.to_dict() for c in self.per_hour_of_day],
            "top_senders": ranked(self.senders, top),
            "top_senders_by_size": ranked(self.sender_bytes, top),
            "top_recipients": ranked(self.recipients, top),
            "top_recipients_by_size": ranked(self.recipient_bytes, top),
            "top_sending_domains": ranked(self.sending_domains, top),
            "top_sending_domains_by_size": ranked(self.sending_domain_bytes, top),
            "top_recipient_domains": ranked(self.recipient_domains, top),
            "top_recipient_domains_by_size": ranked(self.recipient_domain_bytes, top),
            "recipient_domain_deferrals": ranked(self.recipient_domain_deferrals, top),
            "rejects": detail_to_list(self.rejects, top),
            "reject_warnings": detail_to_list(self.reject_warnings, top),
            "holds": detail_to_list(self.holds, top),
            "discards": detail_to_list(self.discards, top),
            "deferral_reasons": counts_to_list(self.deferral_reasons, top),
            "bounce_reasons": counts_to_list(self.bounce_reasons, top),
            "warnings": counts_to_list(self.warnings, top),
            "smtp_auth_failures": {
                "total": self.smtp_auth_failures.total,
                "clients": ranked(self.smtp_auth_failures.clients, top),
                "usernames": ranked(self.smtp_auth_failures.usernames, top),
            },
            "dovecot": {
                "logins": dict(self.dovecot.logins),
                "login_users": ranked(self.dovecot.login_users, top),
                "auth_failures": dict(self.dovecot.auth_failures),
                "auth_failure_users": ranked(self.dovecot.auth_failure_users, top),
                "auth_failure_clients": ranked(self.dovecot.auth_failure_clients, top),
                "auth_failure_reasons": dict(self.dovecot.auth_failure_reasons),
            },
            "no_size_deliveries": self.no_size_deliveries,
            "hours": [self.hours[start].to_dict() for start in sorted(self.hours)],
        }


_COUNTER_FIELDS = (
    "senders",
    "sender_bytes",
    "sending_domains",
    "sending_domain_bytes",
    "recipients",
    "recipient_bytes",
    "recipient_domains",
    "recipient_domain_bytes",
    "recipient_domain_deferrals",
)
_DETAIL_FIELDS = ("rejects", "reject_warnings", "holds", "discards")
_COUNTS_FIELDS = ("deferral_reasons", "bounce_reasons", "warnings")


def ranked(counter: Mapping[str, int], top: int | None = None) -> list[tuple[str, int]]:
    """Highest count first; ties in key order, so the output is stable."""
    if top is not None and top < len(counter):
        # The top N of a big counter without sorting it all: the N largest (a C-level key),
        # then every entry tied with the smallest of them, so ties still go by key.
        largest = heapq.nlargest(top, counter.items(), key=itemgetter(1))
        floor = largest[-1][1] if largest else 0
        above = [item for item in largest if item[1] > floor]
        tied = [item for item in counter.items() if item[1] == floor]
        items = sorted(above, key=_by_count_then_key) + sorted(tied)[: top - len(above)]
        return items
    items = sorted(counter.items(), key=_by_count_then_key)
    return items if top is None else items[:top]


def _by_count_then_key(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def merge_reason_detail(into: ReasonDetail, other: ReasonDetail) -> None:
    for group, reasons in other.items():
        mine = into.setdefault(group, {})
        for reason, details in reasons.items():
            mine.setdefault(reason, Counter()).update(details)


def merge_reason_counts(into: ReasonCounts, other: ReasonCounts) -> None:
    for group, reasons in other.items():
        into.setdefault(group, Counter()).update(reasons)


def detail_to_list(detail: ReasonDetail, top: int | None) -> list[dict[str, Any]]:
    """[{group, reason, count, detail: [[item, n], ...]}], biggest reasons first."""
    rows = [
        {
            "group": group,
            "reason": reason,
            "count": sum(details.values()),
            "detail": ranked(details, top),
        }
        for group, reasons in detail.items()
        for reason, details in reasons.items()
    ]
    rows.sort(key=_by_count)
    return rows


def counts_to_list(counts: ReasonCounts, top: int | None) -> list[dict[str, Any]]:
    """[{group, reason, count}], biggest first; `top` applies per group."""
    rows = [
        {"group": group, "reason": reason, "count": count}
        for group, reasons in sorted(counts.items())
        for reason, count in ranked(reasons, top)
    ]
    rows.sort(key=_by_count)
    return rows


def _by_count(row: dict[str, Any]) -> tuple[int, str, str]:
    return (-int(row["count"]), str(row["group"]), str(row["reason"]))
