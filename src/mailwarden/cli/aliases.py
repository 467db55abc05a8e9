"""`mailwarden alias ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.aliases import service
from mailwarden.aliases.schemas import AliasCreate, AliasPublic, AliasUpdate
from mailwarden.kernel.addresses import display_address
from mailwarden.kernel.schemas import parse

from .context import mutate, read
from .options import Active, After, All, DryRun, Json, Limit
from .output import console, print_fields, print_json, print_plan, yes_no
from .paging import emit

app = typer.Typer(
    help="Aliases: addresses delivered to other addresses. `@domain` is a catch-all.",
    no_args_is_help=True,
)

Address = Annotated[
    str, typer.Argument(help="The alias address, or @domain for a catch-all of that domain.")
]


@app.command(
    "add",
    epilog="Examples:\n\n  mailwarden alias add sales@example.org alice@example.org bob@example.org"
    "\n\n  mailwarden alias add @example.org postmaster@example.org   (catch-all)",
)
def add(
    ctx: typer.Context,
    address: Address,
    targets: Annotated[list[str], typer.Argument(help="One or more delivery addresses.")],
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it disabled.")] = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add an alias with one or more targets."""

    def action(uow: Any, actor: Any) -> AliasPublic:
        data = parse(
            AliasCreate, {"address": address, "targets": list(targets), "active": not inactive}
        )
        return service.create(uow, actor, data)

    alias, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(alias)
    else:
        console.print(
            f"Added alias {display_address(alias.address)} -> {', '.join(alias.targets)}.",
            markup=False,
        )


@app.command("list", epilog="Examples:\n\n  mailwarden alias list --domain example.org --json")
def list_(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    search: Annotated[str | None, typer.Option(help="Substring of address or target.")] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive", help="Only active, or only inactive, ones.", show_default=False
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help=f"Order by one of: {', '.join(service.ALIAS_SORTS)} (- is descending; "
            "default address).",
            show_default=False,
        ),
    ] = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List aliases with their targets."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_aliases(
                uow,
                actor,
                domain=domain,
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
        columns=["ALIAS", "TARGETS", "ACTIVE"],
        row=lambda a: [
            display_address(a.address) + (" (catch-all)" if a.catch_all else ""),
            ", ".join(a.targets),
            yes_no(a.active),
        ],
        empty="No aliases.",
        cursor_option=f"--sort={sort} --after" if sort else "--after",
    )


@app.command("show")
def show(ctx: typer.Context, address: Address, json_output: Json = False) -> None:
    """Show one alias."""
    alias = read(ctx, lambda uow, actor: service.get(uow, actor, address))
    if json_output:
        print_json(alias)
        return
    print_fields(
        [
            ("alias", display_address(alias.address) + (" (catch-all)" if alias.catch_all else "")),
            ("active", yes_no(alias.active)),
            ("targets", ", ".join(alias.targets)),
        ]
    )


@app.command(
    "edit",
    epilog="Examples:\n\n  mailwarden alias edit sales@example.org --add carol@example.org "
    "--remove bob@example.org\n\n  mailwarden alias edit sales@example.org --set team@example.net",
)
def edit(
    ctx: typer.Context,
    address: Address,
    set_targets: Annotated[
        list[str] | None, typer.Option("--set", help="Replace all targets (repeatable).")
    ] = None,
    add_targets: Annotated[
        list[str] | None, typer.Option("--add", help="Add a target (repeatable).")
    ] = None,
    remove_targets: Annotated[
        list[str] | None, typer.Option("--remove", help="Remove a target (repeatable).")
    ] = None,
    active: Active = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Change an alias's targets or state."""

    def action(uow: Any, actor: Any) -> AliasPublic:
        values: dict[str, Any] = {
            "add_targets": list(add_targets or []),
            "remove_targets": list(remove_targets or []),
        }
        if set_targets:
            values["set_targets"] = list(set_targets)
        if active is not None:
            values["active"] = active
        return service.update(uow, actor, address, parse(AliasUpdate, values))

    alias, plan = mutate(ctx, dry_run, action)
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(alias)


@app.command("remove")
def remove(
    ctx: typer.Context, address: Address, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Remove an alias and all its targets."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, address))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
