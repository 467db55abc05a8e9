"""Postfix's mail queue on a host: list it (`postqueue -j`), show a message's envelope and
headers (`postcat -e -h -q`), hold, release, requeue and delete messages (`postsuper`), and
retry the deferred ones now (`postqueue -f`).

Every command is built by `HostSpec.postfix_command`, so `-c config_dir` names the instance.
Queue ids reach `postsuper`/`postcat` only after `check_queue_ids`: each one alone in its argv
item, in one of Postfix's two id forms, so `ALL`, `-` (read ids from stdin) or an option can
never be passed on.

Listing order: by arrival time, then queue id, with the last (arrival time, id) of a page as the
cursor of the next. The queue's own order (a directory scan) changes as messages move between
queues, so a cursor into it could skip or repeat messages; arrival time does not change. The
output of `postqueue -j` (one JSON object per message and line) is parsed line by line and only
the `limit + 1` first matches after the cursor are kept (a bounded heap), so a queue of 100,000
messages never becomes 100,000 objects.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mailwarden.kernel.errors import ValidationError
from mailwarden.stack.hosts import HostRunner, HostSpec

# Postfix's "safe" alphabet (safe_ultostr.c): digits and consonants, no vowels.
SAFE_ALPHABET: Final = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
# Long ids (enable_long_queue_ids = yes): the time in seconds (base 52, six or more characters)
# and microseconds (base 52, exactly four), "z", then the inode number in base 51: the same
# alphabet without "z", so the last "z" is the separator (mail_queue.h, MQID_LG_*).
_LONG_ID: Final = re.compile(
    rf"[{SAFE_ALPHABET}]{{10,}}z[{SAFE_ALPHABET.replace('z', '')}]+", re.ASCII
)
# Short ids (the default): the microseconds in five hex digits, then the inode number in hex.
_SHORT_ID: Final = re.compile(r"[0-9A-F]{6,}", re.ASCII)
# Neither form comes near this: 5 + 16 hex digits, or 7 + 4 + 1 + 12 safe characters.
MAX_QUEUE_ID_CHARS: Final = 32
# One postsuper call acts on at most this many ids (an argv of a few kilobytes).
MAX_IDS_PER_CALL: Final = 500

QUEUE_NAMES: Final = ("maildrop", "incoming", "active", "deferred", "hold")
# Reasons and addresses are what a remote server and a sender said: shown, but bounded.
_MAX_FIELD_CHARS: Final = 1000
# postcat's output: the header section is bounded by Postfix's header_size_limit (100 KB by
# default), the envelope by the recipient count; what is shown stops here.
MAX_SHOW_BYTES: Final = 256 * 1024
MAX_SHOW_LINES: Final = 2000


def is_queue_id(text: str) -> bool:
    return len(text) <= MAX_QUEUE_ID_CHARS and bool(
        _SHORT_ID.fullmatch(text) or _LONG_ID.fullmatch(text)
    )


def check_queue_ids(ids: Sequence[str], field: str = "ids") -> list[str]:
    """The ids, in order and without repeats, once every one is a Postfix queue id."""
    if not ids:
        raise ValidationError(field, "required", "give at least one queue id")
    if len(ids) > MAX_IDS_PER_CALL:
        raise ValidationError(
            field, "too_many", f"at most {MAX_IDS_PER_CALL} queue ids at a time, not {len(ids)}"
        )
    checked: list[str] = []
    for position, queue_id in enumerate(ids):
        if not isinstance(queue_id, str) or not is_queue_id(queue_id):
            shown = repr(queue_id[:40]) if isinstance(queue_id, str) else type(queue_id).__name__
            raise ValidationError(
                field,
                "invalid_queue_id",
                f"item {position + 1} ({shown}) is not a Postfix queue id: 6 or more hex digits "
                f"(A-F, 0-9), or a long id such as 4Xk9Tq1Bs2zJ7Ln, at most {MAX_QUEUE_ID_CHARS} "
                "characters (ALL and - are never accepted)",
            )
        if queue_id not in checked:
            checked.append(queue_id)
    return checked


def check_queue_id(queue_id: str, field: str = "queue_id") -> str:
    return check_queue_ids([queue_id], field)[0]


# --- listing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueRecipient:
    address: str
    # Why delivery to this recipient was deferred; None while nothing was tried.
    reason: str | None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    queue_id: str
    queue_name: str
    arrival_time: int
    size: int
    sender: str
    recipients: tuple[QueueRecipient, ...]
    forced_expire: bool

    @property
    def position(self) -> tuple[int, str]:
        return (self.arrival_time, self.queue_id)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which messages a listing keeps; text filters are case-insensitive substrings."""

    queue_name: str | None = None
    sender: str | None = None
    recipient: str | None = None
    reason: str | None = None
    # Only messages that arrived at or before this moment (seconds since the epoch).
    arrived_before: int | None = None

    def matches(self, entry: QueueEntry) -> bool:
        if self.queue_name is not None and entry.queue_name != self.queue_name:
            return False
        if self.arrived_before is not None and entry.arrival_time > self.arrived_before:
            return False
        if self.sender is not None and self.sender.casefold() not in entry.sender.casefold():
            return False
        if self.recipient is not None:
            wanted = self.recipient.casefold()
            if not any(wanted in r.address.casefold() for r in entry.recipients):
                return False
        if self.reason is not None:
            wanted = self.reason.casefold()
            if not any(wanted in (r.reason or "").casefold() for r in entry.recipients):
                return False
        return True


