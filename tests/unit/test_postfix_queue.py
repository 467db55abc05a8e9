"""Postfix queue ids and `postqueue -j` / `postcat` output, parsed without a Postfix.

The output below was captured from the devstack's Postfix 3.7; tests/e2e/test_queue.py runs
the same code against the real thing.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mailwarden.kernel.errors import ValidationError
from mailwarden.stack.hosts import HostSpec, LocalTransport
from mailwarden.stack.postfix.queue import (
    QueueFilter,
    QueueOutputError,
    check_queue_ids,
    is_queue_id,
    parse_entry,
    parse_postcat,
    parse_queue,
    queue_states,
    select_page,
    stream_lines,
)

CAPTURED_LINE = (
    b'{"queue_name": "deferred", "queue_id": "8E6B720C005", "arrival_time": 1795266977, '
    b'"message_size": 502, "forced_expire": false, "sender": "s@sender.example", '
    b'"recipients": [{"address": "r@closed-09d06c.example", "delay_reason": "connect to '
    b'127.0.0.1[127.0.0.1]:9: Connection refused"}]}'
)
CAPTURED_POSTCAT = b"""\
*** ENVELOPE RECORDS deferred/8/8E6B720C005 ***
message_size:             502             678               1               0             502
message_arrival_time: Sat Nov 21 13:16:17 2026
named_attribute: rewrite_context=local
sender: s@sender.example
original_recipient: r@closed-09d06c.example
recipient: r@closed-09d06c.example
*** MESSAGE CONTENTS deferred/8/8E6B720C005 ***
Received: from [127.0.0.1] (unknown [127.0.0.1])
\tby devstack.mailwarden.test (Postfix) with ESMTP id 8E6B720C005
From: s@sender.example
Subject: Scratch subject
*** HEADER EXTRACTED deferred/8/8E6B720C005 ***
*** MESSAGE FILE END deferred/8/8E6B720C005 ***
"""

HOSTILE = [
    "ALL",
    "all",
    "-",
    "--",
    "-d",
    "ABC; rm -rf /",
    "../x",
    "8E6B72\u00c9C005",
    "8E6B720C005\x00",
    "8E6B720C005\n",
    " 8E6B720C005",
    "A" * 10_000,
    "",
    "ABCDE",  # too short for either form
    "8e6b720c005",  # short ids are upper-case hex
    "4Xk9Tq1Bs2z",  # a long id needs an inode part after the z
    "4Xk9Tq1Bs2zJ7Lnz",  # the inode part has no z
    "4Xk9Tq1Baezz7Ln",  # vowels are not in Postfix's alphabet
]


def test_it_accepts_both_queue_id_forms() -> None:
    assert is_queue_id("8E6B720C005")
    assert is_queue_id("3F1A2B")
    assert is_queue_id("4Xk9Tq1Bs2zJ7Ln")
    assert is_queue_id("4d2Gxz0bJ3z1Tq")  # a z inside the time part: the last one separates
    assert check_queue_ids(["8E6B720C005", "8E6B720C005", "4Xk9Tq1Bs2zJ7Ln"]) == [
        "8E6B720C005",
        "4Xk9Tq1Bs2zJ7Ln",
    ]


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda text: repr(text[:16]))
def test_it_refuses_hostile_ids_naming_the_field_and_rule(hostile: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_queue_ids(["8E6B720C005", hostile])
    assert refused.value.field == "ids"
    assert refused.value.rule == "invalid_queue_id"
    assert "item 2" in refused.value.message


def test_it_refuses_no_ids_and_too_many() -> None:
    with pytest.raises(ValidationError) as empty:
        check_queue_ids([])
    assert (empty.value.field, empty.value.rule) == ("ids", "required")
    with pytest.raises(ValidationError) as many:
        check_queue_ids(["8E6B720C005"] * 501)
    assert (many.value.field, many.value.rule) == ("ids", "too_many")


def test_it_parses_captured_postqueue_output() -> None:
    entry = parse_entry(CAPTURED_LINE)
    assert entry.queue_id == "8E6B720C005"
    assert entry.queue_name == "deferred"
    assert entry.arrival_time == 1795266977
    assert entry.size == 502
    assert entry.sender == "s@sender.example"
    assert entry.recipients[0].address == "r@closed-09d06c.example"
    assert entry.recipients[0].reason is not None
    assert "Connection refused" in entry.recipients[0].reason
    assert entry.forced_expire is False


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"queue_id": "ALL", "queue_name": "deferred", "arrival_time": 1}',
        b'{"queue_id": "8E6B720C005", "queue_name": "deferred", "arrival_time": -1}',
        b'{"queue_id": "8E6B720C005", "queue_name": "deferred", "arrival_time": 1, '
        b'"recipients": "x"}',
    ],
)
def test_it_refuses_what_is_not_postqueue_output(line: bytes) -> None:
    with pytest.raises(QueueOutputError):
        parse_entry(line)


def _line(queue_id: str, arrival: int, queue: str = "deferred", sender: str = "a@x") -> bytes:
    record = {
        "queue_name": queue,
        "queue_id": queue_id,
        "arrival_time": arrival,
        "message_size": 100,
        "sender": sender,
        "recipients": [{"address": f"r-{queue_id}@y", "delay_reason": "timeout"}],
    }
    return json.dumps(record).encode()


def test_it_pages_by_arrival_time_then_id_whatever_the_queue_order() -> None:
    # The queue's own order (a directory scan) is not arrival order.
    arrivals = {f"{n:06X}AB": 1000 + (n * 7919) % 50 for n in range(1, 200)}
    output = b"\n".join(_line(queue_id, arrival) for queue_id, arrival in arrivals.items())
    expected = sorted(arrivals, key=lambda queue_id: (arrivals[queue_id], queue_id))
    seen: list[str] = []
    after = None
    while True:
        page, more = select_page(
            parse_queue(stream_lines([output])), QueueFilter(), limit=30, after=after
        )
        seen += [entry.queue_id for entry in page]
        if not more:
            break
        after = page[-1].position
    assert seen == expected


def test_it_keeps_at_most_a_page_while_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 messages, newest first (the worst order for a bounded heap): the heap of kept
    entries never grows beyond one page and the one entry that says another page exists."""
    output = b"\n".join(_line(f"{n:06X}CD", n) for n in range(5000, 0, -1))
    push = heapq.heappush
    sizes: list[int] = []

    def watched(heap: list[Any], item: Any) -> None:
        push(heap, item)
        sizes.append(len(heap))

    monkeypatch.setattr(heapq, "heappush", watched)
    page, more = select_page(
        parse_queue(stream_lines([output])), QueueFilter(), limit=20, after=None
    )
    assert max(sizes) == 21
    assert [entry.arrival_time for entry in page] == list(range(1, 21))
    assert more


