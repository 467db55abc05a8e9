"""Keyset pages: every list is bounded, and the next page starts after the last key seen."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, String, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from mailwarden.db.types import UTCDateTime
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.text import check_text

T = TypeVar("T")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

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


def like_pattern(text: str, field: str = "search") -> str:
    """A LIKE pattern that matches `text` literally anywhere (escape character: backslash)."""
    check_text(text, field)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """Rows were fetched with limit + 1: the extra row only tells whether another page exists."""
    items = list(rows[:limit])
    return Page(items=items, next_cursor=key(items[-1]) if len(rows) > limit else None)


# Keyset orderings. A list offers a few sorts from an allow-list; each one orders by columns
# that an index serves, the last of them unique (the natural key), so "after the cursor" is
# one index range and every row appears on exactly one page.

SortColumn = InstrumentedAttribute[Any]

# Opaque cursors start with a character no natural key (domain, address, username) can start
# with while having no "@", so a raw key and an opaque cursor are never confused.
_OPAQUE_PREFIX = "~"
_MAX_CURSOR_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Ordering:
    """One allowed sort: its public name ("-created_at"), its columns, and its direction."""

    name: str
    columns: tuple[SortColumn, ...]
    descending: bool

    def order_by(self, *, after_filtering: bool = False) -> list[ColumnElement[Any]]:
        """The ORDER BY terms. `after_filtering` orders by the text's value rather than by the
        column itself (same order, same collation), so that no index can supply the order: the
        database then finds the matching rows first (through an index of the filter) and sorts
        only those, instead of walking the key index and filtering as it goes."""
        columns: list[ColumnElement[Any]] = [
            column.concat("") if after_filtering and _is_text(column) else column.expression
            for column in self.columns
        ]
        return [column.desc() if self.descending else column.asc() for column in columns]

    def after(self, position: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after `position` in this order.

        Written as `a > x OR (a = x AND b > y)` rather than `(a, b) > (x, y)`: MariaDB uses no
        index for a row-value comparison. The leading `a >= x` repeats what the OR implies, so
        that every database can start its index range at the cursor instead of filtering from
        the first row.
        """
        pairs = list(zip(self.columns, position, strict=True))
        branches = [
            and_(
                *(column == value for column, value in pairs[:index]),
                column < value if self.descending else column > value,
            )
            for index, (column, value) in enumerate(pairs)
        ]
        condition = or_(*branches)
        if len(pairs) == 1:
            return condition
        first, start = pairs[0]
        return and_(first <= start if self.descending else first >= start, condition)

    def position_of(self, row: object) -> tuple[Any, ...]:
        """The values of this ordering's columns in a mapped row."""
        return tuple(getattr(row, column.key) for column in self.columns)

    def cursor_of(self, row: object) -> str:
        return encode_cursor(self, self.position_of(row))


def sort_names(allowed: Mapping[str, tuple[SortColumn, ...]]) -> tuple[str, ...]:
    """Every public sort name of an allow-list: each key ascending, then descending."""
    return tuple(name for key in allowed for name in (key, f"-{key}"))


def choose_ordering(
    sort: str | None, allowed: Mapping[str, tuple[SortColumn, ...]], default: str
) -> Ordering:
    """The ordering named by `sort` (None: `default`); anything not allowed is refused."""
    name = default if sort is None else sort
    descending = name.startswith("-")
    key = name[1:] if descending else name
    if key not in allowed:
        raise ValidationError(
            "sort", "unknown_sort", f"unknown sort; use one of: {', '.join(sort_names(allowed))}"
        )
    return Ordering(name=name, columns=allowed[key], descending=descending)


def encode_cursor(ordering: Ordering, position: Sequence[Any]) -> str:
    """The cursor of the row at `position`.

    Over one column (the natural key) it is the key itself, as `--after KEY` has always been.
    Otherwise it is opaque: url-safe base64 of JSON that also names the sort, so that it cannot
    be replayed against another one.
    """
    if len(ordering.columns) == 1:
        return str(position[0])
    values = [
        _dump_value(column, value) for column, value in zip(ordering.columns, position, strict=True)
    ]
    document = json.dumps({"sort": ordering.name, "after": values}, separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")
    return _OPAQUE_PREFIX + encoded


def decode_cursor(
    ordering: Ordering, cursor: str | None, normalize_key: Callable[[str], Any]
) -> tuple[Any, ...] | None:
    """The position a cursor stands for, or None for the first page.

    A one-column ordering takes the raw key, passed through `normalize_key`; an opaque cursor
    is decoded strictly and must have been made for this very ordering.
    """
    if not cursor:
        return None
    try:
        check_text(cursor, "cursor")
    except ValidationError:
        raise _invalid_cursor("a cursor holds no control characters") from None
    opaque = cursor.startswith(_OPAQUE_PREFIX) and "@" not in cursor
    if len(ordering.columns) == 1:
        if opaque:
            raise _invalid_cursor(f"this cursor was not made for sort {ordering.name}")
        try:
            return (normalize_key(cursor),)
        except ValidationError as error:
            # Whatever rule the key broke, the caller passed it as a cursor.
            raise _invalid_cursor(error.issues[0].message) from None
    if not opaque or len(cursor) > _MAX_CURSOR_LENGTH:
        raise _invalid_cursor(f"not a cursor of sort {ordering.name}")
    body = cursor[len(_OPAQUE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != body:
            raise ValueError("not canonical base64")
        document = json.loads(raw.decode())
    except (ValueError, RecursionError):
        raise _invalid_cursor("the cursor is malformed") from None
    if not isinstance(document, dict) or set(document) != {"sort", "after"}:
        raise _invalid_cursor("the cursor is malformed")
    if document["sort"] != ordering.name:
        raise _invalid_cursor(f"this cursor was not made for sort {ordering.name}")
    values = document["after"]
    if not isinstance(values, list) or len(values) != len(ordering.columns):
        raise _invalid_cursor("the cursor is malformed")
    return tuple(
        _load_value(column, value) for column, value in zip(ordering.columns, values, strict=True)
    )


def keyset(
    stmt: S, ordering: Ordering, position: Sequence[Any] | None, *, after_filtering: bool = False
) -> S:
    """`stmt` in `ordering`, starting after `position` (None: from the first row).

    `after_filtering`: see Ordering.order_by; for a selective filter that has its own index.
    """
    if position is not None:
        stmt = stmt.where(ordering.after(position))
    return stmt.order_by(*ordering.order_by(after_filtering=after_filtering))


def _is_text(column: SortColumn) -> bool:
    return isinstance(column.type, String)


def _dump_value(column: SortColumn, value: Any) -> Any:
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"{column.key} must be an aware datetime, not {value!r}")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{column.key}: no cursor form for {value!r}")
    return value


def _load_value(column: SortColumn, value: Any) -> Any:
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise _invalid_cursor("the cursor is malformed")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _invalid_cursor("the cursor is malformed") from None
        if moment.tzinfo is None:
            raise _invalid_cursor("the cursor is malformed")
        return moment.astimezone(UTC)
    expected = column.type.python_type
    if isinstance(value, bool) or not isinstance(value, expected):
        raise _invalid_cursor("the cursor is malformed")
    if isinstance(value, str):
        try:
            check_text(value, "cursor")
        except ValidationError:
            raise _invalid_cursor("the cursor is malformed") from None
    return value


def _invalid_cursor(message: str) -> ValidationError:
    return ValidationError("cursor", "invalid_cursor", message)
