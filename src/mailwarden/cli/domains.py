"""`mailwarden domain ...`"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from mailwarden.domains import service
from mailwarden.domains.schemas import DomainCreate, DomainPublic, DomainUpdate
from mailwarden.domains.service import DomainRemoval
from mailwarden.kernel.addresses import display_domain
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.sizes import parse_size

from .context import mutate, read
from .options import Active, After, All, DryRun, Json, Limit
from .output import console, print_fields, print_json, print_plan, size, when, yes_no
from .paging import emit

app = typer.Typer(
    help="Virtual domains: create, list, inspect, change limits and quotas, remove.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Domain name; Unicode (IDN) or xn-- form.")]
Size = Annotated[
    str | None,
    typer.Option(
        help="Size: 512M, 2G (base 1024) or bytes; 0 means unlimited.", show_default=False
    ),
]


BackupMx = Annotated[
    bool | None,
    typer.Option(
        "--backup-mx/--hosted",
        help="Relay the domain's mail to its real server (Postfix relay_domains) instead of "
        "hosting mailboxes here.",
        show_default=False,
    ),
]
Transport = Annotated[
    str | None,
    typer.Option(
        help="Postfix transport for the domain, e.g. smtp:[mx.example.net]:25; '' restores "
        "the default (Dovecot LMTP for a hosted domain, the MX lookup for a backup MX).",
        show_default=False,
    ),
]

Registration = Annotated[
    bool | None,
    typer.Option(
        "--registration/--no-registration",
        help="Let visitors ask for a mailbox here; each request waits for an admin's decision "
        "(`mailwarden registration`).",
        show_default=False,
    ),
]
RegistrationLimit = Annotated[
    int | None,
    typer.Option(
        "--registration-limit",
        help="Requests that may wait for a decision at once; 0 = unlimited (default 20).",
        show_default=False,
    ),
]


def _sizes(**values: str | None) -> dict[str, Any]:
    return {field: parse_size(value, field) for field, value in values.items() if value is not None}


@app.command(
    "add",
    epilog="Examples:\n\n"
    "  mailwarden domain add example.org --max-mailboxes 50 --quota 100G --mailbox-quota 2G\n\n"
    "  mailwarden domain add bücher.example --description 'Book shop' --dry-run\n\n"
    "  mailwarden domain add partner.example --backup-mx --transport 'smtp:[mx.partner.example]'",
)
def add(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str, typer.Option(help="Free text shown in lists.")] = "",
    max_mailboxes: Annotated[int, typer.Option(help="Mailbox limit; 0 = unlimited.")] = 0,
    max_aliases: Annotated[int, typer.Option(help="Alias limit; 0 = unlimited.")] = 0,
    mailbox_quota: Annotated[
        str, typer.Option(help="Default quota of new mailboxes; 0 = unlimited.")
    ] = "0",
    quota: Annotated[str, typer.Option(help="Total quota of the domain; 0 = unlimited.")] = "0",
    backup_mx: BackupMx = None,
    transport: Transport = None,
    registration: Registration = None,
    registration_limit: RegistrationLimit = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add a virtual domain."""

    def action(uow: Any, actor: Any) -> DomainPublic:
        values: dict[str, Any] = {
            "name": name,
            "description": description,
            "max_mailboxes": max_mailboxes,
            "max_aliases": max_aliases,
            "backup_mx": bool(backup_mx),
            "transport": transport or "",
            "registration_open": bool(registration),
            # None: the schema's default.
            "registration_pending_limit": registration_limit,
            **_sizes(default_mailbox_quota_bytes=mailbox_quota, quota_bytes=quota),
        }
        data = parse(DomainCreate, {k: v for k, v in values.items() if v is not None})
        return service.create(uow, actor, data)

    domain, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(domain)
    else:
        console.print(f"Added domain {display_domain(domain.name)}.", markup=False)


@app.command("list", epilog="Examples:\n\n  mailwarden domain list --search shop --json")
def list_(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Substring of the name.")] = None,
    active: Active = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help=f"Order by one of: {', '.join(service.DOMAIN_SORTS)} (- is descending; "
            "default name).",
            show_default=False,
        ),
    ] = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List domains, by name."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_domains(
                uow, actor, limit=limit, after=cursor, search=search, active=active, sort=sort
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["DOMAIN", "ACTIVE", "MAX MAILBOXES", "MAX ALIASES", "QUOTA", "DESCRIPTION"],
        row=lambda d: [
            display_domain(d.name),
            "removing" if d.removed_at else yes_no(d.active),
            d.max_mailboxes or "unlimited",
            d.max_aliases or "unlimited",
            size(d.quota_bytes),
            d.description,
        ],
        empty="No domains.",
        cursor_option=f"--sort={sort} --after" if sort else "--after",
    )