def test_it_filters_by_queue_sender_recipient_reason_and_age() -> None:
    output = b"\n".join(
        [
            _line("AAAAAA01", 100, "deferred", "news@list.example"),
            _line("AAAAAA02", 200, "hold", "alice@example.org"),
            _line("AAAAAA03", 300, "active", "NEWS@list.example"),
        ]
    )

    def ids(wanted: QueueFilter) -> list[str]:
        page, _ = select_page(parse_queue(stream_lines([output])), wanted, limit=10, after=None)
        return [entry.queue_id for entry in page]

    assert ids(QueueFilter(queue_name="hold")) == ["AAAAAA02"]
    assert ids(QueueFilter(sender="news@")) == ["AAAAAA01", "AAAAAA03"]
    assert ids(QueueFilter(recipient="r-AAAAAA03")) == ["AAAAAA03"]
    assert ids(QueueFilter(reason="TIMEOUT")) == ["AAAAAA01", "AAAAAA02", "AAAAAA03"]
    assert ids(QueueFilter(reason="refused")) == []
    assert ids(QueueFilter(arrived_before=200)) == ["AAAAAA01", "AAAAAA02"]


def test_it_reads_envelope_and_headers_of_captured_postcat_output() -> None:
    view = parse_postcat(CAPTURED_POSTCAT)
    assert ("sender", "s@sender.example") in view.envelope
    assert ("recipient", "r@closed-09d06c.example") in view.envelope
    headers = dict(view.headers)
    assert headers["Subject"] == "Scratch subject"
    assert headers["Received"].endswith("with ESMTP id 8E6B720C005")
    assert not view.truncated


def test_it_cuts_huge_postcat_output() -> None:
    huge = CAPTURED_POSTCAT + b"X-Filler: " + b"y" * 400_000 + b"\n"
    assert parse_postcat(huge).truncated


class _Output:
    """What a runner streams for `postqueue -j`: the captured line among others, in chunks of
    7 bytes (lines cut anywhere, as a pipe or an SSH window cuts them)."""

    def __init__(self, stdout: bytes) -> None:
        self.stdout = stdout
        self.argv: list[list[str]] = []

    def stream(self, argv: list[str], **_: Any) -> Iterator[bytes]:
        self.argv.append(list(argv))
        for start in range(0, len(self.stdout), 7):
            yield self.stdout[start : start + 7]


def test_lines_come_whole_however_the_chunks_cut_them() -> None:
    output = b"first line\n\n  \nsecond\r\nthird without newline"
    expected = [b"first line", b"second", b"third without newline"]
    for size in range(1, len(output) + 1):
        chunks = [output[start : start + size] for start in range(0, len(output), size)]
        assert list(stream_lines(chunks)) == expected, size
    assert list(stream_lines([])) == []
    assert list(stream_lines([b"\n\n"])) == []


def test_it_finds_the_queue_of_each_wanted_id() -> None:
    output = b"\n".join(
        [_line("AAAAAA01", 1, "hold"), CAPTURED_LINE, _line("AAAAAA03", 3, "active")]
    )
    runner = _Output(output)
    spec = HostSpec(name="mx1", transport=LocalTransport(), postfix_config_dir="/etc/pf")
    found = queue_states(runner, spec, ["8E6B720C005", "AAAAAA03", "BBBBBB99"])  # type: ignore[arg-type]
    assert found == {"8E6B720C005": "deferred", "AAAAAA03": "active"}
    assert runner.argv == [["/usr/sbin/postqueue", "-c", "/etc/pf", "-j"]]
