"""Postfix's mail queue on a registered host. Superadmins only: a queue holds every domain's
mail (Permission.QUEUE_READ to look, QUEUE_MANAGE to change).

Changes (hold, release, requeue, delete, flush) first look up where each named message is.
A dry run stops there: the plan says which messages would move from which queue to which, and
no command runs. Otherwise `postsuper` runs once for the messages that are in the queue, the
queue is read again, and one audit entry records what happened to each id (ids, queues; never
a message's content). Ids that are not in the queue are reported as `not_found`, one by one,
beside the others; they are not passed to `postsuper`.

A message in the maildrop queue is on its way in: pickup is about to copy it under a new queue
id and remove the old file, and `postsuper` does not act on maildrop. Such ids are reported as
`in_transit` (list the queue again for the new id) and are not passed to `postsuper` either:
otherwise the old id vanishing would read as a successful delete of a message that lives on.

Unlike database changes, the command runs inside the service rather than after the commit:
what it did to each message is what the audit entry and the answer must say. A failed command
raises HostError, so the transaction, and the audit entry with it, is rolled back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from mailwarden.hosts.service import spec_for
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.stack.hosts import HostError, HostRunner, HostSpec, open_runner
from mailwarden.stack.postfix import queue as postfix_queue
from mailwarden.stack.postfix.queue import QueueEntry, QueueFilter, QueueOutputError

from .schemas import (
    QueueAction,
    QueueActionItem,
    QueueActionResult,
    QueueField,
    QueueFilters,
    QueueFlushResult,
    QueueMessageDetail,
    QueueMessagePublic,
    QueueRecipientPublic,
)

# A page's cursor: the last message's arrival time and queue id ("1795266977:8E6B720C005").
_CURSOR: Final = re.compile(r"([0-9]{1,12}):([0-9A-Za-z]{6,32})", re.ASCII)
# Where a message goes on each action (a dry run's `after`); None: out of the queue.
_DESTINATION: Final[dict[str, str | None]] = {
    "hold": "hold",
    "release": "deferred",
    "requeue": "maildrop",
    "delete": None,
}
_DONE: Final = {"hold": "held", "release": "released", "requeue": "requeued", "delete": "deleted"}
NOT_FOUND: Final = "not_found"
UNCHANGED: Final = "unchanged"
IN_TRANSIT: Final = "in_transit"
FAILED: Final = "failed"


def _cursor_of(entry: QueueEntry) -> str:
    return f"{entry.arrival_time}:{entry.queue_id}"


def _parse_cursor(after: str | None) -> tuple[int, str] | None:
    if not after:
        return None
    found = _CURSOR.fullmatch(after)
    if found is None or not postfix_queue.is_queue_id(found.group(2)):
        raise ValidationError(
            "cursor", "invalid_cursor", "a queue cursor is ARRIVAL_TIME:QUEUE_ID (next_cursor)"
        )
    return int(found.group(1)), found.group(2)


def _to_public(entry: QueueEntry, now: float) -> QueueMessagePublic:
    return QueueMessagePublic(
        id=entry.queue_id,
        queue=entry.queue_name,
        sender=entry.sender,
        recipients=[
            QueueRecipientPublic(address=r.address, reason=r.reason) for r in entry.recipients
        ],
        size=entry.size,
        arrival_time=datetime.fromtimestamp(entry.arrival_time, UTC),
        age_seconds=max(0, int(now) - entry.arrival_time),
        forced_expire=entry.forced_expire,
    )


def _filter_of(filters: QueueFilters | None, now: float) -> QueueFilter:
    if filters is None:
        return QueueFilter()
    for name in ("sender", "recipient", "reason"):
        value = getattr(filters, name)
        if value is not None:
            check_text(value, name)
    return QueueFilter(
        queue_name=filters.queue,
        sender=filters.sender or None,
        recipient=filters.recipient or None,
        reason=filters.reason or None,
        arrived_before=int(now) - filters.older_than if filters.older_than is not None else None,
    )


def _unreadable(spec: HostSpec, exc: QueueOutputError) -> HostError:
    return HostError(spec.name, f"postqueue -j printed what is not its JSON format: {exc}")


def list_messages(
    uow: UnitOfWork,
    actor: Actor,
    host: str | None,
    *,
    filters: QueueFilters | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[QueueMessagePublic]:
    """Queued messages by arrival time, then id; `after`: `next_cursor` of the previous page."""
    spec = spec_for(uow, actor, host, Permission.QUEUE_READ)
    check_limit(limit)
    position = _parse_cursor(after)
    now = time.time()
    wanted = _filter_of(filters, now)
    with open_runner(spec) as runner:
        try:
            entries, more = postfix_queue.list_queue(
                runner, spec, wanted, limit=limit, after=position
            )
        except QueueOutputError as exc:
            raise _unreadable(spec, exc) from None
    items = [_to_public(entry, now) for entry in entries]
    return Page(items=items, next_cursor=_cursor_of(entries[-1]) if more and entries else None)


def show(uow: UnitOfWork, actor: Actor, host: str | None, queue_id: str) -> QueueMessageDetail:
    """A queued message's envelope and headers (never its body)."""
    spec = spec_for(uow, actor, host, Permission.QUEUE_READ)
    queue_id = postfix_queue.check_queue_id(queue_id)
    with open_runner(spec) as runner:
        view = postfix_queue.show_message(runner, spec, queue_id)
    if view is None:
        raise NotFound("queue message", queue_id)
    return QueueMessageDetail(
        id=queue_id,
        host=spec.name,
        envelope=[QueueField(name=name, value=value) for name, value in view.envelope],
        headers=[QueueField(name=name, value=value) for name, value in view.headers],
        truncated=view.truncated,
    )


