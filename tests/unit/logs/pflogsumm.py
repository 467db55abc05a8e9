"""Run Debian's pflogsumm on a log and read its report back into numbers.

pflogsumm prints counts above 512 Ki as "N k" (and above 512 Mi as "N m"), truncated:
`shown()` turns an exact number into what pflogsumm would print, so reports compare exactly.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import require_tool

# The grand totals pflogsumm prints, by the names `logs summary` gives them (and the generator's
# ground truth uses).
GRAND_TOTALS = (
    "received",
    "delivered",
    "forwarded",
    "deferred",
    "deferrals",
    "bounced",
    "rejected",
    "reject_warnings",
    "held",
    "discarded",
    "bytes_received",
    "bytes_delivered",
    "senders",
    "sending_domains",
    "recipients",
    "recipient_domains",
)
_ONE_K = 1024
_ONE_M = 1024 * 1024


def shown(value: float) -> tuple[int, str]:
    """pflogsumm's adj_int_units: (value, unit) as printed."""
    if value > 512 * _ONE_M:
        return int(value / _ONE_M), "m"
    if value > 512 * _ONE_K:
        return int(value / _ONE_K), "k"
    return int(value), ""


def _number(text: str) -> tuple[int, str]:
    match = re.fullmatch(r"\s*(\d+)([km]?)\s*", text)
    assert match is not None, text
    return int(match[1]), match[2]


@dataclass
class Report:
    totals: dict[str, tuple[int, str]] = field(default_factory=dict)
    per_day: dict[tuple[str, int], list[tuple[int, str]]] = field(default_factory=dict)
    per_hour: list[list[tuple[int, str]]] = field(default_factory=list)
    recipient_domains: dict[str, tuple[tuple[int, str], tuple[int, str], int]] = field(
        default_factory=dict
    )
    sending_domains: dict[str, tuple[tuple[int, str], tuple[int, str]]] = field(
        default_factory=dict
    )
    lists: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    # section -> group -> (reason ->) item -> count
    nested: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    rejects: dict[str, dict[str, dict[str, Counter[str]]]] = field(default_factory=dict)


_TOTALS = {
    "received": "received",
    "delivered": "delivered",
    "forwarded": "forwarded",
    "bounced": "bounced",
    "reject warnings": "reject_warnings",
    "held": "held",
    "bytes received": "bytes_received",
    "bytes delivered": "bytes_delivered",
    "senders": "senders",
    "sending hosts/domains": "sending_domains",
    "recipients": "recipients",
    "recipient hosts/domains": "recipient_domains",
}
_LISTS = {
    "Senders by message count": "senders",
    "Recipients by message count": "recipients",
    "Senders by message size": "sender_bytes",
    "Recipients by message size": "recipient_bytes",
}
_NESTED = {
    "message deferral detail": "deferrals",
    "message bounce detail (by relay)": "bounces",
    "Warnings": "warnings",
}
_REJECTS = {
    "message reject detail": "rejects",
    "message reject warning detail": "reject_warnings",
    "message hold detail": "holds",
    "message discard detail": "discards",
}
_ITEM = re.compile(r"^( *)(\d+)([ km])  (.*)$")
_GROUP = re.compile(r"^( +)(.*?)(?: \(total: \d+\))?$")


def run(log: Path) -> Report:
    """pflogsumm's report on `log` (all lists complete), parsed."""
    binary = require_tool("pflogsumm", "pflogsumm")
    done = subprocess.run(
        [binary, "--problems-first", str(log)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return parse(done.stdout.decode("utf-8", "backslashreplace"))


def parse(text: str) -> Report:
    report = Report()
    lines = text.splitlines()
    section = ""
    group = ""
    reason = ""
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following and set(following) == {"-"} and len(following) == len(line):
            section = line.strip()
            group = reason = ""
            continue
        if line.endswith(": none") or set(line.strip()) <= {"-"} or not line.strip():
            continue
        title = re.sub(r"^top \d+ ", "", section)
        if section == "Grand Totals":
            match = re.match(r"^ +(\d+[km]?) +(.*?)(?: \((\d+[km]?) +deferrals\))?$", line)
            if match is None:
                continue
            name = match[2].split(" (")[0].strip()
            if name == "deferred" and match[3]:
                report.totals["deferred"] = _number(match[1])
                report.totals["deferrals"] = _number(match[3])
            elif name in ("deferred", "rejected", "discarded"):
                report.totals[name] = _number(match[1])
            elif name in _TOTALS:
                report.totals[_TOTALS[name]] = _number(match[1])
        elif section == "Per-Day Traffic Summary":
            match = re.match(r"^ +(\w{3}) +(\d+) +\d{4}((?: +\d+[km]?){5}) *$", line)
            if match:
                report.per_day[(match[1], int(match[2]))] = [
                    _number(value) for value in match[3].split()
                ]
        elif section.startswith("Per-Hour Traffic"):
            match = re.match(r"^ +\d{4}-\d{4}((?: +\d+[km]?){5}) *$", line)
            if match:
                report.per_hour.append([_number(value) for value in match[1].split()])
        elif section.startswith("Host/Domain Summary: Message Delivery"):
            fields = line.split()
            if len(fields) >= 8 and fields[0][0].isdigit():
                report.recipient_domains[fields[-1]] = (
                    _number(fields[0]),
                    _number(fields[1]),
                    int(fields[2]),
                )
        elif section.startswith("Host/Domain Summary: Messages Received"):
            fields = line.split()
            if len(fields) == 3 and fields[0][0].isdigit():
                report.sending_domains[fields[2]] = (_number(fields[0]), _number(fields[1]))
        elif title in _LISTS:
            match = _ITEM.match(line)
            assert match is not None, line
            report.lists.setdefault(_LISTS[title], {})[match[4]] = (
                int(match[2]),
                match[3].strip(),
            )
        elif section in _NESTED:
            item = _ITEM.match(line)
            if item is not None and len(item[1]) >= 4:
                counter = report.nested.setdefault(_NESTED[section], {}).setdefault(
                    group, Counter()
                )
                counter[item[4]] += int(item[2])
            else:
                head = _GROUP.match(line)
                assert head is not None, line
                group = head[2]
        elif section in _REJECTS:
            item = _ITEM.match(line)
            if item is not None and len(item[1]) >= 6:
                stages = report.rejects.setdefault(_REJECTS[section], {})
                stages.setdefault(group, {}).setdefault(reason, Counter())[item[4]] += int(item[2])
                continue
            head = _GROUP.match(line)
            assert head is not None, line
            if len(head[1]) == 2:
                group, reason = head[2], ""
            else:
                reason = head[2]
    return report
