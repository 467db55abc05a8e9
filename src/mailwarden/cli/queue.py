"""`mailwarden queue ...`: Postfix's mail queue on a registered host."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from mailwarden.kernel.pagination import Page
from mailwarden.kernel.schemas import parse
from mailwarden.queue import service
from mailwarden.queue.schemas import (
    QueueActionResult,
    QueueFilters,
    QueueIds,
    QueueMessageDetail,
    QueueMessagePublic,
)

from .context import mutate, read
from .exits import EXIT_REFUSED
from .options import All, DryRun, Json, Limit
from .output import console, note_more, print_fields, print_json, print_table, size
from .paging import emit

app = typer.Typer(
    help="Postfix's mail queue on a registered host (see `mailwarden host`): list the queued "
    "messages with their sender, recipients, size, age and why delivery was deferred; show a "
    "message's envelope and headers (never its body); hold, release, requeue or delete "
    "messages by queue id; retry every deferred message now.\n\n"
    "Queue ids are checked before anything runs: Postfix's short form (hex digits, e.g. "
    "8E6B720C005) or long form (e.g. 4Xk9Tq1Bs2zJ7Ln); ALL, - and anything else is refused. "
    "Superadmins only: a queue holds every domain's mail. --host may be left out when exactly "
    "one host is registered.",
    epilog="Examples:\n\n"
    "  mailwarden queue list --queue deferred --older-than 1h\n\n"
    "  mailwarden queue list --host mx1 --recipient @example.org --reason 'Connection refused'\n\n"
    "  mailwarden queue show 8E6B720C005\n\n"
    "  mailwarden queue hold 8E6B720C005 3F1A2B4C5D --dry-run\n\n"
    "  mailwarden queue delete 8E6B720C005\n\n"
    "  mailwarden queue flush --host mx1",
    no_args_is_help=True,
)

Host = Annotated[
    str | None,
    typer.Option("--host", help="The registered host (the only one when left out)."),
]
Ids = Annotated[
    list[str], typer.Argument(help="Queue ids, as `queue list` shows them.", show_default=False)
]
_DURATION = re.compile(r"([0-9]{1,9})([smhdw]?)", re.ASCII)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EXIT_HELP = (
    "Exit status 0 when every id was acted on (or already was where the action puts it), 1 "
    "when any id was not in the queue or did not move: the table says which."
)


def parse_duration(text: str) -> int:
    """`90`, `45s`, `30m`, `2h`, `3d`, `1w` as seconds."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise typer.BadParameter(f"{text!r}: a number with s, m, h, d or w, such as 1h or 3d")
    return int(found.group(1)) * _SECONDS[found.group(2)]


def age(seconds: int) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def _recipients(message: QueueMessagePublic) -> str:
    if not message.recipients:
        return "-"
    first = message.recipients[0].address
    return first if len(message.recipients) == 1 else f"{first} (+{len(message.recipients) - 1})"


def _reason(message: QueueMessagePublic) -> str:
    reasons = [r.reason for r in message.recipients if r.reason]
    return reasons[0] if reasons else ""


def _row(message: QueueMessagePublic) -> list[Any]:
    return [
        message.id,
        message.queue,
        age(message.age_seconds),
        size(message.size),
        message.sender or "<>",
        _recipients(message),
        _reason(message),
    ]


@app.command(
    "list",
    epilog="Messages are listed by arrival time, oldest first; --after continues after the "
    "last message of a page (the cursor printed on stderr). Text filters match a "
    "case-insensitive substring; --older-than takes 90, 45s, 30m, 2h, 3d or 1w.\n\n"
    "Examples:\n\n  mailwarden queue list\n\n"
    "  mailwarden queue list --queue hold --json\n\n"
    "  mailwarden queue list --sender newsletter@ --older-than 2d --all",
)
def list_(
    ctx: typer.Context,
    host: Host = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", help="Only this queue: maildrop, incoming, active, deferred or hold."
        ),
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--sender", help="The sender address contains this.")
    ] = None,
    recipient: Annotated[
        str | None, typer.Option("--recipient", help="A recipient address contains this.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="A recipient's deferral reason contains this.")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Only messages that arrived at least this long ago."),
    ] = None,
    limit: Limit = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue after this cursor.")
    ] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List the queued messages: id, queue, age, size, sender, recipients, deferral reason."""
    given: dict[str, Any] = {
        "queue": queue,
        "sender": sender,
        "recipient": recipient,
        "reason": reason,
        "older_than": parse_duration(older_than) if older_than is not None else None,
    }
    fields = {name: value for name, value in given.items() if value is not None}

    def fetch(cursor: str | None) -> Page[QueueMessagePublic]:
        return read(
            ctx,
            lambda uow, actor: service.list_messages(
                uow, actor, host, filters=parse(QueueFilters, fields), limit=limit, after=cursor
            ),
        )

    if json_output:
        emit(
            fetch,
            after=after,
            every_page=every_page,
            as_json=True,
            columns=[],
            row=_row,
            empty="",
        )
        return
    page = fetch(after)
    shown = 0
    while True:
        if page.items:
            _print_messages(page.items, show_header=shown == 0)
            shown += len(page.items)
        if not every_page or page.next_cursor is None:
            break
        page = fetch(page.next_cursor)
    if not shown:
        print("The queue is empty (or nothing matches the filters).")
    if not every_page:
        note_more(page.next_cursor)


def _print_messages(messages: list[QueueMessagePublic], *, show_header: bool) -> None:
    """A table that fits the terminal: ids, queues, ages and sizes stay whole; addresses and
    reasons give way (cut with an ellipsis) when it is narrow."""
    rows = [[str(cell) for cell in _row(message)] for message in messages]
    table = Table(
        box=box.SIMPLE_HEAD if show_header else None,
        show_header=show_header,
        pad_edge=False,
        expand=True,
    )
    for index, column in enumerate(("ID", "QUEUE", "AGE", "SIZE")):
        # With ratio columns beside them, rich gives unsized columns no room: size these.
        width = max(len(column), *(len(row[index]) for row in rows))
        table.add_column(column, no_wrap=True, width=width)
    for column, ratio in (("SENDER", 2), ("RECIPIENT", 2), ("REASON", 3)):
        table.add_column(column, no_wrap=True, overflow="ellipsis", ratio=ratio, min_width=6)
    for row in rows:
        # Text, not markup: a sender may well contain [brackets].
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


@app.command(
    "show",
    epilog="The body is never shown.\n\nExamples:\n\n  mailwarden queue show 8E6B720C005\n\n"
    "  mailwarden queue show 8E6B720C005 --host mx1 --json",
)
def show(
    ctx: typer.Context,
    queue_id: Annotated[str, typer.Argument(help="The message's queue id.")],
    host: Host = None,
    json_output: Json = False,
) -> None:
    """Show a queued message's envelope (sender, recipients, client) and headers."""
    detail: QueueMessageDetail = read(
        ctx, lambda uow, actor: service.show(uow, actor, host, queue_id)
    )
    if json_output:
        print_json(detail)
        return
    console.print(f"Message {detail.id} on {detail.host}", markup=False)
    console.print("\nEnvelope", markup=False)
    if detail.envelope:
        print_fields([(field.name, field.value) for field in detail.envelope])
    console.print("\nHeaders", markup=False)
    for header in detail.headers:
        console.print(f"{header.name}: {header.value}", markup=False)
    if detail.truncated:
        console.print("(truncated: the envelope and headers are longer)", markup=False)


