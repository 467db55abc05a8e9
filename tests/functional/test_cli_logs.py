"""`mailwarden logs summary`: the report, --json, --since, --rotated and refusals."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tests.functional.cli_helpers import ok, refused, run_json
from tests.unit.logs.conftest import WRITTEN, GeneratedLog, generate


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLog:
    return generate(tmp_path_factory.mktemp("clilogs"), size="600K", seed=5, days=1, iso=False)


@pytest.fixture
def unused_url(tmp_path: Path) -> str:
    # The command reads files only: a database that is never created proves it.
    return f"sqlite:///{tmp_path / 'never-created.db'}"


def test_json_carries_the_totals_and_top_lists(small_log: GeneratedLog, unused_url: str) -> None:
    data = run_json(unused_url, "logs", "summary", str(small_log.path), "--top", "3")

    truth = small_log.truth
    for key in ("received", "delivered", "deferred", "bounced", "rejected", "bytes_delivered"):
        assert data["totals"][key] == truth[key], key
    assert data["totals"]["senders"] == truth["senders"]
    assert len(data["top_senders"]) == 3
    assert data["top_senders"][0][1] == truth["top_senders"][0][1]
    assert list(data["per_day"]) == list(truth["per_day"])
    assert len(data["per_hour_of_day"]) == 24
    assert {"dovecot", "smtp_auth_failures", "rejects", "deferral_reasons"} <= set(data)
    assert not Path(unused_url.removeprefix("sqlite:///")).exists()


def test_the_report_fits_a_terminal(small_log: GeneratedLog, unused_url: str) -> None:
    result = ok(unused_url, "logs", "summary", str(small_log.path), env={"COLUMNS": "100"})

    text = result.stdout
    for heading in ("Grand totals", "Per day", "Per hour of day", "Top senders", "Reject reasons"):
        assert heading in text
    assert f"{small_log.truth['delivered']:,}" in text
    assert max(len(line) for line in text.splitlines()) <= 200


def test_rotated_siblings_and_since(
    small_log: GeneratedLog, tmp_path: Path, unused_url: str
) -> None:
    lines = small_log.path.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    (tmp_path / "mail.log.1.gz").write_bytes(gzip.compress(b"".join(lines[:half])))
    (tmp_path / "mail.log").write_bytes(b"".join(lines[half:]))
    for path in tmp_path.iterdir():
        os.utime(path, (WRITTEN, WRITTEN))

    both = run_json(unused_url, "logs", "summary", str(tmp_path / "mail.log"), "--rotated")
    # Named newest first, read oldest first.
    named = run_json(
        unused_url, "logs", "summary", str(tmp_path / "mail.log"), str(tmp_path / "mail.log.1.gz")
    )
    later = run_json(
        unused_url, "logs", "summary", str(small_log.path), "--since", "2024-03-01T12:00"
    )

    assert both["totals"]["delivered"] == small_log.truth["delivered"]
    assert [Path(name).name for name in named["sources"]] == ["mail.log.1.gz", "mail.log"]
    assert named["totals"] == both["totals"]
    assert later["first"] >= "2024-03-01T12:00:00"
    assert 0 < later["totals"]["delivered"] < small_log.truth["delivered"]


def test_refusals_name_the_problem(tmp_path: Path, unused_url: str) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")

    assert "since" in refused(unused_url, "logs", "summary", str(log), "--since", "yesterday")
    assert "does not exist" in refused(
        unused_url, "logs", "summary", str(tmp_path / "gone.log"), "--rotated"
    )
    assert "cannot read" in refused(unused_url, "logs", "summary", str(tmp_path / "gone.log"))
