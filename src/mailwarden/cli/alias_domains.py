"""`mailwarden alias-domain ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.alias_domains import service
from mailwarden.alias_domains.schemas import AliasDomainCreate, AliasDomainPublic
from mailwarden.kernel.addresses import display_domain
from mailwarden.kernel.schemas import parse

from .context import mutate, read
from .options import After, All, DryRun, Json, Limit
from .output import console, print_json, print_plan, yes_no
from .paging import emit

app = typer.Typer(
    help="Alias domains: every address of one domain delivered to the same name in another.",
    no_args_is_help=True,
)


@app.command(
    "add",
    epilog="Examples:\n\n  mailwarden alias-domain add example.net example.org   "
    "(mail to anyone@example.net goes to anyone@example.org)\n\n"
    "  mailwarden alias-domain add example.com example.org --dry-run",
)
def add(
    ctx: typer.Context,
    alias_domain: Annotated[str, typer.Argument(help="The new domain name that aliases.")],
    target_domain: Annotated[str, typer.Argument(help="An existing domain that receives.")],
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add an alias domain."""

    def action(uow: Any, actor: Any) -> AliasDomainPublic:
        data = parse(
            AliasDomainCreate, {"alias_domain": alias_domain, "target_domain": target_domain}
        )
        return service.create(uow, actor, data)

    created, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(created)
    else:
        console.print(
            f"Added alias domain {display_domain(created.alias_domain)} -> "
            f"{display_domain(created.target_domain)}.",
            markup=False,
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target", help="Only for this domain.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Substring of the alias domain or its target domain.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive", help="Only active, or only inactive, ones.", show_default=False
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help=f"Order by one of: {', '.join(service.ALIAS_DOMAIN_SORTS)} (- is descending; "
            "default alias_domain).",
            show_default=False,
        ),
    ] = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List alias domains."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_alias_domains(
                uow,
                actor,
                target_domain=target,
                search=search,
                active=active,
                limit=limit,
                after=cursor,
                sort=sort,
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["ALIAS DOMAIN", "TARGET DOMAIN", "ACTIVE"],
        row=lambda a: [
            display_domain(a.alias_domain),
            display_domain(a.target_domain),
            yes_no(a.active),
        ],
        empty="No alias domains.",
        cursor_option=f"--sort={sort} --after" if sort else "--after",
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    alias_domain: Annotated[str, typer.Argument(help="The alias domain to remove.")],
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Remove an alias domain."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, alias_domain))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
