"""Operational endpoints outside /api/v1: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mailwarden.health import service as health
from mailwarden.health.schemas import HostHealth
from mailwarden.inventory import service as inventory
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.pagination import MAX_LIMIT
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import UnitOfWork

from ..access import public, requires
from ..context import Context, runtime_of
from ..metrics import Metrics
from ..problems import ERROR_RESPONSES

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Is the service up and its database reachable?",
    responses={503: {"description": "The database does not answer"}},
)
@public()
def healthz(request: Request) -> JSONResponse:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        reachable = inventory.database_reachable(uow)
    body = {"status": "ok" if reachable else "unavailable", "database": reachable}
    return JSONResponse(body, status_code=200 if reachable else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latencies, object counts, mail host health "
    "(superadmin key)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **ERROR_RESPONSES},
)
@requires(Permission.METRICS_READ)
def metrics(request: Request, context: Context) -> Response:
    counts = context.read(inventory.object_counts)
    hosts = context.read(_stored_health)
    exposition = request.app.state.metrics
    assert isinstance(exposition, Metrics)
    return Response(exposition.exposition(counts, hosts), media_type=CONTENT_TYPE_LATEST)


# A scrape reads at most this many pages of hosts (of MAX_LIMIT each): bounded, whatever
# the registry holds.
_HOST_PAGES = 4


def _stored_health(uow: UnitOfWork, actor: Actor) -> list[HostHealth]:
    collected: list[HostHealth] = []
    cursor: str | None = None
    for _ in range(_HOST_PAGES):
        page = health.stored(uow, actor, limit=MAX_LIMIT, after=cursor)
        collected += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return collected
