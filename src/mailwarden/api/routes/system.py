"""Operational endpoints outside /api/v1: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mailwarden.inventory import service as inventory
from mailwarden.kernel.permissions import Permission

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
    summary="Prometheus metrics: requests, latencies, object counts (superadmin key)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **ERROR_RESPONSES},
)
@requires(Permission.METRICS_READ)
def metrics(request: Request, context: Context) -> Response:
    counts = context.read(inventory.object_counts)
    exposition = request.app.state.metrics
    assert isinstance(exposition, Metrics)
    return Response(exposition.exposition(counts), media_type=CONTENT_TYPE_LATEST)
