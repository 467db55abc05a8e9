"""/api/v1/registrations: the moderation queue of visitors' requests for a mailbox.

Visitors submit requests on the registration page of the web console (a domain's registration
must be open); admins of the domain approve them here (the mailbox is created with the password
the visitor chose) or reject them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import InputSchema
from mailwarden.mailboxes.schemas import MailboxPublic
from mailwarden.registrations import service
from mailwarden.registrations.schemas import RegistrationPublic

from ..access import requires
from ..context import Context, DryRun, DryRunPlan
from ..lists import Cursor, DomainFilter, Limit, ListPage

router = APIRouter(prefix="/registrations", tags=["registrations"])

RequestId = Annotated[int, Path(description="The request's id, as the list shows it.")]
# `all` is the API's word for the service's "no status filter", as `--status all` is the CLI's.
StatusFilter = Annotated[
    Literal["pending", "approved", "rejected", "all"],
    Query(description="Only requests in this state; `all` for every state."),
]


class RejectBody(InputSchema):
    reason: str = Field(default="", description="Why, for the record (at most 255 characters).")


@router.get(
    "",
    response_model=ListPage[RegistrationPublic],
    summary="List registration requests, oldest first (never the chosen password)",
)
@requires(Permission.REGISTRATION_READ)
def list_registrations(
    context: Context,
    domain: DomainFilter = None,
    status: StatusFilter = "pending",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    wanted = None if status == "all" else status
    return context.list(
        lambda uow, actor: service.list_requests(
            uow, actor, domain=domain, status=wanted, limit=limit, after=cursor
        )
    )


@router.get("/{request_id}", response_model=RegistrationPublic, summary="A registration request")
@requires(Permission.REGISTRATION_READ)
def show_registration(context: Context, request_id: RequestId) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, request_id))


@router.post(
    "/{request_id}/approve",
    response_model=MailboxPublic | DryRunPlan,
    summary="Approve a request: the answer is the mailbox it created",
    description="The mailbox gets the password the visitor chose, and every rule of a new "
    "mailbox (limits, quotas, the address being free) is checked now.",
)
@requires(Permission.REGISTRATION_DECIDE)
def approve_registration(
    context: Context, request_id: RequestId, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.approve(uow, actor, request_id), dry_run=dry_run
    )


@router.post(
    "/{request_id}/reject",
    response_model=RegistrationPublic | DryRunPlan,
    summary="Reject a request; no mailbox is created. The answer is the decided request",
)
@requires(Permission.REGISTRATION_DECIDE)
def reject_registration(
    context: Context, request_id: RequestId, body: RejectBody, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.reject(uow, actor, request_id, body.reason), dry_run=dry_run
    )
