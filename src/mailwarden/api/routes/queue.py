"""/api/v1/hosts/{host}/queue: Postfix's mail queue on a registered host.

Listing reads `postqueue -j`, oldest message first; a message's envelope and headers come from
`postcat` (never its body). Changes name the messages by queue id in the body; ids are checked
against Postfix's id forms before any command runs (422 naming `ids` otherwise), and ids not
in the queue are answered item by item as `not_found`. A failing host answers 502.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.queue import service
from mailwarden.queue.schemas import (
    QueueActionResult,
    QueueFlushResult,
    QueueIds,
    QueueMessageDetail,
    QueueMessagePublic,
    QueueName,
)
from mailwarden.queue.schemas import QueueFilters as Filters
from mailwarden.stack.postfix.queue import MAX_QUEUE_ID_CHARS

from ..access import requires
from ..context import Context, DryRun, DryRunPlan, as_json
from ..lists import Limit, ListPage

router = APIRouter(prefix="/hosts/{host}/queue", tags=["queue"])


class QueueActionDryRun(DryRunPlan):
    """A dry run of a queue change: the plan, and where each message is and would go."""

    result: QueueActionResult


class QueueFlushDryRun(DryRunPlan):
    """A dry run of a flush: the plan, and how many deferred messages it would retry."""

    result: QueueFlushResult


HostName = Annotated[str, Path(max_length=63, description="The registered host's name.")]
QueueId = Annotated[
    str, Path(max_length=MAX_QUEUE_ID_CHARS, description="A Postfix queue id, e.g. 8E6B720C005.")
]
Action = Annotated[str, Path(max_length=16, description="hold, release, requeue or delete.")]
QueueCursor = Annotated[
    str | None,
    Query(max_length=64, description="`next_cursor` of the previous page (ARRIVAL:ID)."),
]


@router.get(
    "",
    response_model=ListPage[QueueMessagePublic],
    summary="List the queued messages, oldest first, with filters",
)
@requires(Permission.QUEUE_READ)
def list_queue(
    context: Context,
    host: HostName,
    queue: Annotated[QueueName | None, Query(description="Only this queue.")] = None,
    sender: Annotated[
        str | None, Query(max_length=254, description="The sender contains this.")
    ] = None,
    recipient: Annotated[
        str | None, Query(max_length=254, description="A recipient contains this.")
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=200, description="A deferral reason contains this.")
    ] = None,
    older_than: Annotated[
        int | None, Query(ge=0, description="Only messages at least this many seconds old.")
    ] = None,
    limit: Limit = 50,
    cursor: QueueCursor = None,
) -> JSONResponse:
    given = {
        "queue": queue,
        "sender": sender,
        "recipient": recipient,
        "reason": reason,
        "older_than": older_than,
    }
    filters = parse(Filters, {name: value for name, value in given.items() if value is not None})
    return context.list(
        lambda uow, actor: service.list_messages(
            uow, actor, host, filters=filters, limit=limit, after=cursor
        )
    )


@router.post(
    "/flush",
    response_model=QueueFlushResult | QueueFlushDryRun,
    description="With `dry_run`, the answer is the plan and the result it would have.",
    summary="Retry every deferred message now (postqueue -f)",
)
@requires(Permission.QUEUE_MANAGE)
def flush_queue(context: Context, host: HostName, dry_run: DryRun = False) -> Response:
    return _answer(context, lambda uow, actor: service.flush(uow, actor, host), dry_run)


@router.get(
    "/{queue_id}",
    response_model=QueueMessageDetail,
    summary="A queued message's envelope and headers (never its body)",
)
@requires(Permission.QUEUE_READ)
def show_message(context: Context, host: HostName, queue_id: QueueId) -> JSONResponse:
    return context.respond(lambda uow, actor: service.show(uow, actor, host, queue_id))


@router.post(
    "/{action}",
    response_model=QueueActionResult | QueueActionDryRun,
    summary="Hold, release, requeue or delete messages by queue id",
    description="The answer lists every id with the queue it was in, the queue it is in now "
    "(null: gone) and the outcome (held, released, requeued, deleted, unchanged, not_found, "
    "failed; `would_...` on a dry run). `in_transit`: the message was still in the maildrop "
    "queue, where pickup gives it a new id; nothing was done to it, list the queue again. "
    "With `dry_run`, the answer is the plan and that result.",
)
@requires(Permission.QUEUE_MANAGE)
def change_messages(
    context: Context, host: HostName, action: Action, body: QueueIds, dry_run: DryRun = False
) -> Response:
    return _answer(
        context, lambda uow, actor: service.change(uow, actor, host, action, body.ids), dry_run
    )


def _answer(
    context: Context, operation: Callable[[UnitOfWork, Actor], BaseModel], dry_run: bool
) -> Response:
    """One change in one transaction. A dry run answers the plan and also the result, which
    says where each message is and where it would go (the plan alone cannot: nothing is
    stored)."""
    with context.runtime.unit_of_work(dry_run=dry_run) as uow:
        result = operation(uow, context.actor)
        plan = uow.finish()
    if dry_run:
        return JSONResponse(
            {
                "dry_run": True,
                "plan": [change.as_dict() for change in plan],
                "result": as_json(result),
            }
        )
    return JSONResponse(as_json(result))
