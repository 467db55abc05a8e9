"""`mailwarden registration ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.kernel.addresses import display_address
from mailwarden.mailboxes.schemas import MailboxPublic
from mailwarden.registrations import service
from mailwarden.registrations.schemas import RegistrationPublic, RegistrationStatus

from .context import mutate, read
from .options import After, All, DryRun, Json, Limit
from .output import console, print_fields, print_json, print_plan, when
from .paging import emit

app = typer.Typer(
    help="Moderated registration: visitors ask for a mailbox in a domain whose registration is "
    "open (`mailwarden domain edit DOMAIN --registration`); an admin of the domain approves "
    "(the mailbox is created with the password the visitor chose) or rejects each request.",
    epilog="Examples:\n\n"
    "  mailwarden registration list --domain example.org\n\n"
    "  mailwarden registration approve 12 --dry-run\n\n"
    "  mailwarden registration reject 13 --reason 'not a member'",
    no_args_is_help=True,
)

RequestId = Annotated[int, typer.Argument(help="The request's id, as `list` shows it.")]
# Every status, for `--status all`.
_ALL = "all"


@app.command("list", epilog="Examples:\n\n  mailwarden registration list --status all --json")
def list_(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    status: Annotated[
        str,
        typer.Option(help=f"One of: {', '.join(RegistrationStatus)}, {_ALL}.", show_default=True),
    ] = RegistrationStatus.PENDING.value,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List registration requests, oldest first."""
    wanted = None if status == _ALL else status
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_requests(
                uow, actor, domain=domain, status=wanted, limit=limit, after=cursor
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["ID", "ADDRESS", "STATUS", "REQUESTED", "FROM", "CONTACT", "NAME"],
        row=lambda r: [
            r.id,
            display_address(r.address),
            r.status.value,
            when(r.created_at),
            r.client_address or "-",
            r.contact or "-",
            r.name,
        ],
        empty="No registration requests.",
    )


@app.command("show")
def show(ctx: typer.Context, request_id: RequestId, json_output: Json = False) -> None:
    """Show one registration request."""
    request = read(ctx, lambda uow, actor: service.get(uow, actor, request_id))
    if json_output:
        print_json(request)
        return
    print_fields(
        [
            ("id", request.id),
            ("address", display_address(request.address)),
            ("name", request.name),
            ("contact", request.contact or "-"),
            ("status", request.status.value),
            ("requested", f"{when(request.created_at)} from {request.client_address or '-'}"),
            *(
                [("decided", f"{when(request.decided_at)} by {request.decided_by}")]
                if request.decided_at
                else []
            ),
            *([("reason", request.reason)] if request.reason else []),
        ]
    )


@app.command("approve")
def approve(
    ctx: typer.Context, request_id: RequestId, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Approve a request: create its mailbox with the password the visitor chose."""

    def action(uow: Any, actor: Any) -> MailboxPublic:
        return service.approve(uow, actor, request_id)

    mailbox, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(mailbox)
    else:
        console.print(
            f"Approved request {request_id}: added mailbox {display_address(mailbox.address)}.",
            markup=False,
        )


@app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: RequestId,
    reason: Annotated[str, typer.Option(help="Why, for the record (at most 255 characters).")] = "",
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Reject a request; no mailbox is created."""

    def action(uow: Any, actor: Any) -> RegistrationPublic:
        return service.reject(uow, actor, request_id, reason)

    request, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(request)
    else:
        console.print(
            f"Rejected request {request_id} for {display_address(request.address)}.",
            markup=False,
        )
