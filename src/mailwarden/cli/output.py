"""Output for people (aligned tables, plans) and for programs (--json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

from mailwarden.kernel.sizes import format_size
from mailwarden.kernel.unit_of_work import ChangeKind, PlannedChange

console = Console(highlight=False, soft_wrap=False)

_SYMBOL = {ChangeKind.CREATE: "+", ChangeKind.UPDATE: "~", ChangeKind.DELETE: "-"}
_VERB = {ChangeKind.CREATE: "create", ChangeKind.UPDATE: "change", ChangeKind.DELETE: "remove"}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    if isinstance(value, list):
        value = [_plain(item) for item in value]
    sys.stdout.write(json.dumps(_plain(value), indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str = "",
    show_header: bool = True,
) -> None:
    table = Table(
        box=box.SIMPLE_HEAD if show_header else None,
        title=title or None,
        title_justify="left",
        pad_edge=False,
        show_header=show_header,
    )
    materialized = [["" if cell is None else str(cell) for cell in row] for row in rows]
    last = len(columns) - 1
    for index, column in enumerate(columns):
        if index == last and index > 0:
            # The free-text column gives way when the terminal is narrow.
            table.add_column(column, no_wrap=True, overflow="ellipsis", ratio=1)
            continue
        # Keys, sizes and states stay whole so they can be read and copied.
        widest = max((len(row[index]) for row in materialized), default=0)
        table.add_column(column, no_wrap=True, min_width=min(max(widest, len(column)), 60))
    for cells in materialized:
        table.add_row(*cells)
    console.print(table)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        console.print(f"{name.rjust(width)}  {'' if value is None else value}", markup=False)


def size(value: int) -> str:
    return format_size(value)


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _describe(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("bytes"):
        return format_size(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def print_plan(plan: list[PlannedChange], *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json({"dry_run": dry_run, "plan": [change.as_dict() for change in plan]})
        return
    if dry_run:
        console.print("Dry run: nothing was changed. The plan:", markup=False)
    if not plan:
        console.print("  nothing to change", markup=False)
    for change in plan:
        label = change.object_type.replace("_", " ")
        console.print(
            f"  {_SYMBOL[change.kind]} {_VERB[change.kind]} {label} {change.key}", markup=False
        )
        for name, value in change.changes.items():
            if change.kind is ChangeKind.UPDATE:
                old, new = value
                text = f"{_describe(old, name)} -> {_describe(new, name)}"
            else:
                text = _describe(value, name)
            console.print(f"      {name}: {text}", markup=False)


def note_more(next_cursor: str | None, option: str = "--after") -> None:
    if next_cursor is not None:
        print(f"(more: continue with {option} {next_cursor})", file=sys.stderr)


def stream_json_pages(pages: Iterable[Sequence[Any]]) -> None:
    """A JSON array written page by page, so `--all` never holds a whole table.

    Nothing is written before the first page arrives: a refused listing leaves stdout empty.
    """
    opened = False
    written = 0
    for page in pages:
        if not opened:
            sys.stdout.write("[")
            opened = True
        for item in page:
            separator = "\n  " if written == 0 else ",\n  "
            sys.stdout.write(separator + json.dumps(_plain(item), ensure_ascii=False, default=str))
            written += 1
    sys.stdout.write(("[" if not opened else "") + ("]\n" if written == 0 else "\n]\n"))
