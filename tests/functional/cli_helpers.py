"""Run the `mailwarden` command in-process, the way a shell would, and read back what it did.

`run()` goes through `typer.testing.CliRunner` (its `isolation()`: stdin, stdout, stderr and the
environment of one invocation) with the Click command built once: building it from the Typer app
costs ~80 ms per call, more than the command itself. An unexpected exception is re-raised, so a
traceback can never pass for "exit 1, refused".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from mailwarden.cli import output as cli_output
from mailwarden.cli.app import app
from mailwarden.db.models import Base
from tests.support.databases import TABLES_IN_DELETE_ORDER

# Cheap hashing keeps the suite fast; the schemes themselves are tested on their own.
BASE_ENV: dict[str, str | None] = {
    "COLUMNS": "200",
    "MAILWARDEN_PASSWORD_SCHEME": "SHA256-CRYPT",
    "MAILWARDEN_CONFIG": None,
    "NO_COLOR": "1",
}
PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long passphrase"

# `mailwarden: <field>: <message> [<rule>]`, `mailwarden: <kind> not found: <key>`,
# `mailwarden: not permitted: ...` or `mailwarden: --as: ...`: always one line.
REFUSAL = re.compile(r"mailwarden: \S.*")

_RUNNER = CliRunner()
_COMMAND = typer.main.get_command(app)
# The CLI's Rich console reads COLUMNS once, when it is imported; pin its width so that text
# assertions do not depend on the terminal (or the pytest-xdist worker) running the suite.
cli_output.console.width = 200


def run(
    url: str,
    *args: str,
    input: str | None = None,
    as_admin: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """One `mailwarden [--as ADMIN] ARGS...` against the database at `url`."""
    argv = (["--as", as_admin] if as_admin is not None else []) + list(args)
    environment = {**BASE_ENV, "MAILWARDEN_DATABASE_URL": url, **(env or {})}
    with _RUNNER.isolation(input=input, env=environment) as (stdout, stderr, output):
        exit_code = 0
        try:
            _COMMAND.main(args=argv, prog_name="mailwarden")
        except SystemExit as exc:
            code = exc.code
            exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return Result(
            runner=_RUNNER,
            stdout_bytes=stdout.getvalue(),
            stderr_bytes=stderr.getvalue(),
            output_bytes=output.getvalue(),
            return_value=None,
            exit_code=exit_code,
            exception=None,
        )


def describe(result: Result) -> str:
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def ok(url: str, *args: str, **kwargs: Any) -> Result:
    result = run(url, *args, **kwargs)
    assert result.exit_code == 0, f"mailwarden {' '.join(args)}: {describe(result)}"
    return result


def run_json(url: str, *args: str, **kwargs: Any) -> Any:
    """Run with --json (added when missing), assert exit 0 and parse stdout."""
    argv = list(args) if "--json" in args else [*args, "--json"]
    result = ok(url, *argv, **kwargs)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:  # pragma: no cover - reported as a test failure
        raise AssertionError(f"not JSON ({exc}): {describe(result)}") from None


def refused(url: str, *args: str, **kwargs: Any) -> str:
    """Assert exit 1 with exactly one `mailwarden: ...` line on stderr and nothing on stdout."""
    result = run(url, *args, **kwargs)
    assert result.exit_code == 1, f"mailwarden {' '.join(args)}: {describe(result)}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr: {describe(result)}"
    assert REFUSAL.fullmatch(lines[0]), f"not a refusal line: {describe(result)}"
    assert result.stdout == "", f"a refused command printed on stdout: {describe(result)}"
    return lines[0]


def usage_error(url: str, *args: str, **kwargs: Any) -> Result:
    result = run(url, *args, **kwargs)
    assert result.exit_code == 2, f"mailwarden {' '.join(args)}: {describe(result)}"
    return result


def audit_entries(url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = run_json(url, "audit", "list", "--all", "--json")
    return entries


def audit_ids(url: str) -> list[int]:
    return [entry["id"] for entry in audit_entries(url)]


def password_hash(engine: Engine, table: str, column: str, key: str) -> str:
    """The stored hash, read directly, bypassing every public schema."""
    stored = Base.metadata.tables[table]
    with engine.connect() as connection:
        value = connection.execute(
            select(stored.c.password_hash).where(stored.c[column] == key)
        ).scalar_one()
    return str(value)


def console_script() -> str:
    """The installed `mailwarden` entry point of this virtualenv."""
    script = Path(sys.prefix) / "bin" / "mailwarden"
    assert script.is_file(), f"console script not installed at {script}"
    return str(script)


def run_process(
    url: str, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILWARDEN_")}
    environment.update({k: v for k, v in BASE_ENV.items() if v is not None})
    environment["MAILWARDEN_DATABASE_URL"] = url
    return subprocess.run(
        [console_script(), *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def database_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read directly: "nothing changed" means this is equal."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in TABLES_IN_DELETE_ORDER:
            rows = connection.execute(select(Base.metadata.tables[table])).all()
            state[table] = sorted((tuple(row) for row in rows), key=repr)
    return state


class Cli:
    """The helpers above, bound to one database URL (and its engine, for direct reads)."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    def run(self, *args: str, **kwargs: Any) -> Result:
        return run(self.url, *args, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        return ok(self.url, *args, **kwargs)

    def json(self, *args: str, **kwargs: Any) -> Any:
        return run_json(self.url, *args, **kwargs)

    def refused(self, *args: str, **kwargs: Any) -> str:
        return refused(self.url, *args, **kwargs)

    def usage_error(self, *args: str, **kwargs: Any) -> Result:
        return usage_error(self.url, *args, **kwargs)

    def audit(self) -> list[dict[str, Any]]:
        return audit_entries(self.url)

    def audit_ids(self) -> list[int]:
        return audit_ids(self.url)

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        return database_state(self.engine)

    # Setup shortcuts.
    def add_domain(self, name: str, *options: str) -> None:
        self.ok("domain", "add", name, *options)

    def add_mailbox(self, address: str, *options: str, password: str = PASSWORD) -> None:
        self.ok("mailbox", "add", address, *options, "--password-stdin", input=password + "\n")

    def add_admin(self, username: str, role: str, *domains: str) -> None:
        options = [item for domain in domains for item in ("--domain", domain)]
        self.ok(
            "admin",
            "add",
            username,
            "--role",
            role,
            *options,
            "--password-stdin",
            input=PASSWORD + "\n",
        )
