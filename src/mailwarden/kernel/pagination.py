"""Keyset pages: every list is bounded, and the next page starts after the last key seen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mailwarden.kernel.errors import ValidationError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    # The key to pass as `after` for the next page; None on the last page.
    next_cursor: str | None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", "out_of_range", f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def like_pattern(text: str) -> str:
    """A LIKE pattern that matches `text` literally anywhere (escape character: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """Rows were fetched with limit + 1: the extra row only tells whether another page exists."""
    items = list(rows[:limit])
    return Page(items=items, next_cursor=key(items[-1]) if len(rows) > limit else None)