def _states(runner: HostRunner, spec: HostSpec, ids: Sequence[str]) -> dict[str, str]:
    try:
        return postfix_queue.queue_states(runner, spec, ids)
    except QueueOutputError as exc:
        raise _unreadable(spec, exc) from None


def _outcome(action: str, before: str, after: str | None) -> str:
    if action == "hold":
        return UNCHANGED if before == "hold" else (_DONE[action] if after == "hold" else FAILED)
    if action == "release":
        if before != "hold":
            return UNCHANGED
        return FAILED if after == "hold" else _DONE[action]
    if action == "delete":
        return _DONE[action] if after is None else FAILED
    # requeue: the message goes to the maildrop queue, where pickup gives it a new id.
    return _DONE[action] if after != before else FAILED


def _planned(action: str, before: str) -> tuple[str | None, str]:
    """Where a dry run says the message would go, and the outcome it names."""
    if (action == "hold" and before == "hold") or (action == "release" and before != "hold"):
        return before, UNCHANGED
    return _DESTINATION[action], f"would_{action}"


def _change(
    uow: UnitOfWork, actor: Actor, host: str | None, action: QueueAction, ids: Sequence[str]
) -> QueueActionResult:
    spec = spec_for(uow, actor, host, Permission.QUEUE_MANAGE)
    checked = postfix_queue.check_queue_ids(list(ids))
    items: list[QueueActionItem] = []
    with open_runner(spec) as runner:
        before = _states(runner, spec, checked)
        present = [
            queue_id for queue_id in checked if before.get(queue_id) not in (None, "maildrop")
        ]
        after: dict[str, str] = {}
        if present and not uow.dry_run:
            postfix_queue.postsuper(runner, spec, action, present)
            after = _states(runner, spec, present)
    for queue_id in checked:
        if queue_id not in before:
            items.append(QueueActionItem(id=queue_id, before=None, after=None, outcome=NOT_FOUND))
        elif before[queue_id] == "maildrop":
            items.append(
                QueueActionItem(id=queue_id, before="maildrop", after=None, outcome=IN_TRANSIT)
            )
        elif uow.dry_run:
            destination, outcome = _planned(action, before[queue_id])
            items.append(
                QueueActionItem(
                    id=queue_id, before=before[queue_id], after=destination, outcome=outcome
                )
            )
        else:
            now_in = after.get(queue_id)
            items.append(
                QueueActionItem(
                    id=queue_id,
                    before=before[queue_id],
                    after=now_in,
                    outcome=_outcome(action, before[queue_id], now_in),
                )
            )
    if present:
        acted = [item for item in items if item.id in present]
        missing = [item.id for item in items if item.id not in present]
        uow.record(
            actor,
            ChangeKind.DELETE if action == "delete" else ChangeKind.UPDATE,
            "queue",
            spec.name,
            domain=None,
            before={"ids": [i.id for i in acted], "queues": [i.before for i in acted]},
            after={
                "ids": [i.id for i in acted],
                "queues": [i.after or "gone" for i in acted],
                "outcomes": [i.outcome for i in acted],
                "not_found": missing,
            },
            action=f"queue.{action}",
        )
    return QueueActionResult(host=spec.name, action=action, dry_run=uow.dry_run, items=items)


def hold(uow: UnitOfWork, actor: Actor, host: str | None, ids: Sequence[str]) -> QueueActionResult:
    """Put messages on hold: nothing delivers them until they are released."""
    return _change(uow, actor, host, "hold", ids)


def release(
    uow: UnitOfWork, actor: Actor, host: str | None, ids: Sequence[str]
) -> QueueActionResult:
    """Release held messages back to the deferred queue."""
    return _change(uow, actor, host, "release", ids)


def requeue(
    uow: UnitOfWork, actor: Actor, host: str | None, ids: Sequence[str]
) -> QueueActionResult:
    """Send messages through Postfix's cleanup again (after a change of its maps); each one
    gets a new queue id once pickup takes it."""
    return _change(uow, actor, host, "requeue", ids)


def delete(
    uow: UnitOfWork, actor: Actor, host: str | None, ids: Sequence[str]
) -> QueueActionResult:
    """Remove messages from the queue for good: they are neither delivered nor bounced."""
    return _change(uow, actor, host, "delete", ids)


def change(
    uow: UnitOfWork, actor: Actor, host: str | None, action: str, ids: Sequence[str]
) -> QueueActionResult:
    """One of hold, release, requeue and delete, named (the API's and console's path)."""
    operations = {"hold": hold, "release": release, "requeue": requeue, "delete": delete}
    operation = operations.get(action)
    if operation is None:
        raise ValidationError(
            "action", "unknown_action", f"one of {', '.join(operations)}, not {action[:20]!r}"
        )
    return operation(uow, actor, host, ids)


def flush(uow: UnitOfWork, actor: Actor, host: str | None) -> QueueFlushResult:
    """Retry every deferred message now (`postqueue -f`)."""
    spec = spec_for(uow, actor, host, Permission.QUEUE_MANAGE)
    with open_runner(spec) as runner:
        try:
            deferred = postfix_queue.count_queue(runner, spec, "deferred")
        except QueueOutputError as exc:
            raise _unreadable(spec, exc) from None
        if not uow.dry_run:
            postfix_queue.flush(runner, spec)
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "queue",
        spec.name,
        domain=None,
        before={"deferred": deferred, "flushed": False},
        after={"deferred": deferred, "flushed": True},
        action="queue.flush",
    )
    return QueueFlushResult(host=spec.name, dry_run=uow.dry_run, deferred=deferred)
