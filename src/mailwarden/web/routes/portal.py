"""The self-service portal of mailbox users: log in, look at the mailbox, change the password,
the auto-reply, the forwarding and the app passwords.

No page takes an address from the request: every call names the session's own mailbox, so no
form field, query or path can point a page at another one (the core checks it again).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.aliases import service as aliases
from mailwarden.api.context import client_address, runtime_of
from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate, AppPasswordCreated
from mailwarden.forwarding import service as forwarding
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.logins import service as logins
from mailwarden.mailboxes import selfservice
from mailwarden.vacation import service as vacation
from mailwarden.websessions.service import SessionKind

from .. import mail_settings
from ..changes import Outcome, change_own_password, perform
from ..rendering import render
from ..sessions import (
    PORTAL_COOKIE,
    PortalViewer,
    PreSessionChecked,
    Refusal,
    Viewer,
    begin_session,
    counted_attempt,
    safe_next,
    signed_in,
    signed_out,
)

router = APIRouter(include_in_schema=False)

T = TypeVar("T")
Secret = Annotated[str, Form(max_length=4096)]
Cursor = Annotated[str, Query(max_length=2048)]
# Generous bounds of the form transport; the services apply the real limits with messages.
Line = Annotated[str, Form(max_length=1024)]
LongText = Annotated[str, Form(max_length=256 * 1024)]
Switch = Annotated[str, Form(max_length=8)]

ALIASES_PER_PAGE = 20
APP_PASSWORDS_PER_PAGE = 20
# The overview names a few app passwords; their page lists them all, page by page.
APP_PASSWORDS_ON_OVERVIEW = 5
_FOLLOW_UP_NOTE = (
    "Saved, but the mail server could not be updated, so the change does not work yet. "
    "Please tell your administrator."
)


def _own(viewer: Viewer) -> str:
    # A portal session's actor is its mailbox; the username is the mailbox's address.
    return viewer.actor.username


def _switched_on(value: str) -> bool:
    return value in ("on", "true", "1")


def _page(
    request: Request,
    viewer: Viewer,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    return render(request, f"portal/{template}", context, viewer=viewer, status_code=status_code)


def _saved(outcome: Outcome[T], location: str) -> Response | None:
    """The redirect after a plain save, or None when the page must show something instead."""
    if outcome.errors or outcome.follow_up_failures:
        return None
    return RedirectResponse(f"{location}?notice=updated", status_code=303)


# --- logging in and out ------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    address: str = "",
    next_path: str = "",
    error: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "portal/login.html",
        {"title": "Mailbox log in", "address": address, "next": next_path, "error": error},
        status_code=status_code,
        headers=headers,
    )


def _portal_next(value: str) -> str:
    """Only portal pages: a mailbox session is worth nothing on the console's."""
    path = safe_next(value, "/portal")
    if path.startswith("/portal/login") or not (path == "/portal" or path.startswith("/portal/")):
        return "/portal"
    return path


@router.get("/portal/login")
def login_form(request: Request, next: Annotated[str, Query(max_length=512)] = "") -> Response:
    return _login_page(request, next_path=_portal_next(next))


