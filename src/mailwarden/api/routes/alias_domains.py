"""/api/v1/alias-domains: every address of an alias domain is delivered to the same local part
of its target domain. Only superadmins create and remove them; domain admins see those that
point at their domains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.alias_domains import service
from mailwarden.alias_domains.schemas import AliasDomainCreate, AliasDomainPublic
from mailwarden.alias_domains.service import ALIAS_DOMAIN_SORTS
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import ActiveFilter, Cursor, Limit, ListPage, Search, sort_query

router = APIRouter(prefix="/alias-domains", tags=["alias domains"])

Sort = Annotated[
    str | None,
    sort_query(ALIAS_DOMAIN_SORTS, "alias_domain"),
]
TargetDomain = Annotated[
    str | None, Query(max_length=253, description="Only alias domains of this target domain.")
]
Name = Annotated[str, Path(max_length=253, description="The alias domain, Unicode or xn-- form.")]


@router.get("", response_model=ListPage[AliasDomainPublic], summary="List alias domains")
@requires(Permission.ALIAS_DOMAIN_READ)
def list_alias_domains(
    context: Context,
    domain: TargetDomain = None,
    q: Search = None,
    active: ActiveFilter = None,
    sort: Sort = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_alias_domains(
            uow,
            actor,
            target_domain=domain,
            search=q,
            active=active,
            sort=sort,
            limit=limit,
            after=cursor,
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=AliasDomainPublic,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Make a name an alias of a domain",
)
@requires(Permission.ALIAS_DOMAIN_CREATE)
def create_alias_domain(
    context: Context, body: AliasDomainCreate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, body), dry_run=dry_run, status=201
    )


@router.get("/{name}", response_model=AliasDomainPublic, summary="An alias domain")
@requires(Permission.ALIAS_DOMAIN_READ)
def show_alias_domain(context: Context, name: Name) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, name))


@router.delete(
    "/{name}",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Remove an alias domain",
)
@requires(Permission.ALIAS_DOMAIN_DELETE)
def remove_alias_domain(context: Context, name: Name, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.remove(uow, actor, name), dry_run=dry_run)
