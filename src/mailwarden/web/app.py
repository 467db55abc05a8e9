"""The console as an ASGI app of its own, mounted at `/` beside the API (see api/app.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailwarden.api.context import Runtime
from mailwarden.api.problems import problem
from mailwarden.kernel.errors import (
    Conflict,
    MailwardenError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationError,
)

from .rendering import is_htmx, render
from .routes import ROUTERS
from .security import CsrfRefused, SecurityHeaders
from .sessions import EnrolmentRequired, LoginRequired

STATIC_DIR = Path(__file__).with_name("static")


def create_web_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(EnrolmentRequired, _enrolment_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(MailwardenError, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_middleware(SecurityHeaders)
    return app


def _redirect(request: Request, location: str) -> Response:
    """A redirect that also works for HTMX requests (which would otherwise swap the target)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return _redirect(request, exc.location())


def _enrolment_required(request: Request, _exc: Exception) -> Response:
    return _redirect(request, "/account/two-factor")


def _error_page(
    request: Request, status: int, title: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        headers=headers,
    )


def _csrf_refused(request: Request, _exc: Exception) -> Response:
    return _error_page(
        request,
        403,
        "Form expired",
        "This form was not sent with a valid security token (it may be from an older page or "
        "another site). Reload the page and try again.",
    )


def _refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFound):
        return _error_page(request, 404, "Not found", f"No {exc.kind} {exc.key} that you can see.")
    if isinstance(exc, PermissionDenied):
        return _error_page(request, 403, "Not allowed", "You are not allowed to do this.")
    if isinstance(exc, RateLimited):
        return _error_page(
            request,
            429,
            "Too many attempts",
            exc.message,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, Conflict | ValidationError):
        return _error_page(request, 409 if isinstance(exc, Conflict) else 422, "Refused", str(exc))
    return _error_page(request, 400, "Refused", str(exc))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/"):
        # Unknown API paths fall through to this app; API clients still get problem+json.
        return problem(exc.status_code, str(exc.detail), slug="not-found")
    if exc.status_code == 404:
        return _error_page(request, 404, "Not found", "There is no page at this address.")
    if exc.status_code == 405:
        return _error_page(request, 405, "Not allowed", "This page does not take that method.")
    return _error_page(request, exc.status_code, "Error", str(exc.detail))


def _bad_request(request: Request, _exc: Exception) -> Response:
    # Raw input is never echoed back in an error page.
    return _error_page(request, 400, "Bad request", "The request was malformed.")
