from __future__ import annotations

import re
from datetime import date, datetime

from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.schemas import InputSchema, PublicSchema

# RFC 5230 suggests 7 days between two replies to the same sender.
DEFAULT_INTERVAL_DAYS = 7
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class VacationSet(InputSchema):
    """Everything an auto-reply is; setting one replaces the previous one whole."""

    subject: str
    body: str
    # Inclusive dates; None leaves that end open.
    starts_on: date | None = None
    ends_on: date | None = None
    interval_days: int = DEFAULT_INTERVAL_DAYS


class VacationPublic(PublicSchema):
    address: str
    enabled: bool
    # None while the mailbox never had an auto-reply.
    subject: str | None
    body: str | None
    starts_on: date | None
    ends_on: date | None
    interval_days: int | None
    updated_at: datetime | None


class SieveStatus(PublicSchema):
    """What `apply` uploads for a mailbox: its whole script, or None (the script is removed)."""

    address: str
    script_name: str
    vacation_enabled: bool
    forward_enabled: bool
    script: str | None


def parse_date(value: str, field: str) -> date:
    """An ISO calendar date, exactly `YYYY-MM-DD` (no week dates, no times, no compact form)."""
    if not _ISO_DATE.fullmatch(value):
        raise ValidationError(
            field, "invalid_date", f"{value!r} is not a date of the form YYYY-MM-DD"
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "invalid_date", f"{value!r} is not a calendar date") from None


def decode_body(raw: bytes, field: str = "body") -> str:
    """Text read from a file or stdin: UTF-8 (a leading byte-order mark is dropped)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            field, "not_utf8", f"is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
