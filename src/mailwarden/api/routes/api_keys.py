"""/api/v1/api-keys"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.apikeys import service
from mailwarden.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import Limit, ListPage

router = APIRouter(prefix="/api-keys", tags=["api-keys"])

KeyId = Annotated[str, Path(max_length=32, description="The key's id (12 hex digits).")]


@router.get(
    "",
    response_model=ListPage[ApiKeyPublic],
    summary="List API keys (never the tokens): your own, or as a superadmin everyone's",
)
@requires(Permission.API_KEY_READ, own_objects=True)
def list_keys(
    context: Context,
    admin: Annotated[
        str | None, Query(max_length=254, description="Only the keys of this admin.")
    ] = None,
    include_inactive: Annotated[bool, Query(description="Also revoked and expired keys.")] = False,
    limit: Limit = 50,
    cursor: Annotated[
        str | None, Query(max_length=32, description="`next_cursor` of the previous page.")
    ] = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_keys(
            uow, actor, admin=admin, include_inactive=include_inactive, limit=limit, after=cursor
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create an API key; the answer is the only time `key` (the token) is shown",
    description="Without `admin` the key is your own. A key made with a narrowed key is "
    "narrowed too, and never outlives the key that made it.",
)
@requires(Permission.API_KEY_CREATE, own_objects=True)
def create_key(context: Context, body: ApiKeyCreate, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, body), dry_run=dry_run, status=201
    )


@router.get("/{key_id}", response_model=ApiKeyPublic, summary="An API key (never the token)")
@requires(Permission.API_KEY_READ, own_objects=True)
def show_key(context: Context, key_id: KeyId) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, key_id))


@router.delete(
    "/{key_id}",
    response_model=ApiKeyPublic | DryRunPlan,
    summary="Revoke an API key; the answer is the revoked key",
)
@requires(Permission.API_KEY_REVOKE, own_objects=True)
def revoke_key(context: Context, key_id: KeyId, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.revoke(uow, actor, key_id), dry_run=dry_run)
