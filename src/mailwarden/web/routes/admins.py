"""Administrators: the superadmins' pages to list, add, change and remove admins.

A domain admin manages its own account under /account; every page here is refused to it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.admins import service
from mailwarden.admins.schemas import AdminCreate, AdminPublic, AdminUpdate
from mailwarden.api.context import runtime_of
from mailwarden.kernel.actor import Role
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.passwords import generate_password
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.schemas import parse
from mailwarden.twofactor import service as twofactor

from ..changes import GENERAL, Outcome, errors_of, form_state, perform, wants_preview
from ..rendering import is_htmx, render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
ROLES = [(Role.DOMAIN_ADMIN.value, "Domain admin"), (Role.SUPERADMIN.value, "Superadmin")]
# Generated and typed passwords are never kept in a page: a page that shows one says so.
NO_STORE = {"Cache-Control": "no-store"}

Username = Annotated[str, Path(max_length=254)]
Text = Annotated[str, Form(max_length=254)]
Secret = Annotated[str, Form(max_length=4096)]
DomainList = Annotated[str, Form(max_length=100_000)]
Flag = Annotated[str, Form(max_length=8)]
Names = Annotated[list[str] | None, Form(max_length=1000)]

_SEPARATORS = re.compile(r"[,\n]")


def _superadmin(viewer: AdminViewer) -> Viewer:
    """These pages are the superadmins' tool; the services refuse every change to others too."""
    require(viewer.actor, Permission.ADMIN_READ)
    return viewer


SuperadminViewer = Annotated[Viewer, Depends(_superadmin)]


def split_names(text: str) -> list[str]:
    """Domain names typed one per line or separated by commas."""
    return [name.strip(" \t\r") for name in _SEPARATORS.split(text) if name.strip(" \t\r")]


def placed(errors: dict[str, list[str]], fields: set[str]) -> dict[str, list[str]]:
    """Errors keyed by the form's fields: `domains[2]` belongs to `domains`, and an error of a
    field the form does not have is shown as the form's general error."""
    result: dict[str, list[str]] = {}
    for key, messages in errors.items():
        name = key.split("[", 1)[0]
        result.setdefault(name if name in fields else GENERAL, []).extend(messages)
    return result


def _checked(value: str) -> bool:
    return value == "on"


def _url(username: str, suffix: str = "") -> str:
    # Usernames are letters, digits and . _ @ + - only: safe in a path as they are.
    return f"/admins/{username}{suffix}"


# --- list ---------------------------------------------------------------------------------


@router.get("/admins")
def list_admins(
    request: Request,
    viewer: SuperadminViewer,
    search: Annotated[str, Query(max_length=254)] = "",
    after: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    errors: dict[str, list[str]] = {}
    page: Page[AdminPublic] = Page([], None)
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            page = service.list_admins(
                uow, viewer.actor, search=search or None, limit=PAGE_SIZE, after=after or None
            )
    except ValidationError as exc:
        errors = placed(errors_of(exc), {"search"})
    context = {"title": "Admins", "page": page, "search": search, "after": after, "errors": errors}
    template = "admins/_table.html" if is_htmx(request) else "admins/list.html"
    status = 422 if errors else 200
    return render(request, template, context, viewer=viewer, status_code=status)


# --- create -------------------------------------------------------------------------------

_CREATE_FIELDS = {"username", "role", "domains", "password", "active"}


def _new_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, Any],
    outcome: Outcome[Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "title": "Add an admin",
        "values": values,
        "roles": ROLES,
        **form_state(outcome),
        "errors": placed(outcome.errors, _CREATE_FIELDS) if outcome else {},
    }
    return render(request, "admins/new.html", context, viewer=viewer, status_code=status_code)


@router.get("/admins/new")
def new_admin(request: Request, viewer: SuperadminViewer) -> Response:
    return _new_page(request, viewer, {"role": Role.DOMAIN_ADMIN.value, "active": "on"})


