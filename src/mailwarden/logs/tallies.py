"""A stretch's counts with their final keys: decoded, normalised, domains derived.

Workers turn their byte-keyed scan results into `Tallies` before sending them back, so that
decoding and per-domain sums run in parallel and the joining process only adds Counters up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from . import records

# (kind: scanner.REJECTED/REJECT_WARNINGS/HELD/DISCARDED, stage, reason) -> detail -> count
RejectRows = dict[tuple[int, str, str], Counter[str]]


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def address_text(raw: bytes) -> str:
    """An address as pflogsumm keys it: everything from the first "@" lower-cased."""
    return text(records.normalize_address(raw))


def sender_text(raw: bytes) -> str:
    return address_text(raw) if raw else "from=<>"


def keyed(counter: Counter[bytes], name_of: Callable[[bytes], str] = text) -> Counter[str]:
    """`counter` with its keys named by `name_of` (counts of keys named alike add up)."""
    result: Counter[str] = Counter()
    get = result.get
    for key, value in counter.items():
        name = name_of(key)
        result[name] = get(name, 0) + value
    return result


def decoded(counter: Counter[bytes]) -> Counter[str]:
    return keyed(counter)


def addresses(counter: Counter[bytes]) -> Counter[str]:
    return keyed(counter, address_text)


def paired(
    counts: Counter[bytes], sizes: Counter[bytes], *, sender: bool
) -> tuple[Counter[str], Counter[str]]:
    """Messages and bytes per address, one decoded key object shared by both tables.

    The hot loop of a worker's last step: address_text() written out, not called.
    """
    by_count: Counter[str] = Counter()
    by_size: Counter[str] = Counter()
    count_of, size_of, size_get = by_count.get, by_size.get, sizes.get
    for raw, value in counts.items():
        if not raw and sender:
            name = "from=<>"
        else:
            key = raw
            at = raw.find(b"@")
            if 0 <= at < len(raw) - 1:
                domain = raw[at:]
                lower = domain.lower()
                if lower != domain:
                    key = raw[:at] + lower
            name = key.decode("utf-8", "backslashreplace")
        by_count[name] = count_of(name, 0) + value
        nbytes = size_get(raw)
        if nbytes is not None:
            by_size[name] = size_of(name, 0) + nbytes
    for raw, nbytes in sizes.items():
        if raw not in counts:  # bytes of an address never counted (none in practice)
            name = sender_text(raw) if sender else address_text(raw)
            by_size[name] = size_of(name, 0) + nbytes
    return by_count, by_size


def sender_domain(name: str) -> str | None:
    """pflogsumm's `s/^[^@]+\\@(.+)$/$1/` on a keyed sender; None when there is none."""
    at = name.find("@")
    return name[at + 1 :] if 0 < at < len(name) - 1 else None


def recipient_domain(name: str) -> str:
    at = name.find("@")
    return name[at + 1 :] if at > 0 else name


def sending_domains(senders: Counter[str], fallback: Counter[bytes]) -> Counter[str]:
    """Per sending domain; senders without one count under their client's (`fallback`)."""
    result = decoded(fallback)
    get = result.get
    for name, value in senders.items():
        at = name.find("@")
        if 0 < at < len(name) - 1:  # sender_domain(), written out
            domain = name[at + 1 :]
            result[domain] = get(domain, 0) + value
    return result


def recipient_domains(recipients: Counter[str]) -> Counter[str]:
    result: Counter[str] = Counter()
    get = result.get
    for name, value in recipients.items():
        at = name.find("@")
        domain = name[at + 1 :] if at > 0 else name
        result[domain] = get(domain, 0) + value
    return result


@dataclass
class HourTallies:
    """Who was involved within one clock hour (`summarize(..., hourly=True)`)."""

    senders: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    sender_domains: Counter[str] = field(default_factory=Counter)
    recipient_domains: Counter[str] = field(default_factory=Counter)
    reject_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: HourTallies) -> None:
        for item in fields(self):
            _add(getattr(self, item.name), getattr(other, item.name))


@dataclass
class Tallies:
    senders: Counter[str] = field(default_factory=Counter)
    sender_bytes: Counter[str] = field(default_factory=Counter)
    sending_domains: Counter[str] = field(default_factory=Counter)
    sending_domain_bytes: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    recipient_bytes: Counter[str] = field(default_factory=Counter)
    recipient_domains: Counter[str] = field(default_factory=Counter)
    recipient_domain_bytes: Counter[str] = field(default_factory=Counter)
    recipient_domain_deferrals: Counter[str] = field(default_factory=Counter)
    rejects: RejectRows = field(default_factory=dict)
    deferral_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    bounce_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)
    sasl_clients: Counter[str] = field(default_factory=Counter)
    sasl_usernames: Counter[str] = field(default_factory=Counter)
    # DOVECOT_LINE's groups, decoded.
    dovecot: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def add(self, other: Tallies) -> None:
        for item in fields(self):
            if item.name != "rejects":
                _add(getattr(self, item.name), getattr(other, item.name))
        for key, details in other.rejects.items():
            mine = self.rejects.get(key)
            if mine is None:
                self.rejects[key] = details
            else:
                _add(mine, details)


def _add(into: Counter[Any], other: Counter[Any]) -> None:
    if not into:
        into.update(other)  # C speed into an empty Counter
        return
    get = into.get
    for key, value in other.items():
        into[key] = get(key, 0) + value


def grouped(counts: dict[bytes, Counter[bytes]]) -> Counter[tuple[str, str]]:
    result: Counter[tuple[str, str]] = Counter()
    for group, reasons in counts.items():
        name = text(group)
        for reason, value in reasons.items():
            result[(name, text(reason))] += value
    return result
