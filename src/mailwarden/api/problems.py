"""RFC 9457 problem details: the one place where errors become HTTP responses.

The domain error tree maps to statuses here and nowhere else. Nothing unexpected reaches a
client: an unhandled exception is logged with its traceback and answered with a bare 500.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailwarden.kernel.errors import (
    Conflict,
    FieldIssue,
    LimitExceeded,
    MailwardenError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from mailwarden.stack.hosts.errors import HostError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("mailwarden.api")


class ProblemIssue(BaseModel):
    field: str
    rule: str
    message: str


class Problem(BaseModel):
    """What every error response carries (RFC 9457), plus `errors` for broken input rules."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemIssue] | None = None


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    issues: list[FieldIssue] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"urn:mailwarden:problem:{slug}" if slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    if issues is not None:
        body["errors"] = [
            {"field": issue.field, "rule": issue.rule, "message": issue.message} for issue in issues
        ]
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def from_error(error: MailwardenError) -> JSONResponse:
    """The status each branch of the error tree means over HTTP."""
    if isinstance(error, RateLimited):
        return problem(
            429,
            error.message,
            slug="rate-limited",
            headers={"Retry-After": str(error.retry_after)},
        )
    if isinstance(error, LimitExceeded):
        return problem(422, error.message, slug="limit-exceeded", issues=error.issues)
    if isinstance(error, ValidationError):
        return problem(422, error.message, slug="validation", issues=error.issues)
    if isinstance(error, NotFound):
        return problem(404, error.message, slug="not-found")
    if isinstance(error, PermissionDenied):
        return problem(403, error.message, slug="forbidden")
    if isinstance(error, Conflict):
        issue = FieldIssue(error.field, error.rule, error.message)
        return problem(409, error.message, slug="conflict", issues=[issue])
    return problem(400, error.message, slug="refused")


def _location(loc: tuple[Any, ...]) -> str:
    # ("body", "quota_bytes") -> "quota_bytes"; ("query", "limit") -> "limit": the names the
    # service errors use too.
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [
        FieldIssue(_location(tuple(error.get("loc", ()))), error["type"], error["msg"])
        for error in exc.errors()
    ]
    detail = "; ".join(str(issue) for issue in issues) or "the request is not valid"
    return problem(422, detail, slug="validation", issues=issues)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, headers=headers)


def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailwardenError)
    return from_error(exc)


def _host_error(request: Request, exc: Exception) -> JSONResponse:
    # The mail host, not this server, failed: a gateway error, with what the host said.
    assert isinstance(exc, HostError)
    log.warning("host operation failed on %s %s: %s", request.method, request.url.path, exc)
    return problem(502, str(exc), slug="host-failed")


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, OperationalError):
        return problem(503, "the database is unreachable or refused the operation")
    return problem(500, "the database refused the operation")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(MailwardenError, _domain_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(HostError, _host_error)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every route, so clients (and the schema fuzzer) know each error's shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in (
        (400, "The request cannot be parsed (e.g. a body that is not JSON), or was refused"),
        (401, "No valid API key"),
        (403, "The key's admin lacks the permission"),
        (404, "No such object within the key's reach"),
        (409, "Conflicts with what is stored"),
        (413, "Request body too large"),
        (422, "Input breaks a rule; `errors` names each field and rule"),
        (429, "Too many failed authentications; see Retry-After"),
    )
}
