"""Log sources, rotated sets, --since and the worker processes."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailwarden.kernel.errors import ValidationError
from mailwarden.logs import LocalLogFile, rotated_set
from mailwarden.logs.engine import parse_since
from mailwarden.logs.records import Clock
from mailwarden.logs.sources import order_rotated
from mailwarden.logs.workers import WorkerError, WorkerPool


def test_gzip_is_recognised_by_its_content_not_its_name(tmp_path: Path) -> None:
    packed = tmp_path / "mail.log.1"
    packed.write_bytes(gzip.compress(b"line\n"))
    plain = tmp_path / "mail.log"
    plain.write_bytes(b"line\n")

    assert LocalLogFile(packed).plain_path is None
    assert LocalLogFile(plain).plain_path == plain
    with LocalLogFile(packed).open() as stream:
        assert stream.read() == b"line\n"


def test_missing_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        LocalLogFile(tmp_path / "gone.log")
    with pytest.raises(ValidationError, match="cannot read"):
        LocalLogFile(tmp_path)  # a directory
    with pytest.raises(ValidationError, match="no rotated siblings"):
        rotated_set(tmp_path / "gone.log")


def test_rotated_names_sort_oldest_first(tmp_path: Path) -> None:
    for name in ("mail.log", "mail.log.1", "mail.log.2.gz", "mail.log.10.gz", "mail.log-20240301"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "mail.logger").write_bytes(b"")

    expected = ["mail.log-20240301", "mail.log.10.gz", "mail.log.2.gz", "mail.log.1", "mail.log"]
    assert [path.name for path in rotated_set(tmp_path / "mail.log")] == expected
    # As a shell glob names them: each set in time order, sets in the order given.
    other = tmp_path / "other.log"
    shuffled = [tmp_path / "mail.log", other, tmp_path / "mail.log.2.gz", tmp_path / "mail.log.1"]
    assert [path.name for path in order_rotated(shuffled)] == [
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
        "other.log",
    ]


def test_since_takes_dates_times_and_spans() -> None:
    now = datetime(2024, 3, 5, 12, 0)

    assert parse_since("2024-03-01", now) == datetime(2024, 3, 1)
    assert parse_since("2024-03-01T12:30", now) == datetime(2024, 3, 1, 12, 30)
    assert parse_since("24h", now) == datetime(2024, 3, 4, 12, 0)
    assert parse_since("7d", now) == datetime(2024, 2, 27, 12, 0)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    aware = parse_since("2024-03-01T12:00+00:00", now)
    assert aware == datetime(2024, 3, 1, 12, tzinfo=UTC).astimezone().replace(tzinfo=None)
    for bad in ("yesterday", "7", "2024-13-01", "-1d"):
        with pytest.raises(ValidationError) as refused:
            parse_since(bad, now)
        assert refused.value.field == "since"


def test_classic_stamps_take_the_year_of_the_reference() -> None:
    january = Clock(datetime(2024, 1, 3))

    assert january.line_time(b"Dec 31 23:59:58 mx postfix/qmgr[1]: x\n", 0) == datetime(
        2023, 12, 31, 23, 59, 58
    )
    assert january.line_time(b"Jan  2 00:00:01 mx postfix/qmgr[1]: x\n", 0) == datetime(
        2024, 1, 2, 0, 0, 1
    )
    assert january.line_time(b"2022-06-01T10:00:00.123456+02:00 mx x\n", 0) == datetime(
        2022, 6, 1, 10, 0, 0
    )
    assert january.line_time(b"no stamp here\n", 0) is None
    assert january.hour_start(b"Feb 30 10:") is None


def test_a_failing_task_fails_the_run_with_the_workers_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.log")
    with WorkerPool(1) as pool, pytest.raises(WorkerError, match="FileNotFoundError"):
        list(pool.run([("scan_file_range", (missing, 0, 10, None, False, 1024))]))