@router.post("/portal/login", dependencies=[PreSessionChecked])
def login(
    request: Request,
    address: Annotated[str, Form(max_length=254)] = "",
    password: Secret = "",
    next: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    runtime = runtime_of(request)
    client = client_address(request)
    next_path = _portal_next(next)
    with runtime.unit_of_work(dry_run=False) as uow:
        actor = counted_attempt(
            uow, lambda: logins.mailbox_login(uow, address, password, client_address=client)
        )
        if isinstance(actor, Refusal):
            return _login_page(
                request,
                address=address,
                next_path=next_path,
                error=actor.message,
                status_code=actor.status_code,
                headers=actor.headers,
            )
        assert actor.mailbox_id is not None
        opened = begin_session(request, uow, SessionKind.MAILBOX, actor.mailbox_id)
        uow.finish()
    return signed_in(request, PORTAL_COOKIE, opened.token, next_path)


@router.post("/portal/logout")
def logout(request: Request, viewer: PortalViewer) -> Response:
    return signed_out(request, PORTAL_COOKIE, "/portal/login?notice=logged-out")


# --- the overview ------------------------------------------------------------------------------


@router.get("/portal")
def overview(request: Request, viewer: PortalViewer, after: Cursor = "") -> Response:
    actor, address = viewer.actor, _own(viewer)
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        context = {
            "title": "Your mailbox",
            "mailbox": selfservice.get_own(uow, actor),
            "vacation": vacation.get_vacation(uow, actor, address),
            "forward": forwarding.get_forward(uow, actor, address),
            "aliases": aliases.delivering_to(
                uow, actor, address, limit=ALIASES_PER_PAGE, after=after or None
            ),
            "app_passwords": apppasswords.list_app_passwords(
                uow, actor, address, limit=APP_PASSWORDS_ON_OVERVIEW
            ),
        }
    return _page(request, viewer, "overview.html", context)


# --- password ----------------------------------------------------------------------------------


def _password_page(
    request: Request, viewer: Viewer, errors: dict[str, list[str]], status_code: int = 200
) -> Response:
    context = {"title": "Change password", "errors": errors}
    return _page(request, viewer, "password.html", context, status_code)


@router.get("/portal/password")
def password_form(request: Request, viewer: PortalViewer) -> Response:
    return _password_page(request, viewer, {})


@router.post("/portal/password")
def change_password(
    request: Request,
    viewer: PortalViewer,
    current_password: Secret = "",
    new_password: Secret = "",
    new_password_again: Secret = "",
) -> Response:
    errors = change_own_password(
        request, viewer, current_password, new_password, new_password_again
    )
    if errors:
        return _password_page(request, viewer, errors, 422)
    return RedirectResponse("/portal/password?notice=password", status_code=303)


# --- vacation ----------------------------------------------------------------------------------


# Each mail setting's page: its title and template.
_SETTING_PAGES = {
    "vacation": ("Automatic reply", "vacation.html"),
    "forwarding": ("Forwarding", "forwarding.html"),
}


def _setting_page(
    request: Request,
    viewer: Viewer,
    setting: str,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status_code: int = 200,
    follow_up: bool = False,
) -> Response:
    title, template = _SETTING_PAGES[setting]
    context = {
        "title": title,
        "values": values,
        "errors": errors,
        "follow_up_note": _FOLLOW_UP_NOTE if follow_up else "",
    }
    return _page(request, viewer, template, context, status_code)


@router.get("/portal/vacation")
def vacation_form(request: Request, viewer: PortalViewer) -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        current = vacation.get_vacation(uow, viewer.actor, _own(viewer))
    values = mail_settings.vacation_values(current)
    return _setting_page(request, viewer, "vacation", values, {})


@router.post("/portal/vacation")
def save_vacation(
    request: Request,
    viewer: PortalViewer,
    enabled: Switch = "",
    subject: Line = "",
    body: LongText = "",
    starts_on: Annotated[str, Form(max_length=32)] = "",
    ends_on: Annotated[str, Form(max_length=32)] = "",
    interval_days: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    address = _own(viewer)
    values: dict[str, Any] = {
        "enabled": _switched_on(enabled),
        "subject": subject,
        "body": body,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "interval_days": interval_days,
    }

    def save(uow: UnitOfWork, actor: Actor) -> object:
        if not values["enabled"]:
            # Switched off: the stored text stays for next time.
            return vacation.disable_vacation(uow, actor, address)
        return mail_settings.save_vacation(uow, actor, address, values)

    outcome = perform(request, viewer.actor, save, preview=False)
    if (done := _saved(outcome, "/portal/vacation")) is not None:
        return done
    status = 422 if outcome.errors else 200
    follow_up = not outcome.errors
    return _setting_page(request, viewer, "vacation", values, outcome.errors, status, follow_up)


# --- forwarding --------------------------------------------------------------------------------


@router.get("/portal/forwarding")
def forwarding_form(request: Request, viewer: PortalViewer) -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        current = forwarding.get_forward(uow, viewer.actor, _own(viewer))
    return _setting_page(
        request, viewer, "forwarding", mail_settings.forwarding_values(current), {}
    )


@router.post("/portal/forwarding")
def save_forwarding(
    request: Request,
    viewer: PortalViewer,
    enabled: Switch = "",
    targets: Annotated[str, Form(max_length=16 * 1024)] = "",
    keep_copy: Switch = "",
) -> Response:
    address = _own(viewer)
    values: dict[str, Any] = {
        "enabled": _switched_on(enabled),
        "targets": targets,
        "keep_copy": _switched_on(keep_copy),
    }
    lines = mail_settings.target_lines(targets)

    def save(uow: UnitOfWork, actor: Actor) -> object:
        if not values["enabled"]:
            # Switched off: the targets stay for next time.
            return forwarding.disable_forward(uow, actor, address)
        return mail_settings.save_forward(uow, actor, address, lines, values["keep_copy"])

    outcome = perform(request, viewer.actor, save, preview=False)
    if (done := _saved(outcome, "/portal/forwarding")) is not None:
        return done
    errors = mail_settings.targets_in_place(outcome.errors, lines)
    status = 422 if errors else 200
    return _setting_page(
        request, viewer, "forwarding", values, errors, status, follow_up=not errors
    )


# --- app passwords -----------------------------------------------------------------------------


def _app_passwords_page(
    request: Request,
    viewer: Viewer,
    *,
    after: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    created: AppPasswordCreated | None = None,
    status_code: int = 200,
) -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        page = apppasswords.list_app_passwords(
            uow, viewer.actor, _own(viewer), limit=APP_PASSWORDS_PER_PAGE, after=after or None
        )
    context = {
        "title": "App passwords",
        "page": page,
        "after": after,
        "values": values or {},
        "errors": errors or {},
        "created": created,
    }
    return _page(request, viewer, "app_passwords.html", context, status_code)


@router.get("/portal/app-passwords")
def app_passwords(request: Request, viewer: PortalViewer, after: Cursor = "") -> Response:
    return _app_passwords_page(request, viewer, after=after)


@router.post("/portal/app-passwords")
def create_app_password(
    request: Request, viewer: PortalViewer, name: Annotated[str, Form(max_length=1024)] = ""
) -> Response:
    address = _own(viewer)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: apppasswords.create(
            uow, actor, address, parse(AppPasswordCreate, {"name": name})
        ),
        preview=False,
    )
    if outcome.errors:
        return _app_passwords_page(
            request, viewer, values={"name": name}, errors=outcome.errors, status_code=422
        )
    # Answered here and not after a redirect: this page is the only time the password shows.
    return _app_passwords_page(request, viewer, created=outcome.result)


@router.post("/portal/app-passwords/revoke")
def revoke_app_password(
    request: Request, viewer: PortalViewer, name: Annotated[str, Form(max_length=1024)] = ""
) -> Response:
    address = _own(viewer)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: apppasswords.revoke(uow, actor, address, name),
        preview=False,
    )
    if outcome.errors:
        return _app_passwords_page(request, viewer, errors=outcome.errors, status_code=422)
    return RedirectResponse("/portal/app-passwords?notice=revoked", status_code=303)
