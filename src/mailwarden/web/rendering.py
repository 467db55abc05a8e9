"""Jinja2 pages and HTMX fragments. Autoescaping is on for every template, fragments included,
and nothing marks user data safe: hostile names, descriptions, vacation texts and audit entries
come out as text."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from mailwarden.kernel.addresses import display_address, display_domain
from mailwarden.kernel.moments import format_utc
from mailwarden.kernel.sizes import format_size

from .security import CSRF_FIELD, PRE_SESSION_COOKIE, new_token
from .sessions import Viewer, pre_session_token, set_cookie

# Messages shown after a redirect (`?notice=code`): fixed texts, so a link cannot inject any.
NOTICES = {
    "setup": "Welcome! Your superadmin account is ready.",
    "created": "Created.",
    "updated": "Saved.",
    "deleted": "Removed.",
    "restored": "Restored.",
    "password": "The password was changed.",
    "2fa-off": "Two-factor authentication is off.",
    "2fa-reset": "The second factor was reset.",
    "revoked": "Revoked.",
    "approved": "Approved: the mailbox exists now.",
    "rejected": "Rejected.",
    "logged-out": "You are logged out.",
    "removing": "The domain is inactive and its mailboxes are removed; the purge deletes it "
    "with its last mailbox after the grace period.",
}


def _when(moment: datetime | None) -> str:
    return format_utc(moment) if moment else ""


def _percent(used: int | None, limit: int | None) -> int | None:
    """Share of a quota in use, for quota bars; None when unlimited or unknown."""
    if not limit or used is None:
        return None
    return min(100, round(used * 100 / limit))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mailwarden.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = format_size
    env.filters["when"] = _when
    env.filters["address"] = display_address
    env.filters["domain"] = display_domain
    env.globals["percent"] = _percent
    env.globals["csrf_field"] = CSRF_FIELD
    return env


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    csrf_token: str | None = None,
) -> HTMLResponse:
    """Render a page (or a fragment) with the globals every template may use.

    Without a session, the form token is the visitor's pre-session cookie, set here on first
    sight (a random value, not state: nothing is stored). `csrf_token` overrides both (a
    session that still owes its second factor).
    """
    new_cookie = None
    if csrf_token is not None:
        pass
    elif viewer is not None:
        csrf_token = viewer.csrf_token
    else:
        csrf_token = pre_session_token(request) or ""
        if not csrf_token:
            csrf_token = new_cookie = new_token()
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "actor": viewer.actor if viewer else None,
        "csrf_token": csrf_token,
        "current_path": request.url.path,
        "htmx": is_htmx(request),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    values.update(context or {})
    body = environment().get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    if new_cookie is not None:
        set_cookie(response, request, PRE_SESSION_COOKIE, new_cookie)
    return response