@app.command("show")
def show(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
    """Show one domain with its usage."""
    usage = read(ctx, lambda uow, actor: service.show(uow, actor, name))
    if json_output:
        print_json(usage.flat())
        return
    d = usage.domain
    print_fields(
        [
            (
                "domain",
                display_domain(d.name)
                + (f" ({d.name})" if d.name.startswith("xn--") or ".xn--" in d.name else ""),
            ),
            ("description", d.description),
            ("active", yes_no(d.active)),
            *(
                [("removal", f"pending since {when(d.removed_at)}: purged with its last mailbox")]
                if d.removed_at
                else []
            ),
            ("mailboxes", f"{usage.mailboxes} of {d.max_mailboxes or 'unlimited'}"),
            ("aliases", f"{usage.aliases} of {d.max_aliases or 'unlimited'}"),
            ("quota", f"{size(usage.allocated_quota_bytes)} allocated of {size(d.quota_bytes)}"),
            ("mailbox quota", f"{size(d.default_mailbox_quota_bytes)} by default"),
            ("routing", "relayed (backup MX)" if d.backup_mx else "hosted here"),
            ("transport", d.transport or "default (Dovecot LMTP)"),
            ("registration", _registration(d)),
            ("alias domains", ", ".join(usage.alias_domains) or "-"),
            ("created", when(d.created_at)),
            ("updated", when(d.updated_at)),
        ]
    )


def _registration(domain: DomainPublic) -> str:
    if not domain.registration_open:
        return "closed"
    waiting = domain.registration_pending_limit or "unlimited"
    return f"open (moderated; at most {waiting} requests waiting)"


@app.command(
    "edit",
    epilog="Examples:\n\n  mailwarden domain edit example.org --max-mailboxes 100 --dry-run\n\n"
    "  mailwarden domain edit example.org --inactive\n\n"
    "  mailwarden domain edit example.org --registration --registration-limit 50",
)
def edit(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    max_mailboxes: Annotated[int | None, typer.Option(help="Mailbox limit; 0 = unlimited.")] = None,
    max_aliases: Annotated[int | None, typer.Option(help="Alias limit; 0 = unlimited.")] = None,
    mailbox_quota: Size = None,
    quota: Size = None,
    active: Active = None,
    backup_mx: BackupMx = None,
    transport: Transport = None,
    registration: Registration = None,
    registration_limit: RegistrationLimit = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Change a domain's description, limits, quotas, registration or state."""

    def action(uow: Any, actor: Any) -> DomainPublic:
        values: dict[str, Any] = {
            "description": description,
            "max_mailboxes": max_mailboxes,
            "max_aliases": max_aliases,
            "active": active,
            "backup_mx": backup_mx,
            "transport": transport,
            "registration_open": registration,
            "registration_pending_limit": registration_limit,
            **_sizes(default_mailbox_quota_bytes=mailbox_quota, quota_bytes=quota),
        }
        data = parse(DomainUpdate, {k: v for k, v in values.items() if v is not None})
        return service.update(uow, actor, name, data)

    domain, plan = mutate(ctx, dry_run, action)
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(domain)


@app.command(
    "remove",
    epilog="An empty domain is deleted at once. A domain that still has mailboxes, aliases or "
    "alias domains is refused unless --cascade is given. With --cascade:\n\n"
    "- at once: its aliases and alias domains are deleted, the domain is deactivated (Postfix "
    "no longer accepts mail for it) and its mailboxes are removed as `mailwarden mailbox "
    "remove` does (no delivery, no login; the mail stays on disk);\n\n"
    "- after the grace period (MAILWARDEN_DELETION_GRACE_HOURS, default 48): `mailwarden "
    "maintenance purge` deletes each mailbox with its maildir (or archives it, see "
    "MAILWARDEN_REMOVED_MAIL_ACTION), and the domain itself with its last mailbox. Until then "
    "the domain name stays taken and its mailboxes cannot be restored.\n\n"
    "Examples:\n\n  mailwarden domain remove old.example --cascade --dry-run",
)
def remove(
    ctx: typer.Context,
    name: Name,
    cascade: Annotated[
        bool,
        typer.Option(
            help="Also remove what the domain holds: aliases and alias domains at once, "
            "mailboxes with their mail after the grace period (then the domain)."
        ),
    ] = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Remove a domain; with --cascade, everything in it."""
    removal, plan = mutate(
        ctx, dry_run, lambda uow, actor: service.remove(uow, actor, name, cascade=cascade)
    )
    if json_output:
        print_json(
            {
                "dry_run": dry_run,
                "plan": [change.as_dict() for change in plan],
                "removal": dataclasses.asdict(removal),
            }
        )
        return
    print_plan(plan, dry_run=dry_run, as_json=False)
    for line in _removal_lines(removal, dry_run):
        console.print(line, markup=False)


def _removal_lines(removal: DomainRemoval, dry_run: bool) -> list[str]:
    """What happened (or would happen) to the domain, now and at the purge."""
    name = display_domain(removal.name)
    taken = (
        f"{_count(removal.aliases, 'alias', 'aliases')} and "
        f"{_count(len(removal.alias_domains), 'alias domain', 'alias domains')}"
    )
    mailboxes = _count(removal.mailboxes_removed, "mailbox", "mailboxes")
    if removal.deleted:
        verb = "would be deleted" if dry_run else "deleted"
        return [f"Domain {name} {verb} at once, with {taken}."]
    purge_after = when(removal.purge_after)
    if dry_run:
        lines = [
            f"Domain {name} would be deactivated at once (Postfix would no longer accept its "
            f"mail), {taken} deleted, and {mailboxes} removed "
            "(no delivery, no login; the mail stays on disk)."
        ]
    else:
        lines = [
            f"Domain {name} is inactive now: Postfix no longer accepts its mail. Deleted "
            f"{taken}; removed {mailboxes} (no delivery, no login; "
            "the mail stays on disk)."
        ]
    if removal.mailboxes_pending:
        pending = _count(removal.mailboxes_pending, "other mailbox", "other mailboxes")
        lines.append(f"{pending} had been removed before and await the purge too.")
    lines.append(
        f"After {purge_after} UTC, `mailwarden maintenance purge` deletes the mailboxes with "
        "their mail, then the domain. Until then the name stays taken and the mailboxes "
        "cannot be restored."
    )
    return lines


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"
