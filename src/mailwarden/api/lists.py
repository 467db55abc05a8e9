"""The query parameters every list shares: a page size, a cursor, a search, a sort."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from mailwarden.kernel.pagination import MAX_LIMIT

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=1024, description="`next_cursor` of the previous page (opaque)."),
]
Search = Annotated[
    str | None,
    Query(max_length=254, description="Substring of the address or name (case-insensitive)."),
]
DomainFilter = Annotated[
    str | None, Query(max_length=253, description="Only objects of this domain.")
]
ActiveFilter = Annotated[
    bool | None, Query(description="Only active (true) or inactive (false) objects.")
]


def sort_query(allowed: Iterable[str], default: str) -> Any:
    """A `sort` parameter documenting a list's allowed sorts (the service checks them)."""
    ascending = [name for name in allowed if not name.startswith("-")]
    return Query(
        max_length=64,
        description=f"One of: {', '.join(ascending)} (default {default}); '-' sorts descending.",
    )


class ListPage(BaseModel, Generic[T]):
    items: list[T]
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None
