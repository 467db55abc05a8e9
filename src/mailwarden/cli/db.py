"""`mailwarden db ...`"""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mailwarden.db.migrate import current_revision, head_revision, upgrade

from .context import state_of
from .exits import fail
from .options import Json
from .output import console, print_json

app = typer.Typer(help="The mail database: create and upgrade its schema.", no_args_is_help=True)


def _where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command("upgrade", epilog="Run it after installing or upgrading mailwarden; it is idempotent.")
def upgrade_(ctx: typer.Context) -> None:
    """Create the schema, or bring it to this version's."""
    state = state_of(ctx)
    try:
        before = current_revision(state.engine)
        upgrade(state.engine)
    except DBAPIError as exc:
        fail(f"database: {str(exc.orig).strip().splitlines()[0] if exc.orig else exc}")
    head = head_revision()
    where = _where(state.settings.effective_database_url)
    if before == head:
        console.print(f"Schema of {where} is current ({head}).", markup=False)
    else:
        console.print(f"Upgraded {where} from {before or 'empty'} to {head}.", markup=False)


@app.command("status")
def status(ctx: typer.Context, json_output: Json = False) -> None:
    """Show which database is used and whether its schema is current."""
    state = state_of(ctx)
    try:
        current = current_revision(state.engine)
    except DBAPIError as exc:
        fail(f"database: {str(exc.orig).strip().splitlines()[0] if exc.orig else exc}")
    head = head_revision()
    info = {
        "database": _where(state.settings.effective_database_url),
        "revision": current,
        "head": head,
        "current": current == head,
    }
    if json_output:
        print_json(info)
    else:
        state_text = "current" if current == head else "needs `mailwarden db upgrade`"
        console.print(
            f"{info['database']}: schema {current or 'empty'} ({state_text})", markup=False
        )
