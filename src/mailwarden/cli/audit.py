"""`mailwarden audit ...`"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from mailwarden.audit import service
from mailwarden.audit.schemas import AuditEntryPublic

from .context import read
from .options import All, Json
from .output import console
from .paging import emit

app = typer.Typer(help="The audit log: every change, who made it, and how.", no_args_is_help=True)


def _summary(entry: AuditEntryPublic) -> str:
    if entry.before and entry.after:
        changed = [k for k, v in entry.after.items() if entry.before.get(k) != v]
        return "changed " + ", ".join(changed) if changed else ""
    values = entry.after or entry.before or {}
    return ", ".join(f"{k}={v}" for k, v in list(values.items())[:3])


def _date(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command(
    "list",
    epilog="Examples:\n\n  mailwarden audit list --limit 20\n\n"
    "  mailwarden audit list --actor carol --action mailbox.password --json",
)
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Entries per page.")] = 50,
    before: Annotated[
        int | None, typer.Option("--before", help="Continue below this entry id.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. mailbox.create.")
    ] = None,
    object_key: Annotated[
        str | None, typer.Option("--object", help="Only this object (address, domain, user).")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="From this date/time (UTC unless given).")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Before this date/time.")] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List audit entries, newest first."""
    # Details only fit a wide terminal; --json always carries before and after in full.
    wide = console.width >= 110
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, who: service.list_entries(
                uow,
                who,
                limit=limit,
                before_id=int(cursor) if cursor else None,
                actor_name=actor,
                action=action,
                object_key=object_key,
                since=_date(since),
                until=_date(until),
            ),
        ),
        after=str(before) if before else None,
        every_page=every_page,
        as_json=json_output,
        columns=["ID", "WHEN (UTC)", "ACTOR", "ACTION", "OBJECT", "DETAILS"][: 6 if wide else 5],
        row=lambda e: [
            e.id,
            e.created_at.strftime("%Y-%m-%d %H:%M"),
            e.actor,
            e.action,
            e.object_key,
            _summary(e),
        ][: 6 if wide else 5],
        empty="No audit entries.",
        cursor_option="--before",
    )
