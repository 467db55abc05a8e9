"""`mailwarden mailbox app-password ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from mailwarden.apppasswords import service
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.kernel.schemas import parse

from .context import mutate, read
from .options import All, DryRun, Json, Limit
from .output import console, print_json, print_plan, when
from .paging import emit

app = typer.Typer(
    help="App passwords: one password per mail client (phone, laptop), accepted for IMAP, "
    "POP3 and SMTP submission beside the mailbox's own password, and revoked one by one.\n\n"
    "The password is printed once, by `add`; only its hash is stored. It starts with its id "
    "(8 characters), which listings and the audit log show. Revoking refuses it at once and "
    "ends the mailbox's open IMAP/POP3 sessions; other clients log in again by themselves.",
    epilog="Examples:\n\n"
    "  mailwarden mailbox app-password add alice@example.org --name phone\n\n"
    "  mailwarden mailbox app-password list alice@example.org --json\n\n"
    "  mailwarden mailbox app-password revoke alice@example.org phone",
    no_args_is_help=True,
)

Address = Annotated[str, typer.Argument(help="The mailbox address, e.g. alice@example.org.")]


@app.command(
    "add",
    epilog="Examples:\n\n"
    "  mailwarden mailbox app-password add alice@example.org --name 'laptop Thunderbird'\n\n"
    "  mailwarden mailbox app-password add alice@example.org --name phone --json",
)
def add(
    ctx: typer.Context,
    address: Address,
    name: Annotated[
        str,
        typer.Option("--name", help="What the password is for (unique per mailbox)."),
    ],
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Create an app password and print it, this once."""
    created, plan = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.create(
            uow, actor, address, parse(AppPasswordCreate, {"name": name})
        ),
    )
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(created)
    else:
        console.print(
            f"App password {created.id} ({created.name}) for {created.address}:", markup=False
        )
        console.print(created.password, markup=False)
        console.print("Enter it in the mail client now: it is shown only this once.", markup=False)


@app.command(
    "list",
    epilog="Examples:\n\n  mailwarden mailbox app-password list alice@example.org --all --json",
)
def list_(
    ctx: typer.Context,
    address: Address,
    limit: Limit = 100,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue the listing after this name.")
    ] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List the mailbox's app passwords by name (never the passwords themselves)."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_app_passwords(
                uow, actor, address, limit=limit, after=cursor
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["ID", "CREATED", "NAME"],
        row=lambda item: [item.id, when(item.created_at), item.name],
        empty="No app passwords.",
    )


@app.command(
    "revoke",
    epilog="NAME is the app password's name or, when no name matches, its id.\n\n"
    "Examples:\n\n  mailwarden mailbox app-password revoke alice@example.org phone --dry-run\n\n"
    "  mailwarden mailbox app-password revoke alice@example.org k3f9q2xa",
)
def revoke(
    ctx: typer.Context,
    address: Address,
    name: Annotated[str, typer.Argument(help="The app password's name (or its id).")],
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Revoke an app password for good: logins with it fail from now on."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.revoke(uow, actor, address, name))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
