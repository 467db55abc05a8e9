"""`mailwarden config`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Generate the Postfix and Dovecot configuration for this database.", no_args_is_help=True
)