@router.post("/admins/new")
def create_admin(
    request: Request,
    viewer: SuperadminViewer,
    username: Text = "",
    role: Text = "",
    domains: DomainList = "",
    password: Secret = "",
    generate: Flag = "",
    active: Flag = "",
    intent: Text = "",
) -> Response:
    values = {
        "username": username,
        "role": role,
        "domains": domains,
        "generate": generate,
        "active": active,
    }
    preview = wants_preview({"intent": intent})
    generated = _checked(generate)
    if generated and password:
        outcome: Outcome[Any] = Outcome(
            errors={"password": ["Leave the password empty to have one generated."]}
        )
        return _new_page(request, viewer, values, outcome, 422)
    secret = generate_password() if generated else password

    def operation(uow: Any, actor: Any) -> AdminPublic:
        data = parse(
            AdminCreate,
            {
                "username": username,
                "role": role,
                "domains": split_names(domains),
                "active": _checked(active),
            },
        )
        return service.create(uow, actor, data, password=secret)

    outcome = perform(request, viewer.actor, operation, preview=preview)
    if preview or not outcome.ok or outcome.result is None:
        return _new_page(request, viewer, values, outcome, 200 if outcome.ok else 422)
    admin = outcome.result
    if generated:
        return _password_page(request, viewer, admin.username, secret)
    return RedirectResponse(_url(admin.username, "?notice=created"), status_code=303)


def _password_page(request: Request, viewer: Viewer, username: str, password: str) -> Response:
    context = {"title": f"Password of {username}", "username": username, "password": password}
    return render(request, "admins/password.html", context, viewer=viewer, headers=NO_STORE)


# --- detail, edit, password -----------------------------------------------------------------

_EDIT_FIELDS = {"role", "add_domains", "remove_domains", "active"}
_PASSWORD_FIELDS = {"password"}


def _detail_page(
    request: Request,
    viewer: Viewer,
    username: str,
    *,
    edit: Outcome[Any] | None = None,
    edit_values: dict[str, Any] | None = None,
    password: Outcome[Any] | None = None,
    password_values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        admin = service.get(uow, viewer.actor, username)
    if edit_values is None:
        edit_values = {"role": admin.role.value, "active": "on" if admin.active else ""}
    changed = edit or password
    context = {
        "title": admin.username,
        "admin": admin,
        "roles": ROLES,
        "is_self": admin.username == viewer.actor.username,
        "edit_values": edit_values,
        "edit_errors": placed(edit.errors, _EDIT_FIELDS) if edit else {},
        "password_values": password_values or {},
        "password_errors": placed(password.errors, _PASSWORD_FIELDS) if password else {},
        "plan": changed.plan if changed else [],
        "previewed": bool(changed and changed.previewed and changed.ok),
    }
    return render(request, "admins/detail.html", context, viewer=viewer, status_code=status_code)


@router.get("/admins/{username}")
def show_admin(request: Request, viewer: SuperadminViewer, username: Username) -> Response:
    return _detail_page(request, viewer, username)


@router.post("/admins/{username}/edit")
def edit_admin(
    request: Request,
    viewer: SuperadminViewer,
    username: Username,
    role: Text = "",
    add_domains: DomainList = "",
    remove_domains: Names = None,
    active: Flag = "",
    intent: Text = "",
) -> Response:
    values = {
        "role": role,
        "add_domains": add_domains,
        "remove_domains": remove_domains or [],
        "active": active,
    }
    preview = wants_preview({"intent": intent})

    def operation(uow: Any, actor: Any) -> AdminPublic:
        data = parse(
            AdminUpdate,
            {
                "role": role,
                "add_domains": split_names(add_domains),
                "remove_domains": list(remove_domains or []),
                "active": _checked(active),
            },
        )
        return service.update(uow, actor, username, data)

    outcome = perform(request, viewer.actor, operation, preview=preview)
    if preview or not outcome.ok:
        status = 200 if outcome.ok else 422
        return _detail_page(
            request, viewer, username, edit=outcome, edit_values=values, status_code=status
        )
    return RedirectResponse(_url(username, "?notice=updated"), status_code=303)


@router.post("/admins/{username}/password")
def set_password(
    request: Request,
    viewer: SuperadminViewer,
    username: Username,
    password: Secret = "",
    generate: Flag = "",
    intent: Text = "",
) -> Response:
    values = {"generate": generate}
    preview = wants_preview({"intent": intent})
    generated = _checked(generate)
    if generated and password:
        refused: Outcome[Any] = Outcome(
            errors={"password": ["Leave the password empty to have one generated."]}
        )
        return _detail_page(
            request, viewer, username, password=refused, password_values=values, status_code=422
        )
    secret = generate_password() if generated else password
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.set_password(uow, actor, username, secret),
        preview=preview,
    )
    if preview or not outcome.ok or outcome.result is None:
        status = 200 if outcome.ok else 422
        return _detail_page(
            request, viewer, username, password=outcome, password_values=values, status_code=status
        )
    if generated:
        return _password_page(request, viewer, outcome.result.username, secret)
    return RedirectResponse(_url(username, "?notice=password"), status_code=303)


