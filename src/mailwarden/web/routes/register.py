"""The public registration page: a visitor asks for a mailbox; a domain admin decides later.

Every submission that reaches the service counts against the visitor's client address
(registrations.admit_visitor); a mistake caught by the form itself (the two passwords differ)
costs nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import client_address, runtime_of
from mailwarden.kernel.errors import MailwardenError, RateLimited
from mailwarden.kernel.schemas import parse
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationSubmit

from ..changes import errors_of
from ..rendering import render
from ..sessions import PreSessionChecked

router = APIRouter(include_in_schema=False)

Secret = Annotated[str, Form(max_length=4096)]


def _ip_address(client: str | None) -> str | None:
    """The peer as the request stores it: an IP address, or nothing (a Unix socket peer)."""
    if client is None:
        return None
    try:
        return str(ipaddress.ip_address(client))
    except ValueError:
        return None


def _form_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "registrations/register.html",
        {"title": "Ask for a mailbox", "values": values, "errors": errors},
        status_code=status_code,
        headers=headers,
    )


@router.get("/register")
def register_form(request: Request) -> Response:
    return _form_page(request, {}, {})


@router.post("/register", dependencies=[PreSessionChecked])
def register(
    request: Request,
    address: Annotated[str, Form(max_length=254)] = "",
    name: Annotated[str, Form(max_length=1024)] = "",
    password: Secret = "",
    password_again: Secret = "",
    contact: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    values = {"address": address, "name": name, "contact": contact}
    if password != password_again:
        return _form_page(request, values, {"password_again": ["The two passwords differ."]}, 422)
    runtime = runtime_of(request)
    client = client_address(request)
    try:
        # Counted in a transaction of its own, so that a refused request counts too.
        with runtime.unit_of_work(dry_run=False) as uow:
            registrations.admit_visitor(uow, client)
            uow.finish()
    except RateLimited as exc:
        message = f"Too many requests from your network; try again in {exc.retry_after} seconds."
        return _form_page(
            request,
            values,
            {"__all__": [message]},
            429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    data = {"address": address, "name": name, "password": password, "contact": contact}
    try:
        with runtime.unit_of_work(dry_run=False) as uow:
            registrations.submit(
                uow, parse(RegistrationSubmit, data), client_address=_ip_address(client)
            )
            uow.finish()
    except MailwardenError as exc:
        return _form_page(request, values, errors_of(exc), 422)
    # After a redirect, so that reloading the page does not send the request again.
    return RedirectResponse("/register/sent", status_code=303)


@router.get("/register/sent")
def sent(request: Request) -> Response:
    return render(request, "registrations/sent.html", {"title": "Request sent"})
