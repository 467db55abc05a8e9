"""The `mailwarden` command."""

from __future__ import annotations

from typing import Annotated

import typer

from mailwarden import __version__

from . import (
    admins,
    alias_domains,
    aliases,
    apikeys,
    apppasswords,
    audit,
    config,
    db,
    devstack,
    domains,
    forward,
    mailboxes,
    maintenance,
    registrations,
    serve,
    vacation,
)
from .context import state_of

app = typer.Typer(
    name="mailwarden",
    help="Administer the SQL database that Postfix and Dovecot read: domains, mailboxes, "
    "aliases, alias domains, administrators and the audit log.\n\n"
    "The database comes from MAILWARDEN_DATABASE_URL (an SQLAlchemy URL such as "
    "postgresql://mail@db/mail or mysql://mail@db/mail) or the TOML file named by "
    "MAILWARDEN_CONFIG; with neither, an SQLite file under ~/.local/share/mailwarden is used.\n\n"
    "Every change takes --dry-run (show the plan, change nothing) and is written to the audit "
    "log; every read takes --json. Exit status: 0 done, 1 refused (invalid input, not "
    "permitted, not found, conflict, limit), 2 usage error, 3 stored but a follow-up on a "
    "mail host (Sieve upload, maildir removal) failed.",
    epilog="Examples:\n\n"
    "  mailwarden db upgrade\n\n"
    "  mailwarden domain add example.org --quota 50G --mailbox-quota 2G\n\n"
    "  mailwarden mailbox add alice@example.org --random-password\n\n"
    "  mailwarden alias add info@example.org alice@example.org\n\n"
    "  mailwarden --as carol mailbox list --domain example.org",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(db.app, name="db")
app.add_typer(domains.app, name="domain")
app.add_typer(mailboxes.app, name="mailbox")
mailboxes.app.add_typer(apppasswords.app, name="app-password")
app.add_typer(aliases.app, name="alias")
app.add_typer(alias_domains.app, name="alias-domain")
app.add_typer(admins.app, name="admin")
app.add_typer(apikeys.app, name="apikey")
app.add_typer(audit.app, name="audit")
app.add_typer(vacation.app, name="vacation")
app.add_typer(forward.app, name="forward")
app.add_typer(maintenance.app, name="maintenance")
app.add_typer(registrations.app, name="registration")
app.add_typer(config.app, name="config")
app.add_typer(devstack.app, name="devstack")
app.command("serve", epilog=serve.SERVE_EPILOG)(serve.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailwarden {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    as_admin: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="ADMIN",
            help="Act with this admin's permissions (default: as the local superadmin).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state_of(ctx).as_admin = as_admin


def main() -> None:
    app()
