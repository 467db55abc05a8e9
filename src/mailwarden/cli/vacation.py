"""`mailwarden vacation`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Vacation auto-replies, applied as Sieve through ManageSieve.", no_args_is_help=True
)
