"""Usage errors (exit 2) and help: argument parsing, before any database is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from mailwarden import __version__
from mailwarden.cli.app import app
from tests.functional.cli_helpers import run


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        # Groups (Click's, vendored by Typer) list their commands, loading the lazy ones
        # (cli/lazy.py) on lookup; plain commands have none.
        if not hasattr(command, "list_commands"):
            return
        context = typer.Context(command)
        for name in command.list_commands(context):
            paths.append((*prefix, name))
            walk(command.get_command(context, name), (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


COMMAND_PATHS = _command_paths()


@pytest.fixture
def unused_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'never-created.db'}"


@pytest.fixture(autouse=True)
def _database_untouched(tmp_path: Path) -> Iterator[None]:
    yield
    assert not (tmp_path / "never-created.db").exists(), "a usage error reached the database"


def test_every_command_is_reachable() -> None:
    names = {" ".join(path) for path in COMMAND_PATHS}
    for expected in [
        "db upgrade",
        "db status",
        "domain add",
        "domain list",
        "domain show",
        "domain edit",
        "domain remove",
        "mailbox add",
        "mailbox list",
        "mailbox show",
        "mailbox edit",
        "mailbox passwd",
        "mailbox remove",
        "alias add",
        "alias list",
        "alias show",
        "alias edit",
        "alias remove",
        "alias-domain add",
        "alias-domain list",
        "alias-domain remove",
        "admin add",
        "admin list",
        "admin show",
        "admin edit",
        "admin passwd",
        "admin remove",
        "audit list",
    ]:
        assert expected in names


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "root")
def test_help_exits_0(unused_url: str, path: tuple[str, ...]) -> None:
    result = run(unused_url, *path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Usage: mailwarden" in result.stdout
    if not path or path[-1] == "add":
        assert "Examples" in result.stdout, f"no Examples section in `{' '.join(path)} --help`"
    # Shell completion is the root command's alone.
    assert ("--install-completion" in result.stdout) == (not path), " ".join(path)


def test_version(unused_url: str) -> None:
    result = run(unused_url, "--version")
    assert (result.exit_code, result.stdout.strip()) == (0, f"mailwarden {__version__}")


USAGE_ERRORS = [
    ((), None),
    (("frobnicate",), "No such command"),
    (("domain", "list", "--bogus"), "No such option"),
    (("--as",), "requires an argument"),
    (("domain", "add"), "Missing argument"),
    (("domain", "add", "x.example", "--max-mailboxes", "many"), "--max-mailboxes"),
    (("mailbox", "add"), "Missing argument"),
    (("mailbox", "add", "a@example.org"), "--password-stdin or --random-password"),
    (("mailbox", "add", "a@example.org", "--password-stdin", "--random-password"), "choose one"),
    (("mailbox", "passwd", "a@example.org"), "--password-stdin or --random-password"),
    (("mailbox", "passwd", "a@example.org", "--random-password", "--password-stdin"), "choose"),
    (("mailbox", "list", "--limit", "0"), "--limit"),
    (("mailbox", "list", "--limit", "501"), "--limit"),
    (("alias", "add", "info@example.org"), "Missing argument"),
    (("alias-domain", "add", "example.net"), "Missing argument"),
    (("admin", "add", "carol", "--password-stdin"), "--role"),
    (("admin", "add", "carol", "--role", "boss", "--password-stdin"), "--role"),
    (("admin", "add", "carol", "--role", "superadmin"), "--password-stdin or --random-password"),
    (("admin", "passwd", "carol", "--password-stdin", "--random-password"), "choose one"),
    (("audit", "list", "--limit", "abc"), "--limit"),
]


@pytest.mark.parametrize(
    ("args", "mentions"),
    USAGE_ERRORS,
    ids=[" ".join(args) or "no-args" for args, _ in USAGE_ERRORS],
)
def test_usage_errors_exit_2(unused_url: str, args: tuple[str, ...], mentions: str | None) -> None:
    result = run(unused_url, *args, input="a long enough password\n")
    assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{result.stdout}{result.stderr}"
    if mentions is not None:
        assert mentions in result.stderr
        assert result.stdout == ""