def _report(result: QueueActionResult, json_output: bool) -> None:
    if json_output:
        print_json(result)
    else:
        if result.dry_run:
            console.print("Dry run: nothing was changed. What would happen:", markup=False)
        print_table(
            ["ID", "BEFORE", "AFTER", "OUTCOME"],
            [
                [item.id, item.before or "-", item.after or "-", item.outcome]
                for item in result.items
            ],
        )
    failures = (service.NOT_FOUND, service.FAILED, service.IN_TRANSIT)
    if any(item.outcome in failures for item in result.items):
        raise typer.Exit(EXIT_REFUSED)


def _change(
    ctx: typer.Context,
    action: str,
    ids: list[str],
    host: str | None,
    dry_run: bool,
    json_output: bool,
) -> None:
    result, _ = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.change(
            uow, actor, host, action, parse(QueueIds, {"ids": ids}).ids
        ),
    )
    _report(result, json_output)


@app.command("hold", epilog=f"{_EXIT_HELP}\n\nExamples:\n\n  mailwarden queue hold 8E6B720C005")
def hold(
    ctx: typer.Context,
    ids: Ids,
    host: Host = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Put messages on hold: nothing delivers them until they are released."""
    _change(ctx, "hold", ids, host, dry_run, json_output)


@app.command(
    "release", epilog=f"{_EXIT_HELP}\n\nExamples:\n\n  mailwarden queue release 8E6B720C005"
)
def release(
    ctx: typer.Context,
    ids: Ids,
    host: Host = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Release held messages to the deferred queue (delivered at the next retry)."""
    _change(ctx, "release", ids, host, dry_run, json_output)


@app.command(
    "requeue",
    epilog="Useful after a change of Postfix's maps: the message goes through cleanup again "
    "and gets a new queue id once pickup takes it from the maildrop queue.\n\n"
    f"{_EXIT_HELP}\n\nExamples:\n\n  mailwarden queue requeue 8E6B720C005 --dry-run",
)
def requeue(
    ctx: typer.Context,
    ids: Ids,
    host: Host = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Requeue messages: Postfix processes them again as if they had just arrived."""
    _change(ctx, "requeue", ids, host, dry_run, json_output)


@app.command(
    "delete",
    epilog="The messages are neither delivered nor bounced: their senders are not told.\n\n"
    f"{_EXIT_HELP}\n\nExamples:\n\n  mailwarden queue delete 8E6B720C005 3F1A2B4C5D --dry-run",
)
def delete(
    ctx: typer.Context,
    ids: Ids,
    host: Host = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Delete messages from the queue for good."""
    _change(ctx, "delete", ids, host, dry_run, json_output)


@app.command(
    "flush",
    epilog="Examples:\n\n  mailwarden queue flush\n\n  mailwarden queue flush --host mx1 --dry-run",
)
def flush(
    ctx: typer.Context, host: Host = None, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Retry every deferred message now (postqueue -f)."""
    result, _ = mutate(ctx, dry_run, lambda uow, actor: service.flush(uow, actor, host))
    if json_output:
        print_json(result)
    elif result.dry_run:
        print(
            f"Dry run: nothing was changed. {result.deferred} deferred message(s) on "
            f"{result.host} would be retried now."
        )
    else:
        print(f"Retrying {result.deferred} deferred message(s) on {result.host} now.")
