"""A unit of work: one transaction, its audit entries, its plan, and what to do after commit.

Services flush and never commit. The face that opened the unit of work calls `finish()`: it
commits (then runs the after-commit operations), or, on a dry run, rolls back and returns the
plan. A dry run is therefore the real run, every rule included, with nothing kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.audit import AuditEntry, redact
from mailwarden.kernel.errors import FollowUpFailed
from mailwarden.kernel.passwords import Scheme, check_password_policy, hash_password

if TYPE_CHECKING:
    from mailwarden.settings import Settings


class ChangeKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One line of a plan: what would be (or was) created, changed or removed."""

    kind: ChangeKind
    object_type: str
    key: str
    # create: the new values; delete: the old values; update: field -> [old, new].
    changes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.kind.value,
            "object_type": self.object_type,
            "key": self.key,
            "changes": self.changes,
        }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


class UnitOfWork:
    def __init__(self, session: Session, settings: Settings, *, dry_run: bool = False) -> None:
        self.session = session
        self.settings = settings
        self.dry_run = dry_run
        self.plan: list[PlannedChange] = []
        self._after_commit: list[Callable[[], None]] = []
        # Host work that failed after commit: the change stands, the face warns.
        self.follow_up_failures: list[FollowUpFailed] = []
        self._finished = False

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            self.session.rollback()
        self.session.close()

    def record(
        self,
        actor: Actor,
        kind: ChangeKind,
        object_type: str,
        key: str,
        *,
        domain: str | None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        action: str | None = None,
    ) -> None:
        """Write the audit entry and add the plan line for one change, in this transaction."""
        before_clean = redact(before)
        after_clean = redact(after)
        if kind is ChangeKind.UPDATE:
            changes: dict[str, Any] = diff(before_clean or {}, after_clean or {})
        elif kind is ChangeKind.CREATE:
            changes = dict(after_clean or {})
        else:
            changes = dict(before_clean or {})
        self.plan.append(PlannedChange(kind, object_type, key, changes))
        self.session.add(
            AuditEntry(
                actor=actor.username,
                actor_role=actor.role.value,
                channel=actor.channel.value,
                client_address=actor.client_address,
                api_key=actor.api_key,
                action=action or f"{object_type}.{kind.value}",
                object_type=object_type,
                object_key=key,
                domain=domain,
                before=before_clean,
                after=after_clean,
            )
        )

    def record_update(
        self,
        actor: Actor,
        object_type: str,
        key: str,
        *,
        domain: str | None,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """Record an update, or nothing when no field changed (a no-op edit leaves no entry)."""
        if before != after:
            self.record(
                actor,
                ChangeKind.UPDATE,
                object_type,
                key,
                domain=domain,
                before=before,
                after=after,
            )

    def record_saved(
        self,
        actor: Actor,
        object_type: str,
        key: str,
        *,
        domain: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any],
    ) -> None:
        """Record a create (nothing was there before) or an update (a no-op leaves no entry)."""
        if before is None:
            self.record(actor, ChangeKind.CREATE, object_type, key, domain=domain, after=after)
        else:
            self.record_update(actor, object_type, key, domain=domain, before=before, after=after)

    def new_password_hash(
        self, password: str, scheme: Scheme | None = None, *, field: str = "password"
    ) -> str:
        """The one password policy of every path (admin, mailbox, CLI, API, import), then hash."""
        check_password_policy(
            password,
            min_length=self.settings.password_min_length,
            max_length=self.settings.password_max_length,
            field=field,
        )
        return hash_password(password, scheme or self.settings.password_scheme)

    def after_commit(self, operation: Callable[[], None]) -> None:
        """Queue work on hosts or files; it runs only once the transaction has committed.

        An operation signals a failure by raising FollowUpFailed; any other exception is turned
        into one. Failures are collected in `follow_up_failures` and the remaining operations
        still run.
        """
        self._after_commit.append(operation)

    def finish(self) -> list[PlannedChange]:
        """Commit, or roll back on a dry run. Returns the plan either way."""
        self.session.flush()
        if self.dry_run:
            self.session.rollback()
        else:
            self.session.commit()
            for operation in self._after_commit:
                try:
                    operation()
                except FollowUpFailed as failure:
                    self.follow_up_failures.append(failure)
                except Exception as unexpected:
                    # Whatever went wrong, the stored change stands and the remaining host work
                    # must still run: report it like any other follow-up failure.
                    name = getattr(operation, "__qualname__", type(operation).__name__)
                    self.follow_up_failures.append(
                        FollowUpFailed(name, f"{type(unexpected).__name__}: {unexpected}")
                    )
        self._finished = True
        return list(self.plan)
