"""/api/v1/audit"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mailwarden.audit import service
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context
from ..lists import Limit, ListPage

router = APIRouter(prefix="/audit", tags=["audit"])

Moment = Annotated[
    datetime | None,
    Query(description="ISO 8601 date and time; UTC unless it carries an offset."),
]
EntryCursor = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**63 - 1,
        description="`next_cursor` of the previous page: continue below this entry id.",
    ),
]


def _filter(max_length: int, description: str) -> Any:
    return Query(max_length=max_length, description=description)


def _utc(moment: datetime | None) -> datetime | None:
    # As `mailwarden audit list --since/--until`: a moment without an offset is UTC. The
    # service refuses moments off the calendar, naming the field.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@router.get(
    "",
    response_model=ListPage[AuditEntryPublic],
    summary="Audit entries, newest first (a domain admin sees those of its domains)",
)
@requires(Permission.AUDIT_READ)
def list_entries(
    context: Context,
    actor: Annotated[str | None, _filter(254, "Only this actor.")] = None,
    action: Annotated[str | None, _filter(64, "Only this action, e.g. mailbox.create.")] = None,
    object_type: Annotated[
        str | None, _filter(32, "Only this kind of object, e.g. mailbox.")
    ] = None,
    object_key: Annotated[
        str | None, _filter(512, "Only this object (address, domain, user).")
    ] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Limit = 50,
    cursor: EntryCursor = None,
) -> JSONResponse:
    return context.list(
        lambda uow, who: service.list_entries(
            uow,
            who,
            limit=limit,
            before_id=cursor,
            actor_name=actor,
            action=action,
            object_type=object_type,
            object_key=object_key,
            since=_utc(since),
            until=_utc(until),
        )
    )