class QueueOutputError(ValueError):
    """postqueue printed something that is not its JSON format."""


def stream_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines of a stream of chunks, one at a time: at most one line and one
    chunk are held, however long the output."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            line = data[start:end].strip()
            if line:
                yield line
            start = end + 1
        carry = data[start:]
    if carry.strip():
        yield carry.strip()


def queue_lines(runner: HostRunner, spec: HostSpec) -> Iterator[bytes]:
    """The lines of `postqueue -j`, streamed from the host."""
    return stream_lines(runner.stream(spec.postfix_command("postqueue", "-j")))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise QueueOutputError(f"{what} is not a string")
    return value[:_MAX_FIELD_CHARS]


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueueOutputError(f"{what} is not a count")
    return value


def parse_entry(line: bytes) -> QueueEntry:
    """One line of `postqueue -j` output."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise QueueOutputError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise QueueOutputError("not a JSON object")
    queue_id = _text(record.get("queue_id"), "queue_id")
    if not is_queue_id(queue_id):
        raise QueueOutputError(f"queue_id {queue_id[:40]!r} is not a queue id")
    recipients_raw = record.get("recipients", [])
    if not isinstance(recipients_raw, list):
        raise QueueOutputError("recipients is not a list")
    recipients = []
    for item in recipients_raw:
        if not isinstance(item, dict):
            raise QueueOutputError("a recipient is not an object")
        reason = item.get("delay_reason")
        recipients.append(
            QueueRecipient(
                address=_text(item.get("address"), "address"),
                reason=_text(reason, "delay_reason") if reason is not None else None,
            )
        )
    return QueueEntry(
        queue_id=queue_id,
        queue_name=_text(record.get("queue_name"), "queue_name"),
        arrival_time=_integer(record.get("arrival_time"), "arrival_time"),
        size=_integer(record.get("message_size", 0), "message_size"),
        sender=_text(record.get("sender", ""), "sender"),
        recipients=tuple(recipients),
        forced_expire=record.get("forced_expire") is True,
    )


def parse_queue(lines: Iterable[bytes]) -> Iterator[QueueEntry]:
    """Every entry of `postqueue -j` output, one at a time."""
    for line in lines:
        yield parse_entry(line)


def select_page(
    entries: Iterable[QueueEntry],
    wanted: QueueFilter,
    *,
    limit: int,
    after: tuple[int, str] | None,
) -> tuple[list[QueueEntry], bool]:
    """The first `limit` matching entries after `after` in (arrival time, id) order, and
    whether more follow. Holds at most `limit + 1` entries at any time."""
    # A max-heap of the smallest positions seen so far (negated arrival time; the id is
    # compared through an inverted key so the heap's top is the largest position).
    kept: list[tuple[int, _Descending, QueueEntry]] = []
    for entry in entries:
        if after is not None and entry.position <= after:
            continue
        if not wanted.matches(entry):
            continue
        item = (-entry.arrival_time, _Descending(entry.queue_id), entry)
        if len(kept) <= limit:
            heapq.heappush(kept, item)
        elif entry.position < kept[0][2].position:
            heapq.heapreplace(kept, item)
    ordered = sorted((item[2] for item in kept), key=lambda e: e.position)
    return ordered[:limit], len(ordered) > limit


@dataclass(frozen=True, slots=True)
class _Descending:
    """Orders strings backwards, for the max-heap above."""

    value: str

    def __lt__(self, other: _Descending) -> bool:
        return self.value > other.value


def list_queue(
    runner: HostRunner,
    spec: HostSpec,
    wanted: QueueFilter,
    *,
    limit: int,
    after: tuple[int, str] | None,
) -> tuple[list[QueueEntry], bool]:
    return select_page(parse_queue(queue_lines(runner, spec)), wanted, limit=limit, after=after)


# How postqueue -j names a message's id (json.dumps spacing), to find the wanted lines fast.
_QUEUE_ID_FIELD: Final = re.compile(rb'"queue_id": ?"([0-9A-Za-z]{1,40})"')


def queue_states(runner: HostRunner, spec: HostSpec, ids: Iterable[str]) -> dict[str, str]:
    """The queue each of `ids` is in now; ids not in the queue are absent from the answer."""
    wanted = set(ids)
    found: dict[str, str] = {}
    for line in queue_lines(runner, spec):
        # Lines that plainly name another id are skipped; the others are parsed in full.
        named = _QUEUE_ID_FIELD.search(line)
        if named is not None and named.group(1).decode() not in wanted:
            continue
        entry = parse_entry(line)
        if entry.queue_id in wanted:
            found[entry.queue_id] = entry.queue_name
    return found


def count_queue(runner: HostRunner, spec: HostSpec, queue_name: str) -> int:
    return sum(
        1 for entry in parse_queue(queue_lines(runner, spec)) if entry.queue_name == queue_name
    )


# --- one message ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageView:
    # (name, value) of each envelope record, then of each header, as postcat printed them.
    envelope: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    truncated: bool


_SECTION = re.compile(r"^\*\*\* (.+?) \*\*\*$")
_ENVELOPE_RECORD = re.compile(r"^([a-z_ ]+):\s?(.*)$")
_HEADER = re.compile(r"^([!-9;-~]+):[ \t]?(.*)$")


def show_message(runner: HostRunner, spec: HostSpec, queue_id: str) -> MessageView | None:
    """The envelope records and headers of a queued message (never its body), or None when
    no such message is in the queue."""
    queue_id = check_queue_id(queue_id)
    result = runner.run(spec.postfix_command("postcat", "-e", "-h", "-q", queue_id))
    if not result.ok:
        # "postcat: fatal: open queue file ID: No such file or directory"
        if "open queue file" in result.error_text():
            return None
        result.checked()
    return parse_postcat(result.stdout)


# postcat's section markers: "*** ENVELOPE RECORDS deferred/8/8E6B720C005 ***", then
# "MESSAGE CONTENTS" (the headers, with -h), "HEADER EXTRACTED" (more envelope records: the
# recipients taken from the headers, the final ones) and "MESSAGE FILE END".
_SECTIONS: Final = {
    "ENVELOPE RECORDS": "envelope",
    "MESSAGE CONTENTS": "headers",
    "HEADER EXTRACTED": "envelope",
    "MESSAGE FILE END": "",
}


def parse_postcat(data: bytes) -> MessageView:
    truncated = len(data) > MAX_SHOW_BYTES
    lines = data[:MAX_SHOW_BYTES].decode("utf-8", "replace").splitlines()
    if len(lines) > MAX_SHOW_LINES:
        lines, truncated = lines[:MAX_SHOW_LINES], True
    envelope: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    section = ""
    for line in lines:
        marker = _SECTION.match(line)
        if marker:
            heading = marker.group(1)
            section = next((s for name, s in _SECTIONS.items() if heading.startswith(name)), "")
            continue
        if section == "envelope":
            found = _ENVELOPE_RECORD.match(line)
            if found:
                envelope.append((found.group(1), found.group(2).strip()))
        elif section == "headers":
            if line[:1] in (" ", "\t") and headers:
                # A folded header: its continuation belongs to the header above.
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            found = _HEADER.match(line)
            if found:
                headers.append((found.group(1), found.group(2)))
    return MessageView(envelope=envelope, headers=headers, truncated=truncated)


# --- changes ----------------------------------------------------------------------------------

# postsuper's option for each action.
POSTSUPER_OPTIONS: Final = {"hold": "-h", "release": "-H", "requeue": "-r", "delete": "-d"}


def postsuper(runner: HostRunner, spec: HostSpec, action: str, ids: Sequence[str]) -> None:
    """Run `postsuper -h|-H|-r|-d ID -h|... ID ...`: each id after its own option, so no id
    can ever be read as an option or as the end of the options."""
    option = POSTSUPER_OPTIONS[action]
    checked = check_queue_ids(ids)
    argv: list[str] = []
    for queue_id in checked:
        argv += [option, queue_id]
    runner.run(spec.postfix_command("postsuper", *argv)).checked()


def flush(runner: HostRunner, spec: HostSpec) -> None:
    runner.run(spec.postfix_command("postqueue", "-f")).checked()
