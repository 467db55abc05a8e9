"""`mailwarden apikey ...`"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer

from mailwarden.apikeys import service
from mailwarden.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from mailwarden.kernel.schemas import parse

from .context import mutate, read
from .options import All, DryRun, Json, Limit
from .output import console, print_fields, print_json, print_plan, when
from .paging import emit

app = typer.Typer(
    help="API keys: the bearer credentials of the REST API (`mailwarden serve`).\n\n"
    "A key acts as its admin, never with more: narrowed with --domain it acts as a domain admin "
    "of those domains only, and with --read-only it may only read. The key itself (the token, "
    "mw_<id>_<secret>) is printed once, by `create`; only a hash of it is stored. Listings, "
    "the audit log and the server's logs name a key by its id.\n\n"
    "Every admin manages its own keys (with --as); superadmins manage everyone's.",
    epilog="Examples:\n\n"
    "  mailwarden apikey create --admin alice --name deploy --expires 2027-06-30\n\n"
    "  mailwarden apikey list --admin alice\n\n"
    "  mailwarden apikey revoke 3f9a0c12b4d7",
    no_args_is_help=True,
)

KeyId = Annotated[str, typer.Argument(help="The key's id (12 hex digits, as `list` shows).")]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _expiry(value: str | None) -> datetime | None:
    """YYYY-MM-DD: valid through that day (UTC); otherwise an ISO datetime with its offset."""
    if value is None:
        return None
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise typer.BadParameter(
            "give a date (YYYY-MM-DD) or an ISO datetime with its offset"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            "give the datetime with its UTC offset (e.g. 2027-06-30T18:00:00+02:00 or ...Z)"
        )
    return moment


def _mode(key: ApiKeyPublic) -> str:
    return "read-only" if key.read_only else "read-write"


def _reach(key: ApiKeyPublic) -> str:
    if not key.narrowed:
        return "not narrowed: those its admin manages"
    return ", ".join(key.domains) or "none (its domains are gone)"


def _state(key: ApiKeyPublic) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.active else "expired"


@app.command(
    "create",
    epilog="DATE is YYYY-MM-DD (the key works through that day, UTC) or a full ISO 8601 "
    "datetime with its offset.\n\n"
    "Examples:\n\n"
    "  mailwarden apikey create --admin root --name monitoring --read-only\n\n"
    "  mailwarden apikey create --admin alice --domain a.example --expires 2027-06-30\n\n"
    "  mailwarden --as alice apikey create --name ci --expires 2027-01-01T00:00:00Z --json",
)
def create(
    ctx: typer.Context,
    admin: Annotated[
        str | None,
        typer.Option(
            "--admin",
            metavar="USER",
            help="The admin the key acts as (default with --as: that admin).",
            show_default=False,
        ),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="Narrow the key to this domain (repeatable); it then acts as a domain admin of "
            "the listed domains only.",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="The key may only read, never change anything.")
    ] = False,
    expires: Annotated[
        datetime | None,
        typer.Option(
            "--expires",
            metavar="DATE",
            parser=_expiry,
            help="Last day (UTC) the key works, or an ISO datetime with offset; default: never.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="What the key is for, shown in listings.")
    ] = "",
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Create an API key and print it, this once."""

    def action(uow: Any, actor: Any) -> ApiKeyCreated:
        values: dict[str, Any] = {
            "admin": admin,
            "name": name,
            "domains": list(domain or []),
            "read_only": read_only,
            "expires_at": expires,
        }
        return service.create(uow, actor, parse(ApiKeyCreate, values))

    key, plan = mutate(ctx, dry_run, action)
    if dry_run:
        print_plan(plan, dry_run=True, as_json=json_output)
    elif json_output:
        print_json(key)
    else:
        console.print(f"Created API key {key.id} for {key.admin}.", markup=False)
        console.print(key.key, markup=False)
        console.print(
            "Store this key now: it is shown only this once, and only its hash is kept.",
            markup=False,
        )


@app.command(
    "list",
    epilog="Examples:\n\n  mailwarden apikey list\n\n"
    "  mailwarden apikey list --admin alice --all-states --json",
)
def list_(
    ctx: typer.Context,
    admin: Annotated[
        str | None, typer.Option("--admin", metavar="USER", help="Only this admin's keys.")
    ] = None,
    all_states: Annotated[
        bool, typer.Option("--all-states", help="Also revoked and expired keys.")
    ] = False,
    limit: Limit = 100,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue the listing after this key id.")
    ] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    """List API keys by id (never the keys themselves): your own, or as a superadmin everyone's."""
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_keys(
                uow, actor, admin=admin, include_inactive=all_states, limit=limit, after=cursor
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["ID", "ADMIN", "STATE", "MODE", "DOMAINS", "EXPIRES", "LAST USED", "NAME"],
        row=lambda k: [
            k.id,
            k.admin,
            _state(k),
            _mode(k),
            ", ".join(k.domains) if k.narrowed else "-",
            when(k.expires_at),
            when(k.last_used_at),
            k.name,
        ],
        empty="No API keys.",
    )


@app.command("show", epilog="Examples:\n\n  mailwarden apikey show 3f9a0c12b4d7 --json")
def show(ctx: typer.Context, key_id: KeyId, json_output: Json = False) -> None:
    """Show one API key (never the key itself)."""
    key = read(ctx, lambda uow, actor: service.get(uow, actor, key_id))
    if json_output:
        print_json(key)
        return
    print_fields(
        [
            ("id", key.id),
            ("admin", key.admin),
            ("name", key.name or "-"),
            ("state", _state(key)),
            ("mode", _mode(key)),
            ("domains", _reach(key)),
            ("created", f"{when(key.created_at)} by {key.created_by}"),
            ("expires", when(key.expires_at) if key.expires_at else "never"),
            ("revoked", when(key.revoked_at)),
            ("last used", when(key.last_used_at)),
            ("from", key.last_used_from or "-"),
        ]
    )


@app.command(
    "revoke",
    epilog="A revoked key is refused at once and cannot be restored; create a new one.\n\n"
    "Examples:\n\n  mailwarden apikey revoke 3f9a0c12b4d7 --dry-run\n\n"
    "  mailwarden --as alice apikey revoke 3f9a0c12b4d7 --json",
)
def revoke(
    ctx: typer.Context, key_id: KeyId, dry_run: DryRun = False, json_output: Json = False
) -> None:
    """Revoke an API key for good."""
    key, plan = mutate(ctx, dry_run, lambda uow, actor: service.revoke(uow, actor, key_id))
    if dry_run or not json_output:
        print_plan(plan, dry_run=dry_run, as_json=json_output)
    else:
        print_json(key)
