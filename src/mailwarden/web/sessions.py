"""Who is looking: the session cookie of the console (admins) or of the portal (mailboxes).

Cookies are HttpOnly and SameSite=Lax; over HTTPS (directly or through a trusted proxy) they are
Secure and carry the `__Host-` prefix, which also keeps sibling hosts from planting them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.api.context import client_address, runtime_of
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import NotFound, RateLimited
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.logins.service import LoginRefused
from mailwarden.mailboxes import selfservice
from mailwarden.twofactor import service as twofactor
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

from .security import PRE_SESSION_COOKIE, SAFE_METHODS, CsrfRefused, sent_token, tokens_match

T = TypeVar("T")

ADMIN_COOKIE = "mw_console"
PORTAL_COOKIE = "mw_portal"
# Paths an admin who owes a second factor enrolment may still reach.
ENROLMENT_PATHS = ("/account/two-factor", "/logout")


@dataclass(frozen=True, slots=True)
class Viewer:
    """A logged-in admin or mailbox user, with the CSRF token of its session."""

    actor: Actor
    csrf_token: str
    session_id: int
    kind: SessionKind
    # An admin whose role requires 2FA but who has not enrolled yet.
    must_enrol: bool = False


class LoginRequired(Exception):
    """No (live) session: answered with a redirect to the login page."""

    def __init__(self, login_path: str, next_path: str | None = None) -> None:
        super().__init__(login_path)
        self.login_path = login_path
        self.next_path = next_path

    def location(self) -> str:
        if not self.next_path or self.next_path in ("/", "/portal"):
            return self.login_path
        return f"{self.login_path}?next={quote(self.next_path, safe='/')}"


class EnrolmentRequired(Exception):
    """Answered with a redirect to the 2FA enrolment page."""


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request, base: str) -> str:
    return f"__Host-{base}" if is_https(request) else base


def set_cookie(response: Response, request: Request, base: str, value: str) -> None:
    # No Max-Age: the browser forgets it on exit; the server ends idle sessions on its own.
    response.set_cookie(
        cookie_name(request, base),
        value,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def clear_cookie(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base), httponly=True, samesite="lax", secure=is_https(request)
    )


def session_token(request: Request, base: str) -> str | None:
    return request.cookies.get(cookie_name(request, base))


def pre_session_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request, PRE_SESSION_COOKIE))


def safe_next(value: str | None, default: str) -> str:
    """Only local paths: a login link must not send people elsewhere afterwards."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\r\n\\") or len(value) > 512:
        return default
    return value


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused login attempt, as the form shows it."""

    message: str
    status_code: int
    headers: dict[str, str]


def counted_attempt(uow: UnitOfWork, check: Callable[[], T]) -> T | Refusal:
    """Run a login check; a refusal was counted and audited, which is committed all the same."""
    try:
        return check()
    except RateLimited as exc:
        uow.finish()
        return Refusal(exc.message, 429, {"Retry-After": str(exc.retry_after)})
    except LoginRefused as exc:
        uow.finish()
        return Refusal(exc.message, 401, {})


def begin_session(
    request: Request,
    uow: UnitOfWork,
    kind: SessionKind,
    principal_id: int,
    *,
    second_factor_pending: bool = False,
) -> websessions.OpenedSession:
    """A new session at every login: an id planted before login is worth nothing after."""
    cookie = ADMIN_COOKIE if kind is SessionKind.ADMIN else PORTAL_COOKIE
    websessions.end(uow, session_token(request, cookie))
    return websessions.start(
        uow,
        kind,
        principal_id,
        second_factor_pending=second_factor_pending,
        client_address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )


def signed_in(request: Request, cookie: str, token: str, location: str) -> Response:
    """The answer to a completed login: on to `location`, carrying the new session's cookie."""
    response = RedirectResponse(location, status_code=303)
    set_cookie(response, request, cookie, token)
    return response


def signed_out(request: Request, cookie: str, location: str) -> Response:
    """Logout: the session ends on the server (for every worker), and the cookie goes."""
    with runtime_of(request).unit_of_work(dry_run=False) as uow:
        websessions.end(uow, session_token(request, cookie))
        uow.finish()
    response = RedirectResponse(location, status_code=303)
    clear_cookie(response, request, cookie)
    return response


def _admin_viewer(request: Request) -> Viewer:
    runtime = runtime_of(request)
    path = request.url.path
    with runtime.unit_of_work(dry_run=False) as uow:
        row = websessions.resolve(uow, session_token(request, ADMIN_COOKIE), SessionKind.ADMIN)
        if row is None or row.admin_id is None:
            uow.finish()
            raise LoginRequired("/login", path if request.method == "GET" else None)
        if row.second_factor_pending:
            uow.finish()
            raise LoginRequired("/login/verify")
        admin = uow.session.get(Admin, row.admin_id)
        try:
            if admin is None:
                raise NotFound("admin", str(row.admin_id))
            actor = admins.actor_for(uow, admin.username, Channel.WEB, client_address(request))
        except NotFound:
            # Deactivated or removed since login: the session ends with it.
            uow.session.delete(row)
            uow.finish()
            raise LoginRequired("/login") from None
        must_enrol = twofactor.is_required(runtime.settings, actor.role) and not (
            twofactor.is_enrolled(uow, row.admin_id)
        )
        viewer = Viewer(actor, row.csrf_token, row.id, SessionKind.ADMIN, must_enrol)
        uow.finish()
    if must_enrol and not path.startswith(ENROLMENT_PATHS):
        raise EnrolmentRequired()
    return viewer


def _portal_viewer(request: Request) -> Viewer:
    runtime = runtime_of(request)
    with runtime.unit_of_work(dry_run=False) as uow:
        row = websessions.resolve(uow, session_token(request, PORTAL_COOKIE), SessionKind.MAILBOX)
        actor = None
        if row is not None and row.mailbox_id is not None:
            actor = selfservice.actor_for_session(uow, row.mailbox_id, client_address(request))
            if actor is None:
                uow.session.delete(row)
        uow.finish()
    if row is None or actor is None:
        raise LoginRequired("/portal/login", request.url.path if request.method == "GET" else None)
    return Viewer(actor, row.csrf_token, row.id, SessionKind.MAILBOX)


async def _checked(request: Request, viewer: Viewer) -> Viewer:
    if request.method not in SAFE_METHODS and not tokens_match(
        await sent_token(request), viewer.csrf_token
    ):
        raise CsrfRefused()
    return viewer


async def admin_viewer(
    request: Request, viewer: Annotated[Viewer, Depends(_admin_viewer)]
) -> Viewer:
    """The logged-in admin; a POST must carry its session's CSRF token."""
    return await _checked(request, viewer)


async def portal_viewer(
    request: Request, viewer: Annotated[Viewer, Depends(_portal_viewer)]
) -> Viewer:
    """The logged-in mailbox user; a POST must carry its session's CSRF token."""
    return await _checked(request, viewer)


async def pre_session_csrf(request: Request) -> None:
    """Forms shown before login carry the token of the visitor's pre-session cookie."""
    if request.method not in SAFE_METHODS and not tokens_match(
        await sent_token(request), pre_session_token(request)
    ):
        raise CsrfRefused()


AdminViewer = Annotated[Viewer, Depends(admin_viewer)]
PortalViewer = Annotated[Viewer, Depends(portal_viewer)]
PreSessionChecked = Depends(pre_session_csrf)
