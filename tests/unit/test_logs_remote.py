"""Reading a host's logs through its runner: rotated siblings, byte windows, gzip by magic."""

from __future__ import annotations

import gzip
from pathlib import Path

from mailwarden.logs.remote import HostLogFile, host_sources, last_line_end, rotated_names
from mailwarden.stack.hosts.local import LocalRunner

RUNNER = LocalRunner("here")


def test_rotated_names_are_oldest_first_and_only_of_the_live_file() -> None:
    names = [
        "mail.log",
        "mail.log.1",
        "mail.log.10.gz",
        "mail.log.2.gz",
        "mail.log-20261120.gz",
        "mail.log-20261119",
        "mail.err.1",
        "mail.logger",
        "dovecot.log.1",
    ]

    assert rotated_names(names, "mail.log") == [
        "mail.log-20261119",
        "mail.log-20261120.gz",
        "mail.log.10.gz",
        "mail.log.2.gz",
        "mail.log.1",
    ]


def test_host_sources_read_plain_and_gzip_siblings_then_the_live_file(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(b"live\n")
    (tmp_path / "mail.log.1").write_bytes(b"one\n")
    # Compressed, whatever the name says: recognised by its magic bytes.
    (tmp_path / "mail.log.2").write_bytes(gzip.compress(b"two\n"))
    (tmp_path / "mail.log.3.gz").write_bytes(gzip.compress(b"three\n"))

    sources = host_sources(RUNNER, str(tmp_path / "mail.log"))

    contents = []
    for source in sources:
        with source.open() as stream:
            contents.append(stream.read())
    assert contents == [b"three\n", b"two\n", b"one\n", b"live\n"]
    assert [source.compressed for source in sources] == [True, True, False, False]
    assert sources[-1].name == f"here:{tmp_path / 'mail.log'}"


def test_a_window_reads_only_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"first line\nsecond line\nthird, still being writ")
    info = RUNNER.stat(str(path))
    assert info is not None

    end = last_line_end(RUNNER, str(path), 0, info.size)
    window = HostLogFile(RUNNER, str(path), info, start=11, end=end)

    assert end == len(b"first line\nsecond line\n")
    with window.open() as stream:
        assert stream.read() == b"second line\n"


def test_last_line_end_looks_back_over_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"a\n" + b"x" * 200_000)

    assert last_line_end(RUNNER, str(path), 0, 200_002) == 2
    # No complete line after the start: nothing to read yet.
    assert last_line_end(RUNNER, str(path), 2, 200_002) == 2
