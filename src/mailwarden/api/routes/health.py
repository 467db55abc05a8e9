"""/api/v1/hosts/{host}/health (checks run now), /api/v1/health (the stored results) and
/api/v1/health/incidents (the monitor's incidents, newest first).

All superadmins only. The stored results are what `mailwarden monitor` found last; reading
them reaches no host, and each result carries the time it was taken.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from mailwarden.health import service
from mailwarden.health.schemas import HostHealth, IncidentPublic
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context
from ..lists import Limit, ListPage
from ..problems import PROBLEM_JSON, Problem

router = APIRouter(tags=["health"])

Host = Annotated[str, Path(max_length=63, description="The host's name in mailwarden, e.g. mx1.")]
NameCursor = Annotated[
    str | None, Query(max_length=63, description="`next_cursor` of the previous page.")
]
HOST_FAILED: dict[int | str, dict[str, Any]] = {
    502: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "The host could not be reached or a command there failed",
    }
}


@router.get(
    "/hosts/{host}/health",
    response_model=HostHealth,
    responses=HOST_FAILED,
    summary="Check a host now: daemons, banners, queue, disk, certificates, database",
    description="Runs every check against the host and its listeners and stores nothing. "
    "`status` is the worst check's (unknown ones, such as TLS not offered, left aside).",
)
@requires(Permission.HEALTH_READ)
def check_host_health(context: Context, host: Host) -> JSONResponse:
    return context.respond(lambda uow, actor: service.run_checks(uow, actor, host))


@router.get(
    "/health",
    response_model=ListPage[HostHealth],
    summary="The latest stored check results of every host, by host name",
    description="What `mailwarden monitor` found last (no host is reached); a host it has not "
    "checked yet has no checks and the status `unknown`.",
)
@requires(Permission.HEALTH_READ)
def list_health(context: Context, limit: Limit = 50, cursor: NameCursor = None) -> JSONResponse:
    return context.list(lambda uow, actor: service.stored(uow, actor, limit=limit, after=cursor))


@router.get(
    "/health/incidents",
    response_model=ListPage[IncidentPublic],
    summary="The monitor's incidents, newest first",
    description="A check of a host that went warning or critical, from when it was first seen "
    "failing to when it was ok again (`resolved_at` null: still open). Filter by `host` and by "
    "`state` (all, open, resolved).",
)
@requires(Permission.HEALTH_READ)
def list_incidents(
    context: Context,
    host: Annotated[str | None, Query(max_length=63, description="Only this host's.")] = None,
    state: Annotated[
        Literal["all", "open", "resolved"], Query(description="Open, resolved or both.")
    ] = "all",
    limit: Limit = 50,
    cursor: Annotated[
        str | None, Query(max_length=18, description="`next_cursor` of the previous page.")
    ] = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_incidents(
            uow, actor, host=host, state=state, limit=limit, after=cursor
        )
    )