# --- removal and second-factor reset: a preview page, then the confirmed change --------------


def _confirm_page(
    request: Request,
    viewer: Viewer,
    username: str,
    kind: str,
    outcome: Outcome[Any],
) -> Response:
    removal = kind == "delete"
    context = {
        "title": f"Remove {username}" if removal else f"Reset the second factor of {username}",
        "username": username,
        "action": _url(username, "/delete" if removal else "/two-factor-reset"),
        "button": "Remove admin" if removal else "Reset second factor",
        "explanation": (
            "The admin can no longer log in, and its API keys stop working."
            if removal
            else "The admin logs in with its password alone until it sets up a new device; "
            "its recovery codes stop working."
        ),
        "errors": placed(outcome.errors, set()),
        "plan": outcome.plan,
        "previewed": outcome.previewed and outcome.ok,
    }
    status = 200 if outcome.ok else 422
    return render(request, "admins/confirm.html", context, viewer=viewer, status_code=status)


@router.get("/admins/{username}/delete")
def confirm_removal(request: Request, viewer: SuperadminViewer, username: Username) -> Response:
    _exists(request, viewer, username)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, username),
        preview=True,
    )
    return _confirm_page(request, viewer, username, "delete", outcome)


@router.post("/admins/{username}/delete")
def remove_admin(
    request: Request, viewer: SuperadminViewer, username: Username, intent: Text = ""
) -> Response:
    _exists(request, viewer, username)
    preview = wants_preview({"intent": intent})
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, username),
        preview=preview,
    )
    if preview or not outcome.ok:
        return _confirm_page(request, viewer, username, "delete", outcome)
    return RedirectResponse("/admins?notice=deleted", status_code=303)


@router.get("/admins/{username}/two-factor-reset")
def confirm_two_factor_reset(
    request: Request, viewer: SuperadminViewer, username: Username
) -> Response:
    _exists(request, viewer, username)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.reset(uow, actor, username),
        preview=True,
    )
    return _confirm_page(request, viewer, username, "two-factor", outcome)


@router.post("/admins/{username}/two-factor-reset")
def reset_two_factor(
    request: Request, viewer: SuperadminViewer, username: Username, intent: Text = ""
) -> Response:
    _exists(request, viewer, username)
    preview = wants_preview({"intent": intent})
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.reset(uow, actor, username),
        preview=preview,
    )
    if preview or not outcome.ok:
        return _confirm_page(request, viewer, username, "two-factor", outcome)
    return RedirectResponse(_url(username, "?notice=2fa-reset"), status_code=303)


def _exists(request: Request, viewer: Viewer, username: str) -> None:
    """An unknown admin is a 404 page, not a form that cannot succeed."""
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        service.get(uow, viewer.actor, username)
