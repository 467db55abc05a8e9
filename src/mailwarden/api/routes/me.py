"""/api/v1/me: the acting admin and the key in use, and the admin's own password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from mailwarden.admins import service as admins
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import Identity
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.schemas import InputSchema
from mailwarden.throttle import service as throttle
from mailwarden.throttle.service import Subject

from ..access import authenticated
from ..context import ApiContext, Context, DryRun, DryRunPlan, client_address

router = APIRouter(prefix="/me", tags=["me"])


class OwnPasswordChange(InputSchema):
    current_password: str = Field(json_schema_extra={"writeOnly": True})
    new_password: str = Field(json_schema_extra={"writeOnly": True})


@router.get("", response_model=Identity, summary="Who you act as, on which domains, with which key")
@authenticated()
def whoami(context: Context) -> JSONResponse:
    return context.respond(apikeys.whoami)


@router.post(
    "/password",
    status_code=204,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Change your own password; the current one is required",
    description="Wrong current passwords count as failed authentication: too many, and the "
    "account's password changes are refused for a while (429 with Retry-After).",
)
@authenticated()
def change_own_password(
    request: Request, context: Context, body: OwnPasswordChange, dry_run: DryRun = False
) -> Response:
    # A stolen key must not be a way to guess the password it does not know.
    subjects = _password_subjects(request, context)
    with context.runtime.unit_of_work(dry_run=True) as uow:
        throttle.ensure_allowed(uow, subjects)
    try:
        response = context.mutate(
            lambda uow, actor: _nothing(
                admins.change_own_password(uow, actor, body.current_password, body.new_password)
            ),
            dry_run=dry_run,
        )
    except ValidationError as exc:
        if exc.rule == "wrong_password":
            with context.runtime.unit_of_work(dry_run=False) as uow:
                throttle.record_failure(uow, subjects)
                uow.finish()
        raise
    with context.runtime.unit_of_work(dry_run=False) as uow:
        throttle.clear(uow, subjects[0])
        uow.finish()
    return response


def _password_subjects(request: Request, context: ApiContext) -> list[Subject]:
    """The account first (a success clears it), then the client address."""
    settings = context.runtime.settings
    return [
        throttle.account(settings, context.actor.username),
        throttle.client(settings, client_address(request)),
    ]


def _nothing(_changed: object) -> None:
    # 204: the answer to a password change carries nothing.
    return None
