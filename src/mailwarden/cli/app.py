"""The `mailwarden` command."""

from __future__ import annotations

from typing import Annotated

import typer

from mailwarden import __version__

from .lazy import Lazy, SubApp, SubCommand, lazy_group

# In the order `mailwarden --help` lists them; each module is imported when its command runs.
COMMANDS: dict[str, Lazy] = {
    "db": SubApp("db"),
    "domain": SubApp("domains"),
    "mailbox": SubApp("mailboxes"),
    "alias": SubApp("aliases"),
    "alias-domain": SubApp("alias_domains"),
    "admin": SubApp("admins"),
    "apikey": SubApp("apikeys"),
    "audit": SubApp("audit"),
    "vacation": SubApp("vacation"),
    "forward": SubApp("forward"),
    "maintenance": SubApp("maintenance"),
    "registration": SubApp("registrations"),
    "host": SubApp("hosts"),
    "queue": SubApp("queue"),
    "logs": SubApp("logs"),
    "health": SubCommand("health", "health", {"help": "@HEALTH_HELP", "epilog": "@HEALTH_EPILOG"}),
    "monitor": SubCommand(
        "health", "monitor", {"help": "@MONITOR_HELP", "epilog": "@MONITOR_EPILOG"}
    ),
    "incidents": SubCommand(
        "health", "incidents", {"help": "@INCIDENTS_HELP", "epilog": "@INCIDENTS_EPILOG"}
    ),
    "config": SubApp("config"),
    "apply-config": SubCommand("apply", "apply_config", {"epilog": "@APPLY_EPILOG"}),
    "devstack": SubApp("devstack"),
    "serve": SubCommand("serve", "serve", {"epilog": "@SERVE_EPILOG"}),
}
# Where `root` leaves --as for the command's CliState (cli/context.py), without importing it.
AS_ADMIN_KEY = "mailwarden.as_admin"

app = typer.Typer(
    name="mailwarden",
    help="Administer the SQL database that Postfix and Dovecot read (domains, mailboxes, "
    "aliases, alias domains, administrators, the audit log) and operate the mail hosts that "
    "run them (queues, logs, health, configuration), locally or over SSH.\n\n"
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
    cls=lazy_group(COMMANDS),
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    ctx.meta[AS_ADMIN_KEY] = as_admin


def main() -> None:
    app()
