"""API keys: every admin's own keys, and for superadmins everyone's.

The token of a new key is on the page that answers its creation, and nowhere else, ever: only
its hash is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import runtime_of
from mailwarden.apikeys import service
from mailwarden.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.schemas import parse

from ..changes import Outcome, errors_of, form_state, perform, wants_preview
from ..rendering import is_htmx, render
from ..sessions import AdminViewer, Viewer
from .admins import placed, split_names

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# The page with the token must not linger in caches or the browser's history store.
NO_STORE = {"Cache-Control": "no-store"}

KeyId = Annotated[str, Path(max_length=32)]
Text = Annotated[str, Form(max_length=254)]
DomainList = Annotated[str, Form(max_length=100_000)]
Flag = Annotated[str, Form(max_length=8)]

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CREATE_FIELDS = {"admin", "name", "domains", "read_only", "expires_at"}


def end_of_day(value: str, field: str) -> datetime | None:
    """A YYYY-MM-DD expiry: the key works through that day (UTC), as in the CLI."""
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return datetime.combine(date.fromisoformat(value) + timedelta(days=1), time(), UTC)
    except (ValueError, OverflowError):
        raise ValidationError(field, "invalid_date", "give a date as YYYY-MM-DD") from None


def _state(key: ApiKeyPublic) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.active else "expired"


# --- list ---------------------------------------------------------------------------------


@router.get("/api-keys")
def list_keys(
    request: Request,
    viewer: AdminViewer,
    admin: Annotated[str, Query(max_length=254)] = "",
    all_states: Annotated[str, Query(alias="all", max_length=8)] = "",
    after: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    errors: dict[str, list[str]] = {}
    page: Page[ApiKeyPublic] = Page([], None)
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            page = service.list_keys(
                uow,
                viewer.actor,
                admin=admin or None,
                include_inactive=all_states == "on",
                limit=PAGE_SIZE,
                after=after or None,
            )
    except ValidationError as exc:
        errors = placed(errors_of(exc), {"admin"})
    filters = {"admin": admin, "all": all_states}
    context = {
        "title": "API keys",
        "page": page,
        "filters": filters,
        "after": after,
        "errors": errors,
        "state_of": _state,
    }
    template = "api_keys/_table.html" if is_htmx(request) else "api_keys/list.html"
    status = 422 if errors else 200
    return render(request, template, context, viewer=viewer, status_code=status)


# --- create -------------------------------------------------------------------------------


def _new_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, Any],
    outcome: Outcome[Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "title": "New API key",
        "values": values,
        **form_state(outcome),
        "errors": placed(outcome.errors, _CREATE_FIELDS) if outcome else {},
    }
    return render(request, "api_keys/new.html", context, viewer=viewer, status_code=status_code)


@router.get("/api-keys/new")
def new_key(request: Request, viewer: AdminViewer) -> Response:
    return _new_page(request, viewer, {})


@router.post("/api-keys/new")
def create_key(
    request: Request,
    viewer: AdminViewer,
    admin: Text = "",
    name: Text = "",
    domains: DomainList = "",
    read_only: Flag = "",
    expires_at: Annotated[str, Form(max_length=32)] = "",
    intent: Text = "",
) -> Response:
    values = {
        "admin": admin,
        "name": name,
        "domains": domains,
        "read_only": read_only,
        "expires_at": expires_at,
    }
    preview = wants_preview({"intent": intent})

    def operation(uow: Any, actor: Any) -> ApiKeyCreated:
        data = parse(
            ApiKeyCreate,
            {
                # Only superadmins make keys for others; everyone else's keys are its own.
                "admin": admin or None,
                "name": name,
                "domains": split_names(domains),
                "read_only": read_only == "on",
                "expires_at": end_of_day(expires_at, "expires_at"),
            },
        )
        return service.create(uow, actor, data)

    outcome = perform(request, viewer.actor, operation, preview=preview)
    if preview or not outcome.ok or outcome.result is None:
        # A dry run made a token too; it was rolled back and is never shown.
        return _new_page(request, viewer, values, outcome, 200 if outcome.ok else 422)
    context = {"title": "API key created", "key": outcome.result, "state_of": _state}
    return render(request, "api_keys/created.html", context, viewer=viewer, headers=NO_STORE)


# --- one key, revocation --------------------------------------------------------------------


def _read(request: Request, viewer: Viewer, key_id: str) -> ApiKeyPublic:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.get(uow, viewer.actor, key_id)


@router.get("/api-keys/{key_id}")
def show_key(request: Request, viewer: AdminViewer, key_id: KeyId) -> Response:
    key = _read(request, viewer, key_id)
    context = {"title": f"API key {key.id}", "key": key, "state_of": _state}
    return render(request, "api_keys/detail.html", context, viewer=viewer)


def _revoke_page(
    request: Request, viewer: Viewer, key: ApiKeyPublic, outcome: Outcome[Any]
) -> Response:
    context = {
        "title": f"Revoke API key {key.id}",
        "key": key,
        "state_of": _state,
        "errors": placed(outcome.errors, set()),
        "plan": outcome.plan,
        "previewed": outcome.previewed and outcome.ok,
    }
    status = 200 if outcome.ok else 422
    return render(request, "api_keys/revoke.html", context, viewer=viewer, status_code=status)


@router.get("/api-keys/{key_id}/revoke")
def confirm_revoke(request: Request, viewer: AdminViewer, key_id: KeyId) -> Response:
    key = _read(request, viewer, key_id)
    outcome = perform(
        request, viewer.actor, lambda uow, actor: service.revoke(uow, actor, key_id), preview=True
    )
    return _revoke_page(request, viewer, key, outcome)


@router.post("/api-keys/{key_id}/revoke")
def revoke_key(request: Request, viewer: AdminViewer, key_id: KeyId, intent: Text = "") -> Response:
    key = _read(request, viewer, key_id)
    preview = wants_preview({"intent": intent})
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.revoke(uow, actor, key_id),
        preview=preview,
    )
    if preview or not outcome.ok:
        return _revoke_page(request, viewer, key, outcome)
    return RedirectResponse("/api-keys?notice=revoked", status_code=303)
