"""`mailwarden mailbox ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.padding import Padding
from rich.text import Text

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

# Width of the usage bar under `mailbox show`'s usage line, and where it turns to a warning.
_BAR_WIDTH = 30
_BAR_WARN = 0.8
_BAR_FULL = 0.95

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


def _used(value: int) -> str:
    # format_size(0) reads "unlimited", which is right for a quota and wrong for usage.
    return "0 B" if value == 0 else size(value)


def _share(used: int, quota: int) -> str:
    return f"{used / quota * 100:.1f}%"


def _usage_cell(mailbox: MailboxPublic) -> str:
    """Short enough for a table column: `1.2 MiB (0.1%)`, or `-` before Dovecot reports."""
    if mailbox.quota_used_bytes is None:
        return "-"
    used = _used(mailbox.quota_used_bytes)
    if not mailbox.quota_bytes:
        return used
    return f"{used} ({_share(mailbox.quota_used_bytes, mailbox.quota_bytes)})"


def _usage_bar(used: int, quota: int) -> Text:
    """`███░░░░░…`: distinct characters for used and free, so it reads without colour too."""
    fraction = min(used / quota, 1.0)
    filled = round(fraction * _BAR_WIDTH)
    if used and not filled:
        filled = 1  # something is stored: never draw it as empty
    style = "red" if fraction >= _BAR_FULL else "yellow" if fraction >= _BAR_WARN else "green"
    bar = Text("█" * filled, style=style)
    bar.append("░" * (_BAR_WIDTH - filled), style="dim")
    return bar


def _usage_line(mailbox: MailboxPublic) -> str:
    """`1.2 MiB of 2 GiB (0.1%), 42 messages`."""
    if mailbox.quota_used_bytes is None:
        return "not reported by Dovecot yet"
    used = _used(mailbox.quota_used_bytes)
    if mailbox.quota_bytes:
        text = f"{used} of {size(mailbox.quota_bytes)} "
        text += f"({_share(mailbox.quota_used_bytes, mailbox.quota_bytes)})"
    else:
        text = f"{used} (no quota)"
    messages = mailbox.quota_used_messages or 0
    return text + f", {messages} message{'' if messages == 1 else 's'}"


@app.command(
    "list",
    epilog="Examples:\n\n  mailwarden mailbox list --domain example.org --search ali\n\n"
    "  mailwarden mailbox list --removed\n\n"
    "  mailwarden mailbox list --all --json > mailboxes.json",
)
def list_(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    search: Annotated[str | None, typer.Option(help="Substring of address or name.")] = None,
    active: Active = None,
    removed: Annotated[
        bool,
        typer.Option(
            "--removed",
            help="List only removed mailboxes (restorable until their purge time).",
        ),
    ] = False,
    sort: Annotated[
        str | None,
        typer.Option(
            help=f"Order by one of: {', '.join(service.MAILBOX_SORTS)} (- is descending; "
            "default address).",
            show_default=False,
        ),
    ] = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List mailboxes, by address, with their usage as Dovecot reports it."""
    # The name is free text: last, so it is the column that gives way on a narrow terminal.
    # Removed mailboxes trade the quota and state for when they may be purged.
    if removed:
        columns = ["ADDRESS", "USED", "PURGE AFTER (UTC)", "NAME"]
    else:
        columns = ["ADDRESS", "QUOTA", "USED", "ACTIVE", "NAME"]

    def row(m: MailboxPublic) -> list[str]:
        address = display_address(m.address)
        if removed:
            purge_after = when(m.purge_after) + (" (purge failed)" if m.purge_error else "")
            return [address, _usage_cell(m), purge_after, m.name]
        return [address, size(m.quota_bytes), _usage_cell(m), yes_no(m.active), m.name]

    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_mailboxes(
                uow,
                actor,
                domain=domain,
                search=search,
                active=active,
                removed=removed,
                limit=limit,
                after=cursor,
                sort=sort,
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=columns,
        row=row,
        empty="No removed mailboxes." if removed else "No mailboxes.",
        cursor_option=f"--sort={sort} --after" if sort else "--after",
    )


@app.command("show")
def show(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Show one mailbox, its usage as Dovecot counts it, and whether it is removed."""
    mailbox = read(ctx, lambda uow, actor: service.get(uow, actor, address))
    if json_output:
        print_json(mailbox)
        return
    removal: list[tuple[str, str]] = []
    if mailbox.removed_at is not None:
        removal = [
            ("removed", f"{when(mailbox.removed_at)} UTC (no delivery, no login)"),
            ("purge after", f"{when(mailbox.purge_after)} UTC (restorable until then)"),
        ]
        if mailbox.purge_error:
            removal.append(
                ("purge failed", f"{mailbox.purge_error} (kept; the next purge tries again)")
            )
    head: list[tuple[str, str]] = [
        ("address", display_address(mailbox.address)),
        ("name", mailbox.name),
        *removal,
        ("active", yes_no(mailbox.active)),
        ("quota", size(mailbox.quota_bytes)),
        ("usage", _usage_line(mailbox)),
    ]
    tail: list[tuple[str, str]] = [
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
    # Names padded to one width, so both halves line up around the bar between them.
    width = max(len(name) for name, _ in head + tail)
    print_fields([(name.rjust(width), value) for name, value in head])
    if mailbox.quota_used_bytes is not None and mailbox.quota_bytes:
        bar = _usage_bar(mailbox.quota_used_bytes, mailbox.quota_bytes)
        console.print(Padding(bar, (0, 0, 0, width + 2)))
    print_fields([(name.rjust(width), value) for name, value in tail])


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


def _removal_note(mailbox: MailboxPublic) -> str:
    address = display_address(mailbox.address)
    return (
        f"Removed mailbox {address}: delivery and login stopped now. Its mail is kept until "
        f"{when(mailbox.purge_after)} UTC; until then `mailwarden mailbox restore "
        f"{mailbox.address}` brings it back. After that, `mailwarden maintenance purge` "
        "deletes the mailbox and its mail."
    )


@app.command(
    "remove",
    epilog="Examples:\n\n  mailwarden mailbox remove alice@example.org --dry-run\n\n"
    "  mailwarden mailbox remove alice@example.org",
)
def remove(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Remove a mailbox: delivery and login stop at once; the mail is deleted later.

    The mailbox stays restorable for the grace period (MAILWARDEN_DELETION_GRACE_HOURS,
    default 48); `mailwarden maintenance purge` deletes it and its maildir after that.
    """
    mailbox, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, address))
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(mailbox)
    else:
        print_plan(plan, dry_run=False, as_json=False)
        console.print(_removal_note(mailbox), markup=False)


@app.command(
    "restore",
    epilog="Examples:\n\n  mailwarden mailbox list --removed\n\n"
    "  mailwarden mailbox restore alice@example.org --dry-run\n\n"
    "  mailwarden mailbox restore alice@example.org",
)
def restore(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Undo a removal within the grace period: delivery and login work again.

    Refused once the grace period has ended, and when the domain's mailbox or quota limits no
    longer leave room for the mailbox.
    """
    mailbox, plan = mutate(ctx, dry_run, lambda uow, actor: service.restore(uow, actor, address))
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(mailbox)
    else:
        console.print(
            f"Restored mailbox {display_address(mailbox.address)}: delivery and login work again.",
            markup=False,
        )


# Imported last: the app-password commands live in their own module under `mailbox`.
from . import apppasswords  # noqa: E402

app.add_typer(apppasswords.app, name="app-password")
