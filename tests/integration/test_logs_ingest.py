"""`logs ingest` on generated mail logs of a host reached locally and over a real SSH server.

The generator (tests/support/maillog_generator.py) writes the ground truth of each log it
makes: the stored hourly counters must add up to the truth of everything written, however the
writing is split into runs, appended to or rotated, and a run over data already read must add
nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text

from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.logs import service
from mailwarden.logs.models import LogCursor, TrafficHour, TrafficTop
from mailwarden.logs.schemas import IngestReport
from tests.conftest import UowFactory
from tests.support.sshd import SshServer

OPERATOR = Actor.local_operator(Channel.SYSTEM)
# The shared gen_maillog.py, copied verbatim into the test support code.
GENERATOR = Path(__file__).resolve().parents[1] / "support" / "maillog_generator.py"
# Counters made from one log line each: exact whatever the split between runs.
LINE_COUNTERS = (
    "received",
    "delivered",
    "forwarded",
    "deferrals",
    "bounced",
    "rejected",
    "reject_warnings",
    "held",
    "discarded",
)


@dataclass(frozen=True)
class LogHost:
    name: str
    log: Path


@pytest.fixture(params=["local", "ssh"])
def log_host(
    request: pytest.FixtureRequest, make_uow: UowFactory, tmp_path: Path
) -> Iterator[LogHost]:
    """A host whose mail log is tmp_path/mail.log, reached locally or over SSH."""
    transport: str = request.param
    log = tmp_path / "logs" / "mail.log"
    log.parent.mkdir()
    fields: dict[str, Any] = {"name": f"{transport}-mx", "transport": transport}
    fields["log_paths"] = [str(log)]
    if transport == "ssh":
        server: SshServer = request.getfixturevalue("ssh_server")
        fields["ssh_target"] = f"{server.user}@{server.host}:{server.port}"
        fields["ssh_key_file"] = str(server.client_key)
        fields["host_key_fingerprint"] = server.host_key_fingerprint
    with make_uow() as uow:
        hosts.create(uow, OPERATOR, parse(HostCreate, fields))
        uow.finish()
    yield LogHost(fields["name"], log)


def generate(
    directory: Path, seed: int, start: datetime, size: str = "150K"
) -> tuple[bytes, dict[str, Any]]:
    """A generated log starting on `start`'s day, and its ground truth."""
    out = directory / f"gen-{seed}.log"
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--size",
            size,
            "--days",
            "1",
            "--seed",
            str(seed),
            "--year",
            str(start.year),
            "--month",
            str(start.month),
            "--day",
            str(start.day),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    truth: dict[str, Any] = json.loads(out.with_name(out.name + ".truth.json").read_text())
    return out.read_bytes(), truth


def ingest(
    make_uow: UowFactory, name: str, *, dry_run: bool = False, **options: Any
) -> IngestReport:
    with make_uow(dry_run=dry_run) as uow:
        report = service.ingest(uow, OPERATOR, name, **options)
        uow.finish()
    return report


def stored_totals(make_uow: UowFactory, name: str) -> dict[str, int]:
    """The host's stored counters summed over the last 30 days, read through the service."""
    with make_uow(dry_run=True) as uow:
        series = service.traffic(
            uow, OPERATOR, name, since=datetime.now() - timedelta(days=30), bucket="day"
        )
    return {
        counter: sum(getattr(point, counter) for point in series.points)
        for counter in LINE_COUNTERS
    }


def truth_of(*truths: dict[str, Any]) -> dict[str, int]:
    return {counter: sum(truth[counter] for truth in truths) for counter in LINE_COUNTERS}


def days_ago(days: int) -> datetime:
    return datetime.now() - timedelta(days=days)


def test_ingest_counts_appended_and_rotated_logs_once(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path
) -> None:
    first, first_truth = generate(tmp_path, 1, days_ago(8), "300K")
    second, second_truth = generate(tmp_path, 2, days_ago(6))
    before_rotation, before_truth = generate(tmp_path, 3, days_ago(5))
    after_rotation, after_truth = generate(tmp_path, 4, days_ago(4))
    log_host.log.write_bytes(first)

    report = ingest(make_uow, log_host.name)

    assert report.lines == first_truth["lines"]
    assert report.files[0].end == len(first)
    assert stored_totals(make_uow, log_host.name) == truth_of(first_truth)
    assert first_truth["received"] > 50 and first_truth["rejected"] > 10

    # Appended lines only are read; a run over nothing new adds nothing.
    with log_host.log.open("ab") as log:
        log.write(second)
    report = ingest(make_uow, log_host.name)
    assert report.lines == second_truth["lines"]
    assert report.files[0].start == len(first)
    assert ingest(make_uow, log_host.name).lines == 0
    assert stored_totals(make_uow, log_host.name) == truth_of(first_truth, second_truth)

    # Lines written just before a rotation are read from the rotated file, then the new one.
    with log_host.log.open("ab") as log:
        log.write(before_rotation)
    log_host.log.rename(log_host.log.with_name("mail.log.1"))
    log_host.log.write_bytes(after_rotation)
    report = ingest(make_uow, log_host.name)

    assert [(Path(f.path).name, f.start) for f in report.files] == [
        ("mail.log.1", len(first) + len(second)),
        ("mail.log", 0),
    ]
    assert report.lost_rotations == []
    assert stored_totals(make_uow, log_host.name) == truth_of(
        first_truth, second_truth, before_truth, after_truth
    )
    assert ingest(make_uow, log_host.name).lines == 0
    assert stored_totals(make_uow, log_host.name) == truth_of(
        first_truth, second_truth, before_truth, after_truth
    )


