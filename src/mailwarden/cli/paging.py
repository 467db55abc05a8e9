"""Listing commands share one shape: one page by default, or every page with --all."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from mailwarden.kernel.pagination import Page

from .output import note_more, print_json, print_table, stream_json_pages

T = TypeVar("T")


def _walk(fetch: Callable[[str | None], Page[T]], after: str | None) -> Iterator[list[T]]:
    cursor = after
    while True:
        page = fetch(cursor)
        yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def emit(
    fetch: Callable[[str | None], Page[T]],
    *,
    after: str | None,
    every_page: bool,
    as_json: bool,
    columns: Sequence[str],
    row: Callable[[T], Sequence[Any]],
    empty: str,
    cursor_option: str = "--after",
) -> None:
    if every_page:
        if as_json:
            stream_json_pages(_walk(fetch, after))
            return
        shown = 0
        for items in _walk(fetch, after):
            if items:
                # A table per page keeps memory flat; the header is printed once.
                print_table(columns, [row(item) for item in items], show_header=shown == 0)
                shown += len(items)
        if not shown:
            print(empty)
        return
    page = fetch(after)
    if as_json:
        print_json(page.items)
    elif page.items:
        print_table(columns, [row(item) for item in page.items])
    else:
        print(empty)
    note_more(page.next_cursor, cursor_option)
