"""Commands whose modules are imported only when they run (or when help lists them).

Every command module pulls in its services, SQLAlchemy, Alembic, and some FastAPI; importing all
of them costs about a second and 80 MB before any work starts. A group built with
`lazy_group(...)` knows its subcommands by name and imports a module the first time one of its
commands is looked up, so `mailwarden logs summary` or `mailwarden --version` pay only for what
they use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import typer
from typer._click import Command, Context  # Typer's own Click, which its groups use
from typer.core import TyperGroup


@dataclass(frozen=True, slots=True)
class SubApp:
    """A Typer app in `mailwarden.cli.<module>`, attribute `app`."""

    module: str


@dataclass(frozen=True, slots=True)
class SubCommand:
    """A function in `mailwarden.cli.<module>` registered as one command; `options` are passed
    to `Typer.command` (help, epilog), each either a value or the name of a module attribute
    prefixed with `@`."""

    module: str
    function: str
    options: Mapping[str, str] = field(default_factory=dict)


Lazy = SubApp | SubCommand


def _load(name: str, entry: Lazy) -> Command:
    module = importlib.import_module(f"mailwarden.cli.{entry.module}")
    if isinstance(entry, SubApp):
        command: Command = typer.main.get_group(module.app)
    else:
        options: dict[str, Any] = {
            key: getattr(module, value[1:]) if value.startswith("@") else value
            for key, value in entry.options.items()
        }
        # The root command offers shell completion; a single command must not offer it again.
        single = typer.Typer(add_completion=False)
        single.command(name, **options)(getattr(module, entry.function))
        command = typer.main.get_command(single)
    command.name = name
    return command


def lazy_group(entries: Mapping[str, Lazy]) -> type[TyperGroup]:
    """A Typer group class that adds `entries` (in this order, after the group's own commands)
    and imports each one's module on first use."""

    class LazyGroup(TyperGroup):
        _loaded: dict[str, Command] = {}

        def list_commands(self, ctx: Context) -> list[str]:
            own = super().list_commands(ctx)
            return own + [name for name in entries if name not in own]

        def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
            if cmd_name in entries:
                if cmd_name not in self._loaded:
                    self._loaded[cmd_name] = _load(cmd_name, entries[cmd_name])
                return self._loaded[cmd_name]
            return super().get_command(ctx, cmd_name)

    return LazyGroup
