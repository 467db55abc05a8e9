"""How services name a moment in a message: minutes are precise enough, and always UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from mailwarden.kernel.errors import ValidationError


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def as_utc(moment: datetime, field: str) -> datetime:
    """A moment given with its offset, in UTC; refused without an offset or off the calendar.

    A moment near year 1 or 9999 with an offset has no UTC form; without this check it fails
    deep in the database driver instead of naming the field.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(field, "naive_datetime", "give the moment with its UTC offset (or Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            field, "out_of_range", "the moment lies outside the calendar's range"
        ) from None
