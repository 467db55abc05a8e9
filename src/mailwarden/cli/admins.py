"""`mailwarden admin ...`"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailwarden.admins import service
from mailwarden.admins.schemas import AdminCreate, AdminPublic, AdminUpdate
from mailwarden.kernel.actor import Role
from mailwarden.kernel.schemas import parse

from .context import mutate, obtain_password, read
from .options import Active, After, All, DryRun, Json, Limit, PasswordStdin, RandomPassword
from .output import console, print_fields, print_json, print_plan, when, yes_no
from .paging import emit

app = typer.Typer(
    help="Administrators of the console, the API and the CLI's --as.", no_args_is_help=True
)

User = Annotated[str, typer.Argument(help="The admin's username.")]


@app.command(
    "add",
    epilog="Examples:\n\n  mailwarden admin add root --role superadmin --password-stdin\n\n"
    "  mailwarden admin add carol --role domain-admin --domain example.org "
    "--domain example.net --random-password",
)
def add(
    ctx: typer.Context,
    username: User,
    role: Annotated[Role, typer.Option(help="superadmin or domain-admin.", case_sensitive=False)],
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="A managed domain (repeatable).")
    ] = None,
    password_stdin: PasswordStdin = False,
    random_password: RandomPassword = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add an administrator."""
    password, generated = obtain_password(password_stdin, random_password)

    def action(uow: Any, actor: Any) -> AdminPublic:
        data = parse(
            AdminCreate, {"username": username, "role": role, "domains": list(domain or [])}
        )
        return service.create(uow, actor, data, password=password)

    admin, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(admin.model_dump(mode="json") | ({"password": password} if generated else {}))
    else:
        console.print(f"Added {admin.role.value} {admin.username}.", markup=False)
        if generated:
            console.print(f"Password for {admin.username} (shown once): {password}", markup=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Substring of the username.")] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive", help="Only active, or only inactive, ones.", show_default=False
        ),
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option(help="Only this role.", case_sensitive=False, show_default=False),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help=f"Order by one of: {', '.join(service.ADMIN_SORTS)} (- is descending; "
            "default username).",
            show_default=False,
        ),
    ] = None,
    limit: Limit = 100,
    after: After = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List administrators."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_admins(
                uow,
                actor,
                search=search,
                active=active,
                role=role,
                limit=limit,
                after=cursor,
                sort=sort,
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["USERNAME", "ROLE", "DOMAINS", "ACTIVE"],
        row=lambda a: [a.username, a.role.value, ", ".join(a.domains) or "-", yes_no(a.active)],
        empty="No administrators.",
        cursor_option=f"--sort={sort} --after" if sort else "--after",
    )


@app.command("show")
def show(ctx: typer.Context, username: User, json_output: Json = False) -> None:
    """Show one administrator."""
    admin = read(ctx, lambda uow, actor: service.get(uow, actor, username))
    if json_output:
        print_json(admin)
        return
    print_fields(
        [
            ("username", admin.username),
            ("role", admin.role.value),
            ("domains", ", ".join(admin.domains) or "-"),
            ("active", yes_no(admin.active)),
            ("created", when(admin.created_at)),
        ]
    )


@app.command(
    "edit",
    epilog="Examples:\n\n  mailwarden admin edit carol --add-domain example.com "
    "--remove-domain example.net",
)
def edit(
    ctx: typer.Context,
    username: User,
    role: Annotated[
        Role | None, typer.Option(help="New role.", case_sensitive=False, show_default=False)
    ] = None,
    add_domain: Annotated[
        list[str] | None, typer.Option("--add-domain", help="Add a managed domain (repeatable).")
    ] = None,
    remove_domain: Annotated[
        list[str] | None,
        typer.Option("--remove-domain", help="Drop a managed domain (repeatable)."),
    ] = None,
    active: Active = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Change an administrator's role, domains or state."""

    def action(uow: Any, actor: Any) -> AdminPublic:
        values: dict[str, Any] = {
            "add_domains": list(add_domain or []),
            "remove_domains": list(remove_domain or []),
        }
        if role is not None:
            values["role"] = role
        if active is not None:
            values["active"] = active
        return service.update(uow, actor, username, parse(AdminUpdate, values))

    admin, plan = mutate(ctx, dry_run, action)
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(admin)


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    username: User,
    password_stdin: PasswordStdin = False,
    random_password: RandomPassword = False,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Set an administrator's password."""
    password, generated = obtain_password(password_stdin, random_password)
    admin, plan = mutate(
        ctx, dry_run, lambda uow, actor: service.set_password(uow, actor, username, password)
    )
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json({"username": admin.username} | ({"password": password} if generated else {}))
    else:
        console.print(f"Password of {admin.username} changed.", markup=False)
        if generated:
            console.print(f"Password for {admin.username} (shown once): {password}", markup=False)


@app.command("remove")
def remove(
    ctx: typer.Context, username: User, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Remove an administrator."""
    _, plan = mutate(ctx, dry_run, lambda uow, actor: service.remove(uow, actor, username))
    print_plan(plan, dry_run=dry_run, as_json=json_output)
