"""/api/v1/mailboxes, with each mailbox's password, vacation reply, forwarding and Sieve script.

A password comes back in a response only when the server generated it (`random_password`),
once, as `mailbox add --random-password --json` shows it; one the client sent never does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, WithJsonSchema

from mailwarden.forwarding import service as forwarding
from mailwarden.forwarding.schemas import ForwardPublic, ForwardSet
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.passwords import Scheme, parse_scheme
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import InputSchema, parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic, MailboxUpdate
from mailwarden.mailboxes.service import MAILBOX_SORTS
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import (
    DEFAULT_INTERVAL_DAYS,
    SieveStatus,
    VacationPublic,
    VacationSet,
    parse_date,
)

from ..access import requires
from ..context import Context, DryRun, DryRunPlan, as_json
from ..lists import ActiveFilter, Cursor, DomainFilter, Limit, ListPage, Search, sort_query
from ..passwords import PASSWORD_FIELD, RANDOM_FIELD, chosen_password, shown_once

router = APIRouter(prefix="/mailboxes", tags=["mailboxes"])

Sort = Annotated[str | None, sort_query(MAILBOX_SORTS, "address")]
Address = Annotated[
    str, Path(max_length=254, description="The mailbox address, its domain Unicode or xn-- form.")
]
Removed = Annotated[
    bool,
    Query(description="List only removed mailboxes: restorable until `purge_after`, then purged."),
]
_SCHEME_FIELD = Field(
    default=None,
    max_length=32,
    description="SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, ARGON2I or PBKDF2 "
    "(default: the configured scheme).",
)


class PasswordChoice(InputSchema):
    """How a password is given: exactly one of `password` and `random_password: true`."""

    password: str | None = PASSWORD_FIELD
    random_password: bool = RANDOM_FIELD
    scheme: str | None = _SCHEME_FIELD

    def chosen(self) -> tuple[str, bool]:
        """The password, and whether it was generated (and so is shown once)."""
        return chosen_password(self.password, self.random_password)

    def chosen_scheme(self) -> Scheme | None:
        return None if self.scheme is None else parse_scheme(self.scheme, "scheme")


class MailboxCreateBody(MailboxCreate):
    """A mailbox and its first password."""

    password: str | None = PASSWORD_FIELD
    random_password: bool = RANDOM_FIELD
    scheme: str | None = _SCHEME_FIELD

    def mailbox(self) -> MailboxCreate:
        return MailboxCreate.model_validate(
            self.model_dump(include=set(MailboxCreate.model_fields), exclude_unset=True)
        )

    def choice(self) -> PasswordChoice:
        return PasswordChoice(
            password=self.password, random_password=self.random_password, scheme=self.scheme
        )


class MailboxCreated(MailboxPublic):
    # Present only when the server generated it: shown this once, stored only as a hash.
    password: str | None = None


class PasswordChanged(BaseModel):
    address: str
    password_scheme: str | None
    # Present only when the server generated it.
    password: str | None = None


# A string here, a date once parse_date has read it: the strict schemas take no date from a
# string, and parse_date's error names the field and the rule as the CLI's does.
IsoDate = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


class VacationBody(InputSchema):
    """VacationSet with its dates as JSON has them: ISO `YYYY-MM-DD` strings."""

    subject: str
    body: str
    starts_on: IsoDate | None = Field(
        default=None, description="First day (YYYY-MM-DD); null: from now."
    )
    ends_on: IsoDate | None = Field(
        default=None, description="Last day, inclusive (YYYY-MM-DD); null: until disabled."
    )
    interval_days: int = DEFAULT_INTERVAL_DAYS

    def vacation(self) -> VacationSet:
        values: dict[str, Any] = {
            "subject": self.subject,
            "body": self.body,
            "interval_days": self.interval_days,
        }
        if self.starts_on is not None:
            values["starts_on"] = parse_date(self.starts_on, "starts_on")
        if self.ends_on is not None:
            values["ends_on"] = parse_date(self.ends_on, "ends_on")
        return parse(VacationSet, values)


class SieveApplied(SieveStatus):
    # False: the change is stored but the upload failed (Mailwarden-Follow-Up-Failed says why).
    applied: bool


@router.get("", response_model=ListPage[MailboxPublic], summary="List mailboxes")
@requires(Permission.MAILBOX_READ)
def list_mailboxes(
    context: Context,
    domain: DomainFilter = None,
    q: Search = None,
    active: ActiveFilter = None,
    removed: Removed = False,
    sort: Sort = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    return context.list(
        lambda uow, actor: service.list_mailboxes(
            uow,
            actor,
            domain=domain,
            search=q,
            active=active,
            removed=removed,
            sort=sort,
            limit=limit,
            after=cursor,
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=MailboxCreated,
    responses={200: {"model": DryRunPlan, "description": "Dry run: the plan"}},
    summary="Create a mailbox with a password, given or generated",
)
@requires(Permission.MAILBOX_CREATE)
def create_mailbox(context: Context, body: MailboxCreateBody, dry_run: DryRun = False) -> Response:
    choice = body.choice()
    password, generated = choice.chosen()

    def action(uow: UnitOfWork, actor: Actor) -> dict[str, Any]:
        created = service.create(
            uow, actor, body.mailbox(), password=password, scheme=choice.chosen_scheme()
        )
        return shown_once(as_json(created), password, generated)

    return context.mutate(action, dry_run=dry_run, status=201)


@router.get("/{address}", response_model=MailboxPublic, summary="A mailbox, removed ones too")
@requires(Permission.MAILBOX_READ)
def show_mailbox(context: Context, address: Address) -> JSONResponse:
    return context.respond(lambda uow, actor: service.get(uow, actor, address))


@router.patch(
    "/{address}",
    response_model=MailboxPublic | DryRunPlan,
    summary="Change a mailbox's name, quota or state",
)
@requires(Permission.MAILBOX_UPDATE)
def update_mailbox(
    context: Context, address: Address, body: MailboxUpdate, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: service.update(uow, actor, address, body), dry_run=dry_run
    )


@router.delete(
    "/{address}",
    response_model=MailboxPublic | DryRunPlan,
    summary="Remove a mailbox: delivery and login stop now; restorable until `purge_after`",
)
@requires(Permission.MAILBOX_DELETE)
def remove_mailbox(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.remove(uow, actor, address), dry_run=dry_run)


@router.post(
    "/{address}/restore",
    response_model=MailboxPublic | DryRunPlan,
    summary="Undo a removal within the grace period",
)
# Whoever may remove a mailbox may take that back: the service checks the same permission.
@requires(Permission.MAILBOX_DELETE)
def restore_mailbox(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    return context.mutate(lambda uow, actor: service.restore(uow, actor, address), dry_run=dry_run)


@router.post(
    "/{address}/password",
    response_model=PasswordChanged | DryRunPlan,
    summary="Set a mailbox's password, given or generated",
)
@requires(Permission.MAILBOX_PASSWORD)
def set_password(
    context: Context, address: Address, body: PasswordChoice, dry_run: DryRun = False
) -> Response:
    password, generated = body.chosen()

    def action(uow: UnitOfWork, actor: Actor) -> dict[str, Any]:
        mailbox = service.set_password(uow, actor, address, password, scheme=body.chosen_scheme())
        # What `mailbox passwd --json` prints.
        changed = {"address": mailbox.address, "password_scheme": mailbox.password_scheme}
        return shown_once(changed, password, generated)

    return context.mutate(action, dry_run=dry_run)


@router.get(
    "/{address}/vacation",
    response_model=VacationPublic,
    summary="A mailbox's auto-reply (disabled, fields null, when it never had one)",
)
@requires(Permission.VACATION_READ)
def show_vacation(context: Context, address: Address) -> JSONResponse:
    return context.respond(lambda uow, actor: vacation.get_vacation(uow, actor, address))


@router.put(
    "/{address}/vacation",
    response_model=VacationPublic | DryRunPlan,
    summary="Set and enable a mailbox's auto-reply, replacing any previous one",
)
@requires(Permission.VACATION_UPDATE)
def set_vacation(
    context: Context, address: Address, body: VacationBody, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: vacation.set_vacation(uow, actor, address, body.vacation()),
        dry_run=dry_run,
    )


@router.delete(
    "/{address}/vacation",
    response_model=VacationPublic | DryRunPlan,
    summary="Stop a mailbox's auto-reply; its text is kept",
)
@requires(Permission.VACATION_UPDATE)
def disable_vacation(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: vacation.disable_vacation(uow, actor, address), dry_run=dry_run
    )


@router.get(
    "/{address}/forward",
    response_model=ForwardPublic,
    summary="A mailbox's forwarding (disabled, no targets, when it never had any)",
)
@requires(Permission.FORWARD_READ)
def show_forward(context: Context, address: Address) -> JSONResponse:
    return context.respond(lambda uow, actor: forwarding.get_forward(uow, actor, address))


@router.put(
    "/{address}/forward",
    response_model=ForwardPublic | DryRunPlan,
    summary="Forward a mailbox's mail to exactly these targets",
)
@requires(Permission.FORWARD_UPDATE)
def set_forward(
    context: Context, address: Address, body: ForwardSet, dry_run: DryRun = False
) -> Response:
    return context.mutate(
        lambda uow, actor: forwarding.set_forward(uow, actor, address, body), dry_run=dry_run
    )


@router.delete(
    "/{address}/forward",
    response_model=ForwardPublic | DryRunPlan,
    summary="Stop forwarding; the targets are kept",
)
@requires(Permission.FORWARD_UPDATE)
def disable_forward(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    return context.mutate(
        lambda uow, actor: forwarding.disable_forward(uow, actor, address), dry_run=dry_run
    )


@router.post(
    "/{address}/sieve/apply",
    response_model=SieveApplied | DryRunPlan,
    summary="Upload the mailbox's Sieve script (vacation and forwarding) again",
)
# The service checks VACATION_UPDATE for the whole script, forwarding included.
@requires(Permission.VACATION_UPDATE)
def apply_sieve(context: Context, address: Address, dry_run: DryRun = False) -> Response:
    units: list[UnitOfWork] = []
    statuses: list[SieveStatus] = []

    def action(uow: UnitOfWork, actor: Actor) -> SieveStatus:
        units.append(uow)
        statuses.append(vacation.apply_script(uow, actor, address))
        return statuses[0]

    response = context.mutate(action, dry_run=dry_run)
    if dry_run:
        return response
    # Whether the upload worked is known only after the commit that mutate made.
    applied = SieveApplied(**statuses[0].model_dump(), applied=not units[0].follow_up_failures)
    # Keep what mutate said about the upload (its follow-up header); the body is new.
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("content-length", "content-type")
    }
    return JSONResponse(as_json(applied), status_code=response.status_code, headers=headers)
