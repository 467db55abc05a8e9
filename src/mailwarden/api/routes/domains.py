"""/api/v1/domains"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.domains import service
from mailwarden.domains.schemas import DomainCreate, DomainPublic, DomainUpdate
from mailwarden.domains.service import DOMAIN_SORTS
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import ActiveFilter, Cursor, Limit, ListPage, Search, sort_query

router = APIRouter(prefix="/domains", tags=["domains"])

Sort = Annotated[str | None, sort_query(DOMAIN_SORTS, "name")]
Name = Annotated[str, Path(max_length=253, description="The domain, Unicode or xn-- form.")]


@router.get("", response_model=ListPage[DomainPublic], summary="List domains")
@requires(Permission.DOMAIN_READ)
def list_domains(
    context: Context,
    q: Search = None,
    active: ActiveFilter = None,
    sort: Sort = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_domains(
            uow, actor, search=q, active=active, sort=sort, limit=limit, after=cursor
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=DomainPublic,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create a domain",
)
@requires(Permission.DOMAIN_CREATE)
def create_domain(context: Context, body: DomainCreate, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, body), dry_run=dry_run, status=201
    )


@router.get("/{name}", response_model=dict[str, Any], summary="A domain with its counts")
@requires(Permission.DOMAIN_READ)
def show_domain(context: Context, name: Name) -> JSONResponse:
    return JSONResponse(context.read(lambda uow, actor: service.show(uow, actor, name)).flat())


@router.patch(
    "/{name}",
    # The union itself: a `responses` model next to a response_model is merged into one schema
    # that demands both (the $ref and the anyOf), which no dry-run plan satisfies.
    response_model=DomainPublic | DryRunPlan,
    summary="Change a domain's description, limits, quotas or state",
)
@requires(Permission.DOMAIN_UPDATE)
def update_domain(
    context: Context, name: Name, body: DomainUpdate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.update(uow, actor, name, body), dry_run=dry_run
    )


@router.delete(
    "/{name}",
    response_model=service.DomainRemoval | DryRunPlan,
    summary="Remove a domain; with cascade=true, everything in it (mailboxes after the grace "
    "period)",
)
@requires(Permission.DOMAIN_DELETE)
def remove_domain(
    context: Context,
    name: Name,
    cascade: Annotated[bool, Query(description="Also remove what the domain holds.")] = False,
    dry_run: DryRun = False,
) -> Response:
    return context.mutate(
        lambda uow, actor: dataclasses.asdict(service.remove(uow, actor, name, cascade=cascade)),
        dry_run=dry_run,
    )
