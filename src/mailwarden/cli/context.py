"""What every command shares: settings, the database, the acting admin, and error mapping.

Every service call goes through `mutate` or `read`, which is the one place where the domain
error tree becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import typer
from pydantic import ValidationError as SettingsError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from mailwarden.admins import service as admins
from mailwarden.db.engine import build_engine, session_factory
from mailwarden.db.migrate import current_revision, head_revision
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import MailwardenError, NotFound
from mailwarden.kernel.passwords import generate_password
from mailwarden.kernel.unit_of_work import PlannedChange, UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.hosts.errors import HostError

from .exits import EXIT_FOLLOW_UP_FAILED, fail

T = TypeVar("T")


@dataclass
class CliState:
    as_admin: str | None = None
    _settings: Settings | None = None
    _engine: Engine | None = None
    _schema_checked: bool = False

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings()
            except (SettingsError, FileNotFoundError, ValueError) as exc:
                fail(f"configuration: {exc}".replace("\n", " "))
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings.effective_database_url)
        return self._engine

    def check_schema(self) -> None:
        if self._schema_checked:
            return
        current = current_revision(self.engine)
        head = head_revision()
        if current != head:
            fail(
                f"the database schema is at {current or 'nothing'} and this mailwarden needs "
                f"{head}: run `mailwarden db upgrade`"
            )
        self._schema_checked = True

    def unit_of_work(self, *, dry_run: bool) -> UnitOfWork:
        self.check_schema()
        return UnitOfWork(session_factory(self.engine)(), self.settings, dry_run=dry_run)

    def actor(self, uow: UnitOfWork) -> Actor:
        if self.as_admin is None:
            return Actor.local_operator(Channel.CLI)
        try:
            return admins.actor_for(uow, self.as_admin, Channel.CLI)
        except NotFound:
            fail(f"--as: no active admin named {self.as_admin!r} [unknown_admin]")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def state_of(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        # `mailwarden --as NAME` leaves the name here (cli/app.py), keeping that module light.
        root.obj = CliState(as_admin=ctx.meta.get("mailwarden.as_admin"))
        root.call_on_close(root.obj.close)
    return root.obj


@contextmanager
def refusals() -> Iterator[None]:
    """Map expected failures to one line on stderr and exit 1; never a traceback."""
    try:
        yield
    except MailwardenError as exc:
        fail(str(exc))
    except HostError as exc:
        fail(str(exc))
    except OperationalError as exc:
        fail(f"database unreachable or refused the operation: {_first_line(exc)}")
    except ProgrammingError as exc:
        fail(f"database error (is the schema current? `mailwarden db upgrade`): {_first_line(exc)}")
    except DBAPIError as exc:
        fail(f"database error: {_first_line(exc)}")


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]


def mutate(
    ctx: typer.Context, dry_run: bool, action: Callable[[UnitOfWork, Actor], T]
) -> tuple[T, list[PlannedChange]]:
    """Run one change in one transaction; on a dry run, the same change rolled back."""
    state = state_of(ctx)
    with refusals(), state.unit_of_work(dry_run=dry_run) as uow:
        result = action(uow, state.actor(uow))
        plan = uow.finish()
    if uow.follow_up_failures:
        ctx.call_on_close(lambda: _warn_follow_ups(uow))
    return result, plan


def _warn_follow_ups(uow: UnitOfWork) -> None:
    """After the command's own output: the change stands, the host work did not happen."""
    for failure in uow.follow_up_failures:
        typer.echo(f"mailwarden: warning: stored, but {failure}", err=True)
    raise typer.Exit(EXIT_FOLLOW_UP_FAILED)


def read(ctx: typer.Context, action: Callable[[UnitOfWork, Actor], T]) -> T:
    state = state_of(ctx)
    with refusals(), state.unit_of_work(dry_run=True) as uow:
        return action(uow, state.actor(uow))


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """One line from stdin (newline removed, nothing else), or a confirmed prompt on a terminal."""
    if not from_stdin:
        raise typer.BadParameter("give --password-stdin or --random-password")
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"{prompt} (again): ") != first:
            fail("password: the two entries differ [mismatch]")
        return first
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def obtain_password(from_stdin: bool, random: bool) -> tuple[str, bool]:
    """The password a command was given, and whether it was generated (and so must be shown)."""
    if from_stdin and random:
        raise typer.BadParameter("choose one of --password-stdin and --random-password")
    if random:
        return generate_password(), True
    return read_password(from_stdin), False
