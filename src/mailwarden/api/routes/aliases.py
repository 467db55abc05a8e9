"""/api/v1/aliases: addresses delivered to other addresses; `@domain` is a domain's catch-all."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from mailwarden.aliases import service
from mailwarden.aliases.schemas import AliasCreate, AliasPublic, AliasUpdate
from mailwarden.aliases.service import ALIAS_SORTS
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import ActiveFilter, Cursor, DomainFilter, Limit, ListPage, Search, sort_query

router = APIRouter(prefix="/aliases", tags=["aliases"])

Sort = Annotated[str | None, sort_query(ALIAS_SORTS, "address")]
Address = Annotated[
    str,
    Path(
        max_length=254,
        description="The alias address, or `@domain` for the domain's catch-all "
        "(e.g. /api/v1/aliases/@example.org).",
    ),
]


@router.get("", response_model=ListPage[AliasPublic], summary="List aliases with their targets")
@requires(Permission.ALIAS_READ)
def list_aliases(
    context: Context,
    domain: DomainFilter = None,
    q: Search = None,
    active: ActiveFilter = None,
    sort: Sort = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_aliases(
            uow, actor, domain=domain, search=q, active=active, sort=sort, limit=limit, after=cursor
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=AliasPublic,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create an alias with one or more targets",
)
@requires(Permission.ALIAS_CREATE)
def create_alias(context: Context, body: AliasCreate, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, body), dry_run=dry_run, status=201
    )


@router.get("/{address}", response_model=AliasPublic, summary="An alias")
@requires(Permission.ALIAS_READ)
def show_alias(context: Context, address: Address) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, address))


@router.patch(
    "/{address}",
    response_model=AliasPublic | DryRunPlan,
    summary="Replace, add or remove an alias's targets, or change its state",
)
@requires(Permission.ALIAS_UPDATE)
def update_alias(
    context: Context, address: Address, body: AliasUpdate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.update(uow, actor, address, body), dry_run=dry_run
    )


@router.delete(
    "/{address}",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Remove an alias",
)
@requires(Permission.ALIAS_DELETE)
def remove_alias(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.remove(uow, actor, address), dry_run=dry_run)
