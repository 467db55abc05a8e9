"""The logged-in admin's own account: password and second factor (TOTP)."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import runtime_of
from mailwarden.twofactor import service as twofactor

from ..changes import change_own_password, perform
from ..rendering import render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

Secret = Annotated[str, Form(max_length=4096)]
Code = Annotated[str, Form(max_length=64)]


def _status_context(request: Request, viewer: Viewer) -> dict[str, object]:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        status = twofactor.status(uow, viewer.actor)
    return {"status": status}


@router.get("/account")
def account(request: Request, viewer: AdminViewer) -> Response:
    context = {"title": "Your account", "errors": {}, **_status_context(request, viewer)}
    return render(request, "account/index.html", context, viewer=viewer)


@router.post("/account/password")
def change_password(
    request: Request,
    viewer: AdminViewer,
    current_password: Secret = "",
    new_password: Secret = "",
    new_password_again: Secret = "",
) -> Response:
    errors = change_own_password(
        request, viewer, current_password, new_password, new_password_again
    )
    if errors:
        context = {"title": "Your account", "errors": errors, **_status_context(request, viewer)}
        return render(request, "account/index.html", context, viewer=viewer, status_code=422)
    return RedirectResponse("/account?notice=password", status_code=303)


@router.get("/account/two-factor")
def two_factor(request: Request, viewer: AdminViewer) -> Response:
    context: dict[str, object] = {"title": "Two-factor authentication", "errors": {}}
    context.update(_status_context(request, viewer))
    return render(request, "account/two_factor.html", context, viewer=viewer)


@router.post("/account/two-factor/begin")
def begin(request: Request, viewer: AdminViewer) -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.begin_enrolment(uow, actor),
        preview=False,
    )
    enrolment = outcome.result
    if enrolment is None:
        return _two_factor_page(request, viewer, outcome.errors, 409)
    qr = base64.b64encode(enrolment.qr_svg.encode()).decode()
    context = {
        "title": "Set up two-factor authentication",
        "secret": enrolment.secret,
        "qr_data_uri": f"data:image/svg+xml;base64,{qr}",
        "errors": {},
    }
    return render(request, "account/enrol.html", context, viewer=viewer)


def _two_factor_page(
    request: Request, viewer: Viewer, errors: dict[str, list[str]], status_code: int
) -> Response:
    context: dict[str, object] = {"title": "Two-factor authentication", "errors": errors}
    context.update(_status_context(request, viewer))
    return render(
        request, "account/two_factor.html", context, viewer=viewer, status_code=status_code
    )


@router.post("/account/two-factor/confirm")
def confirm(request: Request, viewer: AdminViewer, code: Code = "") -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.confirm_enrolment(uow, actor, code),
        preview=False,
    )
    if outcome.result is None:
        return _two_factor_page(request, viewer, outcome.errors, 422)
    context = {"title": "Recovery codes", "codes": outcome.result}
    return render(request, "account/recovery_codes.html", context, viewer=viewer)


@router.post("/account/two-factor/recovery-codes")
def new_recovery_codes(request: Request, viewer: AdminViewer, code: Code = "") -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.regenerate_recovery_codes(uow, actor, code),
        preview=False,
    )
    if outcome.result is None:
        return _two_factor_page(request, viewer, outcome.errors, 422)
    context = {"title": "Recovery codes", "codes": outcome.result}
    return render(request, "account/recovery_codes.html", context, viewer=viewer)


@router.post("/account/two-factor/disable")
def disable(
    request: Request, viewer: AdminViewer, password: Secret = "", code: Code = ""
) -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: twofactor.disable(uow, actor, password=password, code=code),
        preview=False,
    )
    if outcome.errors:
        return _two_factor_page(request, viewer, outcome.errors, 422)
    return RedirectResponse("/account/two-factor?notice=2fa-off", status_code=303)
