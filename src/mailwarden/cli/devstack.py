"""`mailwarden devstack`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="A private Postfix + Dovecot on loopback, for trying mailwarden with real mail.",
    no_args_is_help=True,
)
