"""Postfix's mail queue of a registered host (superadmins): the messages with filters in the
URL, a message's envelope and headers, and bulk hold/release/requeue/delete and flush, each
through a preview (where every selected message is and where it would go) before it applies.

Senders, recipients, deferral reasons and headers come from strangers: the templates escape
them like any other text.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.hosts import service as hosts
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.schemas import parse
from mailwarden.queue import service
from mailwarden.queue.schemas import (
    QueueActionResult,
    QueueFilters,
    QueueFlushResult,
    QueueMessageDetail,
    QueueMessagePublic,
)
from mailwarden.stack.hosts import HostError

from ..changes import GENERAL, Outcome, errors_of, perform, wants_preview
from ..rendering import render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

PER_PAGE: Final = 50
HOST_PICKER_SIZE: Final = 100
QUEUE_CHOICES: Final = [("", "All queues")] + [
    (name, name) for name in ("deferred", "hold", "active", "incoming", "maildrop")
]
AGE_CHOICES: Final = [
    ("", "Any age"),
    ("3600", "Older than 1 hour"),
    ("21600", "Older than 6 hours"),
    ("86400", "Older than 1 day"),
    ("259200", "Older than 3 days"),
]
ACTION_LABELS: Final = {
    "hold": "Hold",
    "release": "Release",
    "requeue": "Requeue",
    "delete": "Delete",
}
FILTER_NAMES: Final = ("queue", "sender", "recipient", "reason", "older_than")
HOST_FAILED_STATUS: Final = 502
Text = Annotated[str, Query(max_length=254)]


def _host_names(request: Request, viewer: Viewer) -> list[str]:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        listed = hosts.list_hosts(uow, viewer.actor, limit=HOST_PICKER_SIZE)
    return [item.name for item in listed.items]


def _filters(values: dict[str, str]) -> QueueFilters:
    fields: dict[str, Any] = {}
    for name in ("queue", "sender", "recipient", "reason"):
        if values.get(name):
            fields[name] = values[name]
    older = values.get("older_than", "")
    if older:
        if not older.isdigit() or len(older) > 9:
            raise ValidationError("older_than", "not_a_number", "a number of seconds")
        fields["older_than"] = int(older)
    return parse(QueueFilters, fields)


def _list_link(host: str, values: dict[str, str], **extra: str) -> str:
    query = {"host": host, **{k: values.get(k, "") for k in FILTER_NAMES}, **extra}
    return "/queue?" + urlencode({k: v for k, v in query.items() if v})


@router.get("/queue")
def queue(
    request: Request,
    viewer: AdminViewer,
    host: Annotated[str, Query(max_length=63)] = "",
    queue: Annotated[str, Query(max_length=16)] = "",
    sender: Text = "",
    recipient: Text = "",
    reason: Text = "",
    older_than: Annotated[str, Query(max_length=12)] = "",
    after: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    require(viewer.actor, Permission.QUEUE_READ)
    names = _host_names(request, viewer)
    chosen = host or (names[0] if names else "")
    values = {
        "queue": queue,
        "sender": sender,
        "recipient": recipient,
        "reason": reason,
        "older_than": older_than,
    }
    errors: dict[str, list[str]] = {}
    page: Page[QueueMessagePublic] = Page([], None)
    status_code = 200
    if chosen:
        try:
            filters = _filters(values)
            with runtime_of(request).unit_of_work(dry_run=True) as uow:
                page = service.list_messages(
                    uow, viewer.actor, chosen, filters=filters, limit=PER_PAGE, after=after or None
                )
        except (ValidationError, NotFound) as exc:
            errors, status_code = errors_of(exc, {"host": GENERAL}), 422
        except HostError as exc:
            errors, status_code = {GENERAL: [str(exc)]}, HOST_FAILED_STATUS
    context: dict[str, Any] = {
        "title": f"Mail queue of {chosen}" if chosen else "Mail queue",
        "hosts": names,
        "host": chosen,
        "values": values,
        "errors": errors,
        "page": page,
        "queue_choices": QUEUE_CHOICES,
        "age_choices": AGE_CHOICES,
        "actions": ACTION_LABELS,
        "next_link": _list_link(chosen, values, after=page.next_cursor)
        if page.next_cursor
        else None,
        "first_link": _list_link(chosen, values) if after else None,
        "back_link": _list_link(chosen, values),
    }
    return render(request, "queue/list.html", context, viewer=viewer, status_code=status_code)


@router.get("/queue/{host}/{queue_id}")
def message(request: Request, viewer: AdminViewer, host: str, queue_id: str) -> Response:
    require(viewer.actor, Permission.QUEUE_READ)
    detail: QueueMessageDetail | None = None
    errors: dict[str, list[str]] = {}
    status_code = 200
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            detail = service.show(uow, viewer.actor, host, queue_id)
    except ValidationError as exc:
        errors, status_code = errors_of(exc, {"queue_id": GENERAL}), 422
    except HostError as exc:
        errors, status_code = {GENERAL: [str(exc)]}, HOST_FAILED_STATUS
    context = {
        "title": f"Queued message {queue_id}",
        "host": host,
        "queue_id": queue_id,
        "detail": detail,
        "errors": errors,
        "back_link": _list_link(host, {}),
    }
    return render(request, "queue/detail.html", context, viewer=viewer, status_code=status_code)


def _run(
    request: Request, viewer: Viewer, operation: Any, *, preview: bool
) -> tuple[Outcome[Any], int]:
    """`perform`, with a failing host said on the page (502) instead of an error page."""
    try:
        outcome = perform(request, viewer.actor, operation, preview=preview)
    except HostError as exc:
        return Outcome(errors={GENERAL: [str(exc)]}, previewed=preview), HOST_FAILED_STATUS
    return outcome, 200 if outcome.ok else 422


FormText = Annotated[str, Form(max_length=254)]


@router.post("/queue/{host}/change")
def change(
    request: Request,
    viewer: AdminViewer,
    host: str,
    action: Annotated[str, Form(max_length=16)] = "",
    ids: Annotated[list[str] | None, Form(max_length=500)] = None,
    intent: Annotated[str, Form(max_length=16)] = "",
    queue: Annotated[str, Form(max_length=16)] = "",
    sender: FormText = "",
    recipient: FormText = "",
    reason: FormText = "",
    older_than: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """The bulk form of the list (and the confirm form of its preview): `action`, the
    checked `ids`, `intent` preview or apply; the list's filters ride along to go back."""
    require(viewer.actor, Permission.QUEUE_MANAGE)
    selected = ids or []
    values = {
        "queue": queue,
        "sender": sender,
        "recipient": recipient,
        "reason": reason,
        "older_than": older_than,
    }
    preview = wants_preview({"intent": intent})
    outcome: Outcome[QueueActionResult]
    if not selected:
        outcome = Outcome(errors={GENERAL: ["Select at least one message."]}, previewed=preview)
        status_code = 422
    else:
        outcome, status_code = _run(
            request,
            viewer,
            lambda uow, actor: service.change(uow, actor, host, action, selected),
            preview=preview,
        )
    context = {
        "title": f"{ACTION_LABELS.get(action, 'Change')} queued messages on {host}",
        "host": host,
        "action": action,
        "action_label": ACTION_LABELS.get(action, action),
        "ids": selected,
        "values": values,
        "outcome": outcome,
        "result": outcome.result,
        "errors": outcome.errors,
        "back_link": _list_link(host, values),
    }
    return render(request, "queue/change.html", context, viewer=viewer, status_code=status_code)


@router.post("/queue/{host}/flush")
def flush(
    request: Request,
    viewer: AdminViewer,
    host: str,
    intent: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    require(viewer.actor, Permission.QUEUE_MANAGE)
    outcome: Outcome[QueueFlushResult]
    outcome, status_code = _run(
        request,
        viewer,
        lambda uow, actor: service.flush(uow, actor, host),
        preview=wants_preview({"intent": intent}),
    )
    context = {
        "title": f"Flush the queue of {host}",
        "host": host,
        "outcome": outcome,
        "result": outcome.result,
        "errors": outcome.errors,
        "back_link": _list_link(host, {}),
    }
    return render(request, "queue/flush.html", context, viewer=viewer, status_code=status_code)
