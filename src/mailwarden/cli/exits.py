"""Exit statuses and the one-line refusal, for commands that need nothing else."""

from __future__ import annotations

from typing import NoReturn

import typer

EXIT_REFUSED = 1
# The change is stored, but work on a host that follows it (a Sieve upload, ...) failed.
EXIT_FOLLOW_UP_FAILED = 3


def fail(message: str) -> NoReturn:
    typer.echo(f"mailwarden: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)
