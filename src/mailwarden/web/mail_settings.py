"""The auto-reply and forwarding forms, read the same way on the console's mailbox pages and in
the portal: text in, the services' input out, and their errors placed back on the form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mailwarden.forwarding import service as forwarding
from mailwarden.forwarding.schemas import ForwardPublic, ForwardSet
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import FieldIssue, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import (
    DEFAULT_INTERVAL_DAYS,
    VacationPublic,
    VacationSet,
    parse_date,
)

# How the forwarding service names one target's error: `targets[2]` (or `targets` for all).
_TARGET_FIELD = re.compile(r"targets(?:\[(?P<index>[0-9]+)\])?")


def vacation_values(current: VacationPublic) -> dict[str, Any]:
    """The stored auto-reply as form text."""
    return {
        "enabled": current.enabled,
        "subject": current.subject or "",
        "body": current.body or "",
        "starts_on": current.starts_on.isoformat() if current.starts_on else "",
        "ends_on": current.ends_on.isoformat() if current.ends_on else "",
        "interval_days": str(current.interval_days or DEFAULT_INTERVAL_DAYS),
    }


def _vacation_input(values: Mapping[str, Any]) -> tuple[VacationSet, list[FieldIssue]]:
    """The form's text as the service's input, and what was wrong with the dates and the
    interval (read here, from text); a field that could not be read is left out."""
    data: dict[str, Any] = {"subject": values["subject"], "body": values["body"]}
    issues: list[FieldIssue] = []
    for name in ("starts_on", "ends_on"):
        if values[name]:
            try:
                data[name] = parse_date(values[name], name)
            except ValidationError as exc:
                issues.extend(exc.issues)
    interval = values["interval_days"]
    if interval.isascii() and interval.isdigit():
        data["interval_days"] = int(interval)
    elif interval:
        issues.append(FieldIssue("interval_days", "not_a_number", "a whole number of days"))
    return parse(VacationSet, data), issues


def save_vacation(
    uow: UnitOfWork, actor: Actor, address: str, values: Mapping[str, Any]
) -> VacationPublic:
    """Turn the auto-reply on with the form's text. The service's refusals and the form's own
    come together: the service runs on what could be read and validates before it changes
    anything; with the form's issues left, the whole is refused (and rolled back)."""
    data, issues = _vacation_input(values)
    try:
        saved = vacation.set_vacation(uow, actor, address, data)
    except ValidationError as exc:
        raise ValidationError.many(issues + exc.issues) from None
    if issues:
        raise ValidationError.many(issues)
    return saved


def forwarding_values(current: ForwardPublic) -> dict[str, Any]:
    return {
        "enabled": current.enabled,
        "targets": "\n".join(current.targets),
        "keep_copy": current.keep_copy,
    }


def target_lines(text: str) -> list[tuple[int, str]]:
    """(line number, address) of each target. One address a line; blank lines are spacing, not
    targets. Nothing else is trimmed: the address rules refuse stray whitespace with a message
    rather than guess."""
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def save_forward(
    uow: UnitOfWork, actor: Actor, address: str, lines: list[tuple[int, str]], keep_copy: bool
) -> ForwardPublic:
    data = parse(ForwardSet, {"targets": [line for _, line in lines], "keep_copy": keep_copy})
    return forwarding.set_forward(uow, actor, address, data)


def targets_in_place(
    errors: Mapping[str, list[str]], lines: list[tuple[int, str]]
) -> dict[str, list[str]]:
    """Errors of single targets (`targets[2]`) go to the one textarea, naming their line."""
    placed: dict[str, list[str]] = {}
    for name, messages in errors.items():
        match = _TARGET_FIELD.fullmatch(name)
        if match is None:
            placed.setdefault(name, []).extend(messages)
            continue
        index = int(match["index"]) if match["index"] is not None else -1
        if 0 <= index < len(lines):
            number = lines[index][0]
            placed.setdefault("targets", []).extend(f"Line {number}: {m}" for m in messages)
        else:
            placed.setdefault("targets", []).extend(messages)
    return placed