def test_a_log_between_its_rotation_and_its_next_line(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path
) -> None:
    parts = [generate(tmp_path, 11 + index, days_ago(6 - index)) for index in range(4)]
    rotated = log_host.log.with_name("mail.log.1")
    # Before the first run the log was rotated and nothing written since: wait for it.
    rotated.write_bytes(parts[0][0])
    assert ingest(make_uow, log_host.name).files == []

    log_host.log.write_bytes(parts[1][0])
    assert len(ingest(make_uow, log_host.name).files) == 2
    # Rotated again; until the daemon reopens its log, lines still go to the old file.
    log_host.log.rename(rotated)
    with rotated.open("ab") as old:
        old.write(parts[2][0])
    in_between = ingest(make_uow, log_host.name)
    log_host.log.write_bytes(parts[3][0])
    reopened = ingest(make_uow, log_host.name)

    assert in_between.lines == parts[2][1]["lines"]
    assert reopened.lines == parts[3][1]["lines"] and reopened.lost_rotations == []
    assert stored_totals(make_uow, log_host.name) == truth_of(*(truth for _, truth in parts))


def test_a_line_being_written_waits_for_the_next_run(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path
) -> None:
    data, truth = generate(tmp_path, 5, days_ago(3))
    cut = data.rindex(b"\n", 0, len(data) - 1) + 20  # into the last line
    log_host.log.write_bytes(data[:cut])

    first = ingest(make_uow, log_host.name)
    with log_host.log.open("ab") as log:
        log.write(data[cut:])
    second = ingest(make_uow, log_host.name)

    assert (first.lines, second.lines) == (truth["lines"] - 1, 1)
    assert stored_totals(make_uow, log_host.name) == truth_of(truth)


def test_the_first_run_reads_rotated_siblings_and_the_top_lists_match_the_truth(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path
) -> None:
    older, older_truth = generate(tmp_path, 6, days_ago(3))
    newer, newer_truth = generate(tmp_path, 7, days_ago(2))
    log_host.log.with_name("mail.log.1").write_bytes(older)
    log_host.log.write_bytes(newer)

    report = ingest(make_uow, log_host.name)

    assert [Path(f.path).name for f in report.files] == ["mail.log.1", "mail.log"]
    assert stored_totals(make_uow, log_host.name) == truth_of(older_truth, newer_truth)
    with make_uow(dry_run=True) as uow:
        top = service.top(
            uow, OPERATOR, log_host.name, kind="sender", since=days_ago(3) - timedelta(days=1)
        )
        recipients = service.top(
            uow,
            OPERATOR,
            log_host.name,
            kind="recipient_domain",
            since=days_ago(3) - timedelta(days=1),
            limit=3,
        )
    assert top.entries and len(recipients.entries) == 3
    assert recipients.entries[0].count >= recipients.entries[-1].count


def test_a_dry_run_reads_and_reports_but_stores_nothing(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path, connection: Connection
) -> None:
    data, truth = generate(tmp_path, 8, days_ago(2))
    log_host.log.write_bytes(data)

    planned = ingest(make_uow, log_host.name, dry_run=True)

    assert planned.dry_run and planned.lines == truth["lines"] and planned.hours_touched > 0
    for model in (TrafficHour, TrafficTop, LogCursor):
        assert connection.scalar(select(func.count()).select_from(model)) == 0
    done = ingest(make_uow, log_host.name)
    assert (done.lines, done.hours_touched) == (planned.lines, planned.hours_touched)
    entry = connection.execute(
        text("SELECT object_key, after FROM audit_log WHERE action = 'logs.ingest'")
    ).one()
    assert entry.object_key == log_host.name
    after = entry.after if isinstance(entry.after, dict) else json.loads(entry.after)
    assert after["lines"] == truth["lines"] and after["hours_touched"] == done.hours_touched


def test_retention_deletes_old_hours_and_skips_expired_ones(
    log_host: LogHost, make_uow: UowFactory, tmp_path: Path, connection: Connection
) -> None:
    data, _ = generate(tmp_path, 9, days_ago(10))
    log_host.log.write_bytes(data)
    stored = ingest(make_uow, log_host.name).hours_touched
    assert stored > 20

    # Thirty days on, with a week of retention: every stored hour goes, tops with it.
    later = ingest(
        make_uow, log_host.name, retention_days=7, now=datetime.now() + timedelta(days=30)
    )

    assert later.hours_deleted == stored
    for model in (TrafficHour, TrafficTop):
        assert connection.scalar(select(func.count()).select_from(model)) == 0

    # Hours already beyond the retention are not stored at all.
    log_host.log.rename(log_host.log.with_name("mail.log.1"))
    (tmp_path / "again").mkdir()
    old, _ = generate(tmp_path / "again", 10, days_ago(20))
    log_host.log.write_bytes(old)
    skipped = ingest(make_uow, log_host.name, retention_days=7)
    assert skipped.lines > 0
    assert skipped.hours_touched == 0 and skipped.hours_skipped_as_expired > 0


def test_ingest_refuses_a_retention_out_of_range(log_host: LogHost, make_uow: UowFactory) -> None:
    with pytest.raises(ValidationError, match="retention"):
        ingest(make_uow, log_host.name, retention_days=0)
