from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mailwarden.kernel.schemas import InputSchema, PublicSchema

QueueName = Literal["maildrop", "incoming", "active", "deferred", "hold"]
QueueAction = Literal["hold", "release", "requeue", "delete"]
QUEUE_ACTIONS: tuple[QueueAction, ...] = ("hold", "release", "requeue", "delete")


class QueueFilters(InputSchema):
    """Which messages a listing shows; text filters are case-insensitive substrings."""

    queue: QueueName | None = None
    sender: str | None = Field(default=None, max_length=254)
    recipient: str | None = Field(default=None, max_length=254)
    reason: str | None = Field(default=None, max_length=200)
    # Only messages at least this many seconds old (at most ten years).
    older_than: int | None = Field(default=None, ge=0, le=10 * 366 * 86400)


class QueueIds(InputSchema):
    """The messages a change acts on, by queue id (checked by the service)."""

    ids: list[str] = Field(max_length=500)


class QueueRecipientPublic(PublicSchema):
    address: str
    # Why delivery was deferred; null while nothing was tried.
    reason: str | None


class QueueMessagePublic(PublicSchema):
    id: str
    queue: str
    sender: str
    recipients: list[QueueRecipientPublic]
    size: int
    arrival_time: datetime
    age_seconds: int
    forced_expire: bool


class QueueField(PublicSchema):
    name: str
    value: str


class QueueMessageDetail(PublicSchema):
    """A queued message's envelope records and headers; its body is never shown."""

    id: str
    host: str
    envelope: list[QueueField]
    headers: list[QueueField]
    truncated: bool


class QueueActionItem(PublicSchema):
    id: str
    # The queue the message was in before, and is in after (null: not in the queue). On a dry
    # run `after` is where it would go.
    before: str | None
    after: str | None
    outcome: str


class QueueActionResult(PublicSchema):
    host: str
    action: QueueAction
    dry_run: bool
    items: list[QueueActionItem]


class QueueFlushResult(PublicSchema):
    host: str
    dry_run: bool
    # Deferred messages that were (or would be) retried now.
    deferred: int
