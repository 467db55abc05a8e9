"""`mailwarden forward`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Forward a mailbox's mail, applied as Sieve through ManageSieve.", no_args_is_help=True
)
