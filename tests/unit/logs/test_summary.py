"""`logs.summarize` equals pflogsumm (the real one) and the generator's ground truth.

Each shape of input (classic and RFC 3339 stamps, gzip, a rotated set, byte ranges read by
worker processes, --since, lines out of time order) is summarised and compared number by
number: grand totals, per day, per hour, every sender/recipient/domain count and size, and
every reject, deferral, bounce and warning reason with its detail.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailwarden.logs import LocalLogFile, LogSummary, rotated_set, summarize
from mailwarden.logs import engine as engine_module
from mailwarden.logs.summary import ranked
from tests.unit.logs import pflogsumm
from tests.unit.logs.conftest import WRITTEN, GeneratedLog, generate
from tests.unit.logs.pflogsumm import GRAND_TOTALS, shown

# The generator's names for reject reasons where pflogsumm's wording differs.
TRUTH_REJECT_REASONS = {
    "RBL zen.spamhaus.org": "blocked using zen.spamhaus.org",
    "RBL bl.spamcop.net": "blocked using bl.spamcop.net",
    "RBL b.barracudacentral.org": "blocked using b.barracudacentral.org",
    "Client host rejected: cannot find your hostname": "cannot find your hostname",
}


def assert_matches_truth(summary: LogSummary, truth: dict[str, Any]) -> None:
    totals = summary.to_dict()["totals"]
    assert {key: totals[key] for key in GRAND_TOTALS} == {key: truth[key] for key in GRAND_TOTALS}
    assert {
        day.isoformat(): [c.received, c.delivered, c.deferrals, c.bounced, c.rejected_column]
        for day, c in summary.per_day.items()
    } == truth["per_day"]
    assert [
        [c.received, c.delivered, c.deferrals, c.bounced, c.rejected_column]
        for c in summary.per_hour_of_day
    ] == truth["per_hour_total"]
    for ours, theirs in (
        (summary.senders, "top_senders"),
        (summary.sender_bytes, "top_senders_by_size"),
        (summary.recipients, "top_recipients"),
        (summary.recipient_domains, "top_recipient_domains"),
        (summary.sending_domains, "top_sending_domains"),
    ):
        expected = truth[theirs]
        assert [count for _, count in ranked(ours, len(expected))] == [n for _, n in expected]
        assert all(ours[name] == count for name, count in expected)
    reject_reasons: Counter[str] = Counter()
    for reasons in summary.rejects.values():
        for reason, details in reasons.items():
            reject_reasons[reason] += sum(details.values())
    assert reject_reasons == {
        TRUTH_REJECT_REASONS.get(name, name): count for name, count in truth["reject_reasons"]
    }
    assert sum(sum(c.values()) for c in summary.deferral_reasons.values()) == truth["deferrals"]
    assert sum(sum(c.values()) for c in summary.bounce_reasons.values()) == truth["bounced"]
    assert sum(sum(c.values()) for c in summary.warnings.values()) == truth["smtpd_warnings"]


def assert_matches_pflogsumm(summary: LogSummary, report: pflogsumm.Report) -> None:
    totals = summary.to_dict()["totals"]
    assert report.totals == {key: shown(totals[key]) for key in report.totals}
    assert set(report.totals) >= {"received", "delivered", "deferred", "bytes_delivered"}
    # pflogsumm prints days only for a log of more than one.
    assert report.per_day == {
        (f"{day:%b}", day.day): [
            shown(value)
            for value in (c.received, c.delivered, c.deferrals, c.bounced, c.rejected_column)
        ]
        for day, c in summary.per_day.items()
        if len(summary.per_day) > 1
    }
    days = len(summary.per_day)
    assert report.per_hour == [
        [
            shown(value / days + 0.5)
            for value in (c.received, c.delivered, c.deferrals, c.bounced, c.rejected_column)
        ]
        for c in summary.per_hour_of_day
    ]
    domains = set(summary.recipient_domains) | set(summary.recipient_domain_deferrals)
    assert report.recipient_domains == {
        domain: (
            shown(summary.recipient_domains[domain]),
            shown(summary.recipient_domain_bytes[domain]),
            summary.recipient_domain_deferrals[domain],
        )
        for domain in domains
    }
    assert report.sending_domains == {
        domain: (shown(count), shown(summary.sending_domain_bytes[domain]))
        for domain, count in summary.sending_domains.items()
    }
    for name in ("senders", "recipients", "sender_bytes", "recipient_bytes"):
        ours = getattr(summary, name)
        assert report.lists.get(name, {}) == {key: shown(value) for key, value in ours.items()}
    assert report.nested.get("deferrals", {}) == summary.deferral_reasons
    assert report.nested.get("bounces", {}) == summary.bounce_reasons
    assert report.nested.get("warnings", {}) == summary.warnings
    for name in ("rejects", "reject_warnings", "holds", "discards"):
        assert report.rejects.get(name, {}) == getattr(summary, name)


def comparable(summary: LogSummary) -> dict[str, Any]:
    """Everything but the names of the files read."""
    result = summary.to_dict()
    del result["sources"]
    return result


@pytest.mark.parametrize(
    ("size", "seed", "days", "iso"),
    [("2M", 3, 2, False), ("2M", 7, 1.5, True), ("1M", 21, 3, False)],
    ids=["classic", "iso", "three-days"],
)
def test_summary_equals_pflogsumm_and_the_ground_truth(
    logs_dir: Path, size: str, seed: int, days: float, iso: bool
) -> None:
    log = generate(logs_dir, size=size, seed=seed, days=days, iso=iso)

    summary = summarize([LocalLogFile(log.path)], workers=1)

    assert summary.totals.received > 300 and summary.totals.rejected > 100
    assert_matches_truth(summary, log.truth)
    assert_matches_pflogsumm(summary, pflogsumm.run(log.path))


def test_worker_processes_reading_byte_ranges_count_the_same(
    logs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = generate(logs_dir, size="3M", seed=11, days=1.5, iso=False)
    whole = summarize([LocalLogFile(log.path)], workers=1, hourly=True)
    # Ranges of ~300 KB read in 64 KB chunks: messages straddle ranges and chunks everywhere.
    monkeypatch.setattr(engine_module, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(engine_module, "RANGE_SIZE", 300_000)
    monkeypatch.setattr(engine_module, "CHUNK_SIZE", 65_536)
    advanced: list[int] = []

    parallel = summarize([LocalLogFile(log.path)], workers=2, hourly=True, progress=advanced.append)

    assert comparable(parallel) == comparable(whole)
    assert sum(advanced) == log.path.stat().st_size
    assert_matches_truth(parallel, log.truth)


def test_hour_buckets_add_up_to_the_totals(classic_log: GeneratedLog) -> None:
    summary = summarize([LocalLogFile(classic_log.path)], workers=1, hourly=True)

    buckets = list(summary.hours.values())
    assert summary.first is not None and summary.last is not None
    first_hour = summary.first.replace(minute=0, second=0)
    hours = int((summary.last - first_hour).total_seconds() // 3600) + 1
    assert sorted(summary.hours) == [first_hour + timedelta(hours=n) for n in range(hours)]
    for field in ("received", "delivered", "deferrals", "bounced", "rejected", "bytes_received"):
        assert sum(getattr(b.counts, field) for b in buckets) == getattr(summary.totals, field)
    assert sum((b.senders for b in buckets), Counter()) == summary.senders
    assert sum((b.recipients for b in buckets), Counter()) == summary.recipients
    assert sum((b.sender_domains for b in buckets), Counter()) == summary.sending_domains
    assert sum((b.recipient_domains for b in buckets), Counter()) == summary.recipient_domains
    rejects = sum((b.reject_reasons for b in buckets), Counter())
    assert sum(rejects.values()) == summary.totals.rejected
    assert rejects["RCPT: Relay access denied"] == sum(
        summary.rejects["RCPT"]["Relay access denied"].values()
    )
    assert all(b.start.minute == 0 and b.start.year == 2024 for b in buckets)


def test_a_gzip_file_reads_like_the_plain_one(
    classic_log: GeneratedLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = tmp_path / "mail.log.3.gz"
    packed.write_bytes(gzip.compress(classic_log.path.read_bytes()))
    os.utime(packed, (WRITTEN, WRITTEN))
    plain = summarize([LocalLogFile(classic_log.path)], workers=1)

    assert comparable(summarize([LocalLogFile(packed)], workers=1)) == comparable(plain)
    # A stream handed to worker processes chunk by chunk.
    monkeypatch.setattr(engine_module, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(engine_module, "CHUNK_SIZE", 200_000)
    monkeypatch.setattr(engine_module, "RANGE_SIZE", 500_000)
    mixed = summarize([LocalLogFile(packed)], workers=2)
    assert comparable(mixed) == comparable(plain)


def test_a_rotated_set_reads_as_one_log_oldest_first(
    classic_log: GeneratedLog, tmp_path: Path
) -> None:
    lines = classic_log.path.read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    (tmp_path / "mail.log.2.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
    (tmp_path / "mail.log.1").write_bytes(b"".join(lines[third : 2 * third]))
    (tmp_path / "mail.log").write_bytes(b"".join(lines[2 * third :]))
    (tmp_path / "mail.err").write_bytes(b"not part of it\n")
    for path in tmp_path.iterdir():
        os.utime(path, (WRITTEN, WRITTEN))

    files = rotated_set(tmp_path / "mail.log")

    assert [path.name for path in files] == ["mail.log.2.gz", "mail.log.1", "mail.log"]
    rotated = summarize([LocalLogFile(path) for path in files], workers=1)
    whole = summarize([LocalLogFile(classic_log.path)], workers=1)
    assert comparable(rotated) == comparable(whole)
    assert_matches_truth(rotated, classic_log.truth)


def test_since_skips_the_log_up_to_that_time(classic_log: GeneratedLog, tmp_path: Path) -> None:
    since = datetime(2024, 3, 1, 13, 30)
    lines = classic_log.path.read_bytes().splitlines(keepends=True)
    # "Mar  1 13:30:00" sorts like the times themselves within one month.
    first = next(i for i, line in enumerate(lines) if line[:15] >= b"Mar  1 13:30:00")
    tail = tmp_path / "tail.log"
    tail.write_bytes(b"".join(lines[first:]))
    os.utime(tail, (WRITTEN, WRITTEN))

    summary = summarize([LocalLogFile(classic_log.path)], since=since, workers=1)

    assert summary.first is not None and summary.first >= since
    assert min(summary.per_day) == date(2024, 3, 1)
    assert comparable(summary) == comparable(summarize([LocalLogFile(tail)], workers=1))
    assert_matches_pflogsumm(summary, pflogsumm.run(tail))


def test_since_on_a_stream_and_on_byte_ranges(
    classic_log: GeneratedLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = datetime(2024, 3, 2, 9, 0)
    packed = tmp_path / "mail.log.1.gz"
    packed.write_bytes(gzip.compress(classic_log.path.read_bytes()))
    os.utime(packed, (WRITTEN, WRITTEN))
    expected = comparable(summarize([LocalLogFile(classic_log.path)], since=since, workers=1))

    assert comparable(summarize([LocalLogFile(packed)], since=since, workers=1)) == expected
    monkeypatch.setattr(engine_module, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(engine_module, "RANGE_SIZE", 250_000)
    monkeypatch.setattr(engine_module, "CHUNK_SIZE", 100_000)
    parallel = summarize([LocalLogFile(classic_log.path)], since=since, workers=2)
    assert comparable(parallel) == expected


def test_lines_out_of_time_order_count_in_their_own_hour(
    classic_log: GeneratedLog, tmp_path: Path
) -> None:
    lines = classic_log.path.read_bytes().splitlines(keepends=True)
    # Around every hour boundary, the last line but one of the hour swaps with the next hour's
    # first: what a syslog daemon writing several sources does. Not at midnight: pflogsumm
    # divides its hourly averages by how often the day changed from one line to the next.
    for index in range(1, len(lines) - 2):
        hour, following = lines[index][:10], lines[index + 1][:10]
        if hour != following and hour == lines[index - 1][:10] and hour[:6] == following[:6]:
            lines[index - 1], lines[index + 1] = lines[index + 1], lines[index - 1]
    lines.insert(len(lines) // 2, b"a line without a time stamp\n")
    shuffled = tmp_path / "shuffled.log"
    shuffled.write_bytes(b"".join(lines))
    os.utime(shuffled, (WRITTEN, WRITTEN))

    summary = summarize([LocalLogFile(shuffled)], workers=1)

    assert_matches_pflogsumm(summary, pflogsumm.run(shuffled))


def test_held_discarded_forwarded_and_cleanup_rejects(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(
        b"Mar  1 10:00:00 mx postfix/smtpd[1]: AAA1: client=mx.example.net[192.0.2.1]\n"
        b"Mar  1 10:00:01 mx postfix/cleanup[2]: AAA1: hold: header Subject: hi from "
        b"mx.example.net[192.0.2.1]; from=<a@example.net> to=<b@example.org> proto=ESMTP\n"
        b"Mar  1 10:00:01 mx postfix/qmgr[3]: AAA1: from=<A.B@Example.NET>, size=100, nrcpt=1"
        b" (queue active)\n"
        b"Mar  1 10:00:02 mx postfix/local[4]: AAA1: to=<b@Example.org>, relay=local, "
        b"delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (forwarded as BBB1)\n"
        b"Mar  1 10:00:02 mx postfix/local[4]: AAA1: to=<c@example.org>, relay=local, "
        b"delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n"
        b"Mar  1 10:00:03 mx postfix/qmgr[3]: AAA1: removed\n"
        b"Mar  1 10:00:04 mx postfix/cleanup[2]: CCC1: reject: body viagra from "
        b"x[192.0.2.9]; from=<s@spam.example> to=<b@example.org> proto=ESMTP: 5.7.1 no\n"
        b"Mar  1 10:00:05 mx postfix/smtpd[1]: NOQUEUE: discard: RCPT from x[192.0.2.9]: "
        b"<s@spam.example>: Sender address triggers DISCARD action; from=<s@spam.example> "
        b"to=<b@example.org> proto=ESMTP helo=<x>\n"
        b"Mar  1 10:00:06 mx postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from "
        b"x[192.0.2.9]: 450 4.1.8 <s@spam.example>: Sender address rejected: Domain not "
        b"found; from=<s@spam.example> to=<b@example.org> proto=ESMTP helo=<x>\n"
        b"Mar  1 10:00:07 mx postfix/smtpd[1]: warning: x[192.0.2.9]: SASL LOGIN "
        b"authentication failed: UGFzc3dvcmQ6\n"
        b"Mar  1 10:00:08 mx dovecot: imap-login: Login: user=<b@example.org>, method=PLAIN, "
        b"rip=192.0.2.7, lip=192.0.2.1, mpid=7, TLS, session=<x>\n"
        b"Mar  1 10:00:09 mx dovecot: pop3-login: Disconnected: Connection closed (auth "
        b"failed, 1 attempts in 2 secs): user=<c@example.org>, method=PLAIN, rip=192.0.2.8, "
        b"lip=192.0.2.1, TLS, session=<y>\n"
        b"Mar  1 10:00:09 mx dovecot: auth: passwd-file(c@example.org,192.0.2.8,<y>): "
        b"Password mismatch"
    )
    os.utime(log, (WRITTEN, WRITTEN))

    summary = summarize([LocalLogFile(log)], workers=1)

    totals = summary.totals
    assert (totals.received, totals.delivered, totals.forwarded) == (1, 1, 1)
    assert (totals.held, totals.discarded, totals.rejected, totals.reject_warnings) == (1, 1, 1, 1)
    assert (totals.bytes_received, totals.bytes_delivered) == (100, 100)
    assert summary.senders == {"A.B@example.net": 1}
    assert summary.recipients == {"c@example.org": 1}
    assert summary.per_day[date(2024, 3, 1)].rejected_column == 4
    assert summary.smtp_auth_failures.total == 1
    assert summary.smtp_auth_failures.clients == {"x[192.0.2.9]": 1}
    assert summary.dovecot.logins == {"imap": 1}
    assert summary.dovecot.auth_failures == {"pop3": 1}
    assert summary.dovecot.auth_failure_clients == {"192.0.2.8": 1}
    assert summary.dovecot.auth_failure_users == {"c@example.org": 1}
    assert summary.dovecot.auth_failure_reasons == {"Password mismatch": 1}
    assert summary.lines == 13
    assert_matches_pflogsumm(summary, pflogsumm.run(log))


def test_an_empty_log_gives_an_empty_summary(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")

    summary = summarize([LocalLogFile(log)], workers=1)

    assert summary.totals.received == 0 and summary.first is None and summary.days == 0


def test_summaries_of_two_hosts_merge_by_adding_up(
    classic_log: GeneratedLog, logs_dir: Path
) -> None:
    other = generate(logs_dir, size="1M", seed=21, days=3, iso=False)
    first = summarize([LocalLogFile(classic_log.path)], workers=1, hourly=True)
    second = summarize([LocalLogFile(other.path)], workers=1, hourly=True)
    expected_senders = first.senders + second.senders
    expected_rejects = first.totals.rejected + second.totals.rejected
    hours = set(first.hours) | set(second.hours)

    first.merge(second)

    assert first.sources == [str(classic_log.path), str(other.path)]
    assert first.totals.rejected == expected_rejects
    assert first.totals.received == classic_log.truth["received"] + other.truth["received"]
    assert first.senders == expected_senders
    assert set(first.hours) == hours
    assert sum(b.counts.delivered for b in first.hours.values()) == first.totals.delivered
    assert first.days == len(first.per_day)
