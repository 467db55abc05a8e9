"""Preview, then apply: every change of the console runs the service once as a dry run (the
plan is shown as a readable diff) and once for real when the admin confirms.

A form's field errors come from the same errors the CLI and the API report, mapped to the form's
field names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic
from fastapi import Request

from mailwarden.api.context import client_address, runtime_of
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import (
    Conflict,
    MailwardenError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from mailwarden.kernel.sizes import format_size
from mailwarden.kernel.unit_of_work import ChangeKind, PlannedChange, UnitOfWork
from mailwarden.logins import service as logins
from mailwarden.logins.service import CurrentPasswordRefused

from .sessions import Viewer

T = TypeVar("T")

# The general error of a form (not tied to one field).
GENERAL = "__all__"


@dataclass(frozen=True, slots=True)
class DiffRow:
    name: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One planned change, ready for a template: a heading and rows of before/after."""

    change: str
    object_type: str
    key: str
    rows: list[DiffRow]


@dataclass(slots=True)
class Outcome(Generic[T]):
    result: T | None = None
    plan: list[PlanLine] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    follow_up_failures: list[str] = field(default_factory=list)
    previewed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _shown(value: Any, name: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, int) and name.endswith("_bytes"):
        # Quotas read as people wrote them, with the exact figure for the careful.
        return f"{format_size(value)} ({value:,} bytes)" if value else "0 (no limit)"
    return str(value)


def plan_lines(plan: list[PlannedChange]) -> list[PlanLine]:
    lines = []
    for change in plan:
        if change.kind is ChangeKind.UPDATE:
            rows = [
                DiffRow(name, _shown(values[0], name), _shown(values[1], name))
                for name, values in change.changes.items()
            ]
        elif change.kind is ChangeKind.CREATE:
            rows = [DiffRow(name, "", _shown(v, name)) for name, v in change.changes.items()]
        else:
            rows = [DiffRow(name, _shown(v, name), "") for name, v in change.changes.items()]
        lines.append(PlanLine(change.kind.value, change.object_type, change.key, rows))
    return lines


def errors_of(exc: Exception, names: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """A refusal as messages per form field (GENERAL for the rest)."""
    names = names or {}
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(names.get(name, name), []).append(message)

    if isinstance(exc, ValidationError):
        for issue in exc.issues:
            add(issue.field, issue.message)
    elif isinstance(exc, pydantic.ValidationError):
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else GENERAL
            add(where, error["msg"])
    elif isinstance(exc, Conflict):
        add(exc.field, str(exc.message).split(": ", 1)[-1])
    elif isinstance(exc, PermissionDenied):
        add(GENERAL, "You are not allowed to do this." + (f" {exc.reason}." if exc.reason else ""))
    elif isinstance(exc, NotFound):
        add(GENERAL, f"No {exc.kind} {exc.key} (or not one you can see).")
    elif isinstance(exc, RateLimited):
        add(GENERAL, exc.message)
    else:
        add(GENERAL, str(exc))
    return errors


def perform(
    request: Request,
    actor: Actor,
    operation: Callable[[UnitOfWork, Actor], T],
    *,
    preview: bool,
    field_names: Mapping[str, str] | None = None,
    propagate: tuple[type[MailwardenError], ...] = (),
) -> Outcome[T]:
    """Run `operation` as a dry run (preview) or for real, in one transaction.

    Refusals of a type in `propagate` are raised to the app's error page instead of being shown
    in the form: an action the viewer may never take (PermissionDenied) is no input mistake.
    """
    runtime = runtime_of(request)
    outcome: Outcome[T] = Outcome(previewed=preview)
    try:
        with runtime.unit_of_work(dry_run=preview) as uow:
            outcome.result = operation(uow, actor)
            outcome.plan = plan_lines(uow.finish())
            outcome.follow_up_failures = [str(f) for f in uow.follow_up_failures]
    except (MailwardenError, pydantic.ValidationError) as exc:
        if isinstance(exc, propagate):
            raise
        outcome.errors = errors_of(exc, field_names)
    return outcome


def form_state(outcome: Outcome[Any] | None) -> dict[str, Any]:
    """What a change form shows of an outcome: its errors in place, or the plan of a preview
    (`previewed` without a plan: the preview found nothing to change)."""
    if outcome is None:
        return {"errors": {}, "plan": [], "previewed": False}
    return {
        "errors": outcome.errors,
        "plan": outcome.plan,
        "previewed": outcome.previewed and outcome.ok,
    }


def wants_preview(form: Mapping[str, Any]) -> bool:
    """Forms have two buttons: `intent=preview` (the default) and `intent=apply`."""
    return form.get("intent") != "apply"


def change_own_password(
    request: Request, viewer: Viewer, current: str, new: str, again: str
) -> dict[str, list[str]]:
    """The password form of the console's account page and of the portal: field errors, or
    {} once the password is changed (other sessions of the account end; this one stays)."""
    if new != again:
        return {"new_password_again": ["The two new passwords differ."]}
    with runtime_of(request).unit_of_work(dry_run=False) as uow:
        try:
            logins.change_own_password(
                uow,
                viewer.actor,
                current=current,
                new=new,
                client_address=client_address(request),
                keep_session=viewer.session_id,
            )
        except CurrentPasswordRefused as exc:
            # Counted like a failed login: the count is what must be committed.
            uow.finish()
            return errors_of(exc)
        except (ValidationError, RateLimited) as exc:
            return errors_of(exc)
        uow.finish()
    return {}
