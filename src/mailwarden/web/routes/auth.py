"""Logging in and out of the console, the second factor, and the first-start setup page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailwarden.api.context import client_address, runtime_of
from mailwarden.kernel.errors import MailwardenError
from mailwarden.logins import service as logins
from mailwarden.setup import service as setup
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

from ..changes import GENERAL, errors_of
from ..rendering import render
from ..security import CsrfRefused, sent_token, tokens_match
from ..sessions import (
    ADMIN_COOKIE,
    AdminViewer,
    PreSessionChecked,
    Refusal,
    begin_session,
    counted_attempt,
    safe_next,
    session_token,
    signed_in,
    signed_out,
)

router = APIRouter(include_in_schema=False)


def _login_page(
    request: Request,
    *,
    username: str = "",
    next_path: str = "",
    error: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "auth/login.html",
        {"title": "Log in", "username": username, "next": next_path, "error": error},
        status_code=status_code,
        headers=headers,
    )


@router.get("/login")
def login_form(request: Request, next: Annotated[str, Query()] = "") -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        if setup.needs_setup(uow):
            return render(request, "auth/no_admin.html", {"title": "Set-up needed"})
    return _login_page(request, next_path=safe_next(next, ""))


@router.post("/login", dependencies=[PreSessionChecked])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    runtime = runtime_of(request)
    client = client_address(request)
    next_path = safe_next(next, "/")
    with runtime.unit_of_work(dry_run=False) as uow:
        result = counted_attempt(
            uow, lambda: logins.admin_login(uow, username, password, client_address=client)
        )
        if isinstance(result, Refusal):
            return _login_page(
                request,
                username=username,
                next_path=next_path,
                error=result.message,
                status_code=result.status_code,
                headers=result.headers,
            )
        opened = begin_session(
            request,
            uow,
            SessionKind.ADMIN,
            result.admin_id,
            second_factor_pending=result.second_factor_due,
        )
        uow.finish()
    location = "/login/verify" if result.second_factor_due else next_path
    if result.second_factor_due and next_path != "/":
        location += f"?next={next_path}"
    return signed_in(request, ADMIN_COOKIE, opened.token, location)


def _pending_session(request: Request) -> tuple[int, str] | None:
    """(admin id, CSRF token) of a session waiting for its second factor."""
    with runtime_of(request).unit_of_work(dry_run=False) as uow:
        row = websessions.resolve(uow, session_token(request, ADMIN_COOKIE), SessionKind.ADMIN)
        found = (
            (row.admin_id, row.csrf_token)
            if row is not None and row.second_factor_pending and row.admin_id is not None
            else None
        )
        uow.finish()
    return found


def _verify_page(
    request: Request, csrf_token: str, next_path: str, error: str = "", status_code: int = 200
) -> Response:
    # The form carries the pending session's token, not the pre-session one.
    return render(
        request,
        "auth/verify.html",
        {"title": "Second factor", "next": next_path, "error": error},
        status_code=status_code,
        csrf_token=csrf_token,
    )


@router.get("/login/verify")
def verify_form(request: Request, next: Annotated[str, Query()] = "") -> Response:
    pending = _pending_session(request)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    return _verify_page(request, pending[1], safe_next(next, "/"))


@router.post("/login/verify")
async def verify(request: Request) -> Response:
    # The pending session's own token guards this form; no full session exists yet.
    pending = await run_in_threadpool(_pending_session, request)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    if not tokens_match(await sent_token(request), pending[1]):
        raise CsrfRefused()
    form = await request.form()
    code = str(form.get("code", ""))[:64]
    next_path = safe_next(str(form.get("next", "")), "/")
    return await run_in_threadpool(_complete_second_factor, request, pending, code, next_path)


def _complete_second_factor(
    request: Request, pending: tuple[int, str], code: str, next_path: str
) -> Response:
    runtime = runtime_of(request)
    client = client_address(request)
    with runtime.unit_of_work(dry_run=False) as uow:
        verified = counted_attempt(
            uow, lambda: logins.admin_second_factor(uow, pending[0], code, client_address=client)
        )
        if isinstance(verified, Refusal):
            return _verify_page(
                request, pending[1], next_path, verified.message, verified.status_code
            )
        row = websessions.resolve(uow, session_token(request, ADMIN_COOKIE), SessionKind.ADMIN)
        if row is None:
            uow.finish()
            return RedirectResponse("/login", status_code=303)
        opened = websessions.renew(uow, row, second_factor_pending=False)
        uow.finish()
    return signed_in(request, ADMIN_COOKIE, opened.token, next_path)


@router.post("/logout")
def logout(request: Request, viewer: AdminViewer) -> Response:
    return signed_out(request, ADMIN_COOKIE, "/login")


@router.get("/setup")
def setup_form(request: Request, token: Annotated[str, Query(max_length=128)] = "") -> Response:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        if not setup.needs_setup(uow):
            return RedirectResponse("/login", status_code=303)
        valid = setup.token_is_valid(uow, token)
    if not valid:
        return render(
            request,
            "error.html",
            {
                "title": "Setup link invalid",
                "status": 403,
                "message": "This setup link is invalid or has expired. Restart `mailwarden "
                "serve` to print a new one.",
            },
            status_code=403,
        )
    return render(
        request, "auth/setup.html", {"title": "Set up Mailwarden", "token": token, "values": {}}
    )


@router.post("/setup", dependencies=[PreSessionChecked])
def complete_setup(
    request: Request,
    token: Annotated[str, Form(max_length=128)] = "",
    username: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    password_again: Annotated[str, Form(max_length=4096)] = "",
    first_domain: Annotated[str, Form(max_length=253)] = "",
) -> Response:
    values = {"username": username, "first_domain": first_domain}
    errors: dict[str, list[str]] = {}
    if password != password_again:
        errors["password_again"] = ["The two passwords differ."]
    runtime = runtime_of(request)
    client = client_address(request)
    if not errors:
        with runtime.unit_of_work(dry_run=False) as uow:
            try:
                done = setup.complete(
                    uow,
                    token,
                    username=username,
                    password=password,
                    first_domain=first_domain.strip() or None,
                    client_address=client,
                )
                opened = begin_session(request, uow, SessionKind.ADMIN, done.admin_id)
                uow.finish()
            except MailwardenError as exc:
                errors = errors_of(exc, {"setup": GENERAL, "name": "first_domain"})
    if errors:
        return render(
            request,
            "auth/setup.html",
            {"title": "Set up Mailwarden", "token": token, "values": values, "errors": errors},
            status_code=422,
        )
    return signed_in(request, ADMIN_COOKIE, opened.token, "/?notice=setup")
