"""/api/v1/hosts/{host}/traffic: the hourly traffic `mailwarden logs ingest` keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from mailwarden.kernel.permissions import Permission
from mailwarden.logs import service
from mailwarden.logs.schemas import Bucket, TopKind, TopList, TrafficSeries

from ..access import requires
from ..context import Context

router = APIRouter(prefix="/hosts", tags=["traffic"])

HostName = Annotated[str, Path(max_length=63, description="The host's name in mailwarden.")]
Moment = Annotated[
    datetime | None,
    Query(
        description="ISO 8601 date and time on the host's wall clock (an offset is ignored); "
        "hours are whole."
    ),
]


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=None)


@router.get(
    "/{host}/traffic",
    response_model=TrafficSeries,
    summary="Mail traffic per hour or day (received, delivered, deferred, bounced, rejected)",
)
@requires(Permission.LOGS_READ)
def traffic(
    context: Context,
    host: HostName,
    since: Moment = None,
    until: Moment = None,
    bucket: Annotated[
        Bucket, Query(description="hour (default; at most 92 days) or day.")
    ] = "hour",
) -> JSONResponse:
    """One point per bucket from `since` (default: 24 hours, or 30 days by day, before
    `until`) to `until` (default: the end of the current hour)."""
    return context.respond(
        lambda uow, actor: service.traffic(
            uow, actor, host, since=_naive(since), until=_naive(until), bucket=bucket
        )
    )


@router.get(
    "/{host}/traffic/top",
    response_model=TopList,
    summary="The most frequent senders, recipients, their domains, or reject reasons",
)
@requires(Permission.LOGS_READ)
def top(
    context: Context,
    host: HostName,
    kind: Annotated[TopKind, Query(description="What to rank.")] = "sender",
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_TOP_LIMIT)] = 10,
) -> JSONResponse:
    return context.respond(
        lambda uow, actor: service.top(
            uow, actor, host, kind=kind, since=_naive(since), until=_naive(until), limit=limit
        )
    )
