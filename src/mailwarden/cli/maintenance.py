"""`mailwarden maintenance`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Periodic housekeeping: purge removed mailboxes.", no_args_is_help=True)
