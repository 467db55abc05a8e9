"""/api/v1/mailboxes/{address}/app-passwords: one named password per mail client of a mailbox.

The password is in the answer to its creation, once, as `mailwarden mailbox app-password add
--json` shows it; lists never show it, nor its hash.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from mailwarden.apppasswords import service
from mailwarden.apppasswords.schemas import (
    AppPasswordCreate,
    AppPasswordCreated,
    AppPasswordPublic,
)
from mailwarden.apppasswords.service import MAX_NAME_CHARS
from mailwarden.kernel.permissions import Permission

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import Limit, ListPage

router = APIRouter(prefix="/mailboxes/{address}/app-passwords", tags=["app-passwords"])

Address = Annotated[
    str, Path(max_length=254, description="The mailbox address, its domain Unicode or xn-- form.")
]
NameOrId = Annotated[
    str,
    Path(
        max_length=MAX_NAME_CHARS,
        description="The app password's name, or its id (a name containing `/` is revoked by id).",
    ),
]
# The service pages by name: the cursor is the last name of the previous page.
NameCursor = Annotated[
    str | None, Query(max_length=MAX_NAME_CHARS, description="`next_cursor` of the previous page.")
]


@router.get(
    "",
    response_model=ListPage[AppPasswordPublic],
    summary="List a mailbox's app passwords by name (never the passwords)",
)
@requires(Permission.APP_PASSWORD_READ)
def list_app_passwords(
    context: Context, address: Address, limit: Limit = 50, cursor: NameCursor = None
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_app_passwords(
            uow, actor, address, limit=limit, after=cursor
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=AppPasswordCreated,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create an app password; the answer is the only time `password` is shown",
    description="Mail clients log in with it (IMAP, POP3, ManageSieve, SMTP submission) "
    "beside the mailbox's own password; each one is revoked on its own.",
)
@requires(Permission.APP_PASSWORD_CREATE)
def create_app_password(
    context: Context, address: Address, body: AppPasswordCreate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.create(uow, actor, address, body), dry_run=dry_run, status=201
    )


@router.delete(
    "/{name_or_id}",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Revoke an app password: logins with it fail and the mailbox's sessions end",
)
@requires(Permission.APP_PASSWORD_REVOKE)
def revoke_app_password(
    context: Context, address: Address, name_or_id: NameOrId, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.revoke(uow, actor, address, name_or_id), dry_run=dry_run
    )
