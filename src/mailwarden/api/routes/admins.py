"""/api/v1/admins"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.admins import service
from mailwarden.admins.schemas import AdminCreate, AdminPublic, AdminUpdate
from mailwarden.admins.service import ADMIN_SORTS
from mailwarden.kernel.actor import Role
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import InputSchema, PublicSchema

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import ActiveFilter, Cursor, Limit, ListPage, sort_query
from ..passwords import PASSWORD_FIELD, RANDOM_FIELD, chosen_password, shown_once

router = APIRouter(prefix="/admins", tags=["admins"])

Sort = Annotated[str | None, sort_query(ADMIN_SORTS, "username")]
UsernameSearch = Annotated[
    str | None, Query(max_length=254, description="Substring of the username.")
]
RoleFilter = Annotated[Role | None, Query(description="Only admins of this role.")]
Username = Annotated[str, Path(max_length=254, description="The admin's username.")]


class AdminCreateBody(AdminCreate):
    """AdminCreate, and the password: given, or generated and returned once."""

    password: str | None = PASSWORD_FIELD
    random_password: bool = RANDOM_FIELD


class PasswordBody(InputSchema):
    password: str | None = PASSWORD_FIELD
    random_password: bool = RANDOM_FIELD


class AdminCreated(AdminPublic):
    # Present only when the password was generated.
    password: str | None = None


class PasswordSet(PublicSchema):
    username: str
    # Present only when the password was generated.
    password: str | None = None


@router.get("", response_model=ListPage[AdminPublic], summary="List admins")
@requires(Permission.ADMIN_READ, own_objects=True)
def list_admins(
    context: Context,
    q: UsernameSearch = None,
    active: ActiveFilter = None,
    role: RoleFilter = None,
    sort: Sort = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """Superadmins see every admin; a domain admin sees its own account only."""
    return context.list(
        lambda uow, actor: service.list_admins(
            uow, actor, search=q, active=active, role=role, sort=sort, limit=limit, after=cursor
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=AdminCreated,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create an admin; a generated password is returned once",
)
@requires(Permission.ADMIN_CREATE)
def create_admin(context: Context, body: AdminCreateBody, dry_run: DryRun = False) -> Response:
    password, generated = chosen_password(body.password, body.random_password)
    data = AdminCreate.model_validate(body.model_dump(exclude={"password", "random_password"}))
    return context.mutate(
        lambda uow, actor: shown_once(
            service.create(uow, actor, data, password=password).model_dump(mode="json"),
            password,
            generated,
        ),
        dry_run=dry_run,
        status=201,
    )


@router.get("/{username}", response_model=AdminPublic, summary="An admin")
@requires(Permission.ADMIN_READ, own_objects=True)
def show_admin(context: Context, username: Username) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, username))


@router.patch(
    "/{username}",
    response_model=AdminPublic | DryRunPlan,
    summary="Change an admin's role, domains or state",
)
@requires(Permission.ADMIN_UPDATE)
def update_admin(
    context: Context, username: Username, body: AdminUpdate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.update(uow, actor, username, body), dry_run=dry_run
    )


@router.delete(
    "/{username}",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Remove an admin (and its API keys)",
)
@requires(Permission.ADMIN_DELETE)
def remove_admin(context: Context, username: Username, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.remove(uow, actor, username), dry_run=dry_run)


@router.post(
    "/{username}/password",
    response_model=PasswordSet | DryRunPlan,
    summary="Set another admin's password (superadmins); a generated one is returned once",
    description="Your own password is changed with POST /api/v1/me/password, which asks for "
    "the current one.",
)
@requires(Permission.ADMIN_UPDATE)
def set_admin_password(
    context: Context, username: Username, body: PasswordBody, dry_run: DryRun = False
) -> Response:
    password, generated = chosen_password(body.password, body.random_password)
    return context.mutate(
        lambda uow, actor: shown_once(
            {"username": service.set_password(uow, actor, username, password).username},
            password,
            generated,
        ),
        dry_run=dry_run,
    )
