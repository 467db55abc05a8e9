"""Option types shared by every command, so flags read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show the plan of what would change; change nothing.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of a table.")]
Limit = Annotated[
    int, typer.Option("--limit", min=1, max=500, help="Rows per page (1-500).", show_default=True)
]
After = Annotated[str | None, typer.Option("--after", help="Continue the listing after this key.")]
All = Annotated[bool, typer.Option("--all", help="Walk every page, one page at a time.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password as one line from standard input (prompted on a terminal).",
    ),
]
RandomPassword = Annotated[
    bool,
    typer.Option("--random-password", help="Generate a password and print it once."),
]
Active = Annotated[
    bool | None,
    typer.Option("--active/--inactive", help="Enable or disable.", show_default=False),
]
