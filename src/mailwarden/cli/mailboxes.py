"""`mailwarden mailbox ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.kernel.addresses import display_address
from mailwarden.kernel.passwords import Scheme, parse_scheme
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.sizes import parse_size
from mailwarden.mailboxes import service
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic, MailboxUpdate

from .context import mutate, obtain_password, read
from .options import Active, After, All, DryRun, Json, Limit, PasswordStdin, RandomPassword
from .output import console, print_fields, print_json, print_plan, size, when, yes_no
from .paging import emit

app = typer.Typer(
    help="Mailboxes: accounts that receive mail and log in to IMAP, POP3 and submission.",
    no_args_is_help=True,
)

Address = Annotated[str, typer.Argument(help="The mailbox address, e.g. alice@example.org.")]
SchemeOption = Annotated[
    str | None,
    typer.Option(
        "--scheme",
        help="Password scheme: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, ARGON2I, PBKDF2"
        " (default: the configured one).",
        show_default=False,
    ),
]


def _scheme(value: str | None) -> Scheme | None:
    return None if value is None else parse_scheme(value, "scheme")


def _announce_password(address: str, password: str) -> None:
    # Shown once, on stderr's sibling stream so it is not mixed into captured tables.
    console.print(f"Password for {address} (shown once): {password}", markup=False)


@app.command(
    "add",
    epilog="Examples:\n\n"
    "  printf '%s\\n' \"$PW\" | mailwarden mailbox add alice@example.org --name 'Alice' "
    "--quota 2G --password-stdin\n\n"
    "  mailwarden mailbox add bob@example.org --random-password --json",
)
def add(
    ctx: typer.Context,
    address: Address,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    quota: Annotated[
        str | None,
        typer.Option(help="512M, 2G or bytes; 0 = unlimited (default: the domain's default)."),
    ] = None,
    scheme: SchemeOption = None,
    password_stdin: PasswordStdin = False,
    random_password: RandomPassword = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it disabled.")] = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add a mailbox. The password never goes on the command line."""
    password, generated = obtain_password(password_stdin, random_password)

    def action(uow: Any, actor: Any) -> MailboxPublic:
        data = parse(
            MailboxCreate,
            {
                "address": address,
                "name": name,
                "active": not inactive,
                **({"quota_bytes": parse_size(quota, "quota")} if quota is not None else {}),
            },
        )
        return service.create(uow, actor, data, password=password, scheme=_scheme(scheme))

    mailbox, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(mailbox.model_dump(mode="json") | ({"password": password} if generated else {}))
    else:
        console.print(f"Added mailbox {display_address(mailbox.address)}.", markup=False)
        if generated:
            _announce_password(mailbox.address, password)


@app.command(
    "list",
    epilog="Examples:\n\n  mailwarden mailbox list --domain example.org --search ali\n\n"
    "  mailwarden mailbox list --all --json > mailboxes.json",
)
def list_(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    search: Annotated[str | None, typer.Option(help="Substring of address or name.")] = None,
    active: Active = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List mailboxes, by address."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_mailboxes(
                uow, actor, domain=domain, search=search, active=active, limit=limit, after=cursor
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["ADDRESS", "NAME", "QUOTA", "ACTIVE"],
        row=lambda m: [display_address(m.address), m.name, size(m.quota_bytes), yes_no(m.active)],
        empty="No mailboxes.",
    )


@app.command("show")
def show(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Show one mailbox."""
    mailbox = read(ctx, lambda uow, actor: service.get(uow, actor, address))
    if json_output:
        print_json(mailbox)
        return
    print_fields(
        [
            ("address", display_address(mailbox.address)),
            ("name", mailbox.name),
            ("active", yes_no(mailbox.active)),
            ("quota", size(mailbox.quota_bytes)),
            ("maildir", mailbox.maildir),
            (
                "password",
                f"{mailbox.password_scheme}, set {when(mailbox.password_changed_at)}"
                + (
                    " (not the configured scheme: set a new password to upgrade it)"
                    if mailbox.password_needs_upgrade
                    else ""
                ),
            ),
            ("created", when(mailbox.created_at)),
            ("updated", when(mailbox.updated_at)),
        ]
    )


@app.command(
    "edit", epilog="Examples:\n\n  mailwarden mailbox edit alice@example.org --quota 4G --dry-run"
)
def edit(
    ctx: typer.Context,
    address: Address,
    name: Annotated[str | None, typer.Option(help="New display name.")] = None,
    quota: Annotated[str | None, typer.Option(help="512M, 2G or bytes; 0 = unlimited.")] = None,
    active: Active = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Change a mailbox's name, quota or state."""

    def action(uow: Any, actor: Any) -> MailboxPublic:
        values: dict[str, Any] = {"name": name, "active": active}
        if quota is not None:
            values["quota_bytes"] = parse_size(quota, "quota")
        data = parse(MailboxUpdate, {k: v for k, v in values.items() if v is not None})
        return service.update(uow, actor, address, data)

    mailbox, plan = mutate(ctx, dry_run, action)
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(mailbox)


@app.command(
    "passwd",
    epilog="Examples:\n\n  mailwarden mailbox passwd alice@example.org --password-stdin < pw.txt"
    "\n\n  mailwarden mailbox passwd alice@example.org --random-password --scheme ARGON2ID",
)
def passwd(
    ctx: typer.Context,
    address: Address,
    scheme: SchemeOption = None,
    password_stdin: PasswordStdin = False,
    random_password: RandomPassword = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Set a mailbox's password."""
    password, generated = obtain_password(password_stdin, random_password)
    mailbox, plan = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.set_password(
            uow, actor, address, password, scheme=_scheme(scheme)
        ),
    )
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(
            {"address": mailbox.address, "password_scheme": mailbox.password_scheme}
            | ({"password": password} if generated else {})
        )
    else:
        console.print(f"Password of {display_address(mailbox.address)} changed.", markup=False)
        if generated:
            _announce_password(mailbox.address, password)


@app.command("remove")
def remove(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Remove a mailbox."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, address))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
