"""The audit log: newest first, filtered through the URL (bookmarkable), paged below an entry id.

Entries hold hostile text (a failed login stores the username as typed); the templates escape
every field like any other data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.audit import service
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.pagination import Page

from ..changes import DiffRow, errors_of
from ..rendering import is_htmx, render
from ..sessions import AdminViewer
from .admins import placed

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FILTER_FIELDS = ("actor", "action", "object_type", "object_key", "since", "until")


@dataclass(frozen=True, slots=True)
class ShownEntry:
    entry: AuditEntryPublic
    changes: list[DiffRow]


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def changes_of(entry: AuditEntryPublic) -> list[DiffRow]:
    """Before and after side by side; of a change, only the fields that differ."""
    before, after = entry.before or {}, entry.after or {}
    names = list(before) + [name for name in after if name not in before]
    rows = []
    for name in names:
        both = entry.before is not None and entry.after is not None
        if both and before.get(name) == after.get(name):
            continue
        rows.append(
            DiffRow(
                name,
                _shown(before[name]) if name in before else "",
                _shown(after[name]) if name in after else "",
            )
        )
    return rows


def _day(value: str, field: str, *, next_day: bool = False) -> datetime | None:
    """A YYYY-MM-DD filter as a UTC moment: its start, or (until) the start of the day after,
    so that `until` includes the day it names."""
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value) + timedelta(days=1 if next_day else 0)
        return datetime.combine(day, time(), UTC)
    except (ValueError, OverflowError):
        raise ValidationError(field, "invalid_date", "give a date as YYYY-MM-DD") from None


def _cursor(value: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValidationError("before", "invalid_cursor", "the cursor is a positive entry id")
    return int(value)


def _read(
    request: Request, viewer: Any, filters: dict[str, str], before: str
) -> Page[AuditEntryPublic]:
    since = _day(filters["since"], "since")
    until = _day(filters["until"], "until", next_day=True)
    if since is not None and until is not None and until <= since:
        raise ValidationError("until", "before_since", "the last day comes before the first")
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.list_entries(
            uow,
            viewer.actor,
            limit=PAGE_SIZE,
            before_id=_cursor(before),
            actor_name=filters["actor"] or None,
            action=filters["action"] or None,
            object_type=filters["object_type"] or None,
            object_key=filters["object_key"] or None,
            since=since,
            until=until,
        )


def _link(filters: dict[str, str], before: str | None = None) -> str:
    """The log's URL with the same filters (empty ones left out), optionally below an entry."""
    values = {name: value for name, value in filters.items() if value}
    if before:
        values["before"] = before
    return "/audit?" + urlencode(values) if values else "/audit"


@router.get("/audit")
def audit_log(
    request: Request,
    viewer: AdminViewer,
    actor: Annotated[str, Query(max_length=254)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    object_type: Annotated[str, Query(max_length=32)] = "",
    object_key: Annotated[str, Query(max_length=512)] = "",
    since: Annotated[str, Query(max_length=32)] = "",
    until: Annotated[str, Query(max_length=32)] = "",
    before: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    filters = {
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_key": object_key,
        "since": since,
        "until": until,
    }
    errors: dict[str, list[str]] = {}
    page: Page[AuditEntryPublic] = Page([], None)
    try:
        page = _read(request, viewer, filters, before)
    except ValidationError as exc:
        # Names of the service's fields as the form calls them.
        named = {"actor_name": "actor", "cursor": "before"}
        errors = placed(errors_of(exc, named), set(FILTER_FIELDS))
    context = {
        "title": "Audit log",
        "filters": filters,
        "entries": [ShownEntry(entry, changes_of(entry)) for entry in page.items],
        "first_url": _link(filters) if before else None,
        "next_url": _link(filters, page.next_cursor) if page.next_cursor else None,
        "errors": errors,
    }
    status = 422 if errors else 200
    if is_htmx(request):
        # htmx swaps no error answer; the fragment carries the errors in place instead.
        return render(request, "audit/_results.html", context, viewer=viewer)
    return render(request, "audit/list.html", context, viewer=viewer, status_code=status)
