"""What every route gets: the authenticated actor and units of work, and how results leave.

Authentication runs once per request (FastAPI caches the dependency). Failed attempts are
counted per key id and per client address in the database, so every worker shares the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy.orm import Session

from mailwarden.apikeys import service as apikeys
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import RateLimited, ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.throttle import service as throttle

from .problems import problem

T = TypeVar("T")
# Header names stay ASCII and single-line whatever a follow-up failure says.
_FOLLOW_UP_HEADER = "Mailwarden-Follow-Up-Failed"
# Services name a list's search `search` (the CLI's --search); the API's parameter is `q`.
_LIST_PARAMETERS = {"search": "q"}


@dataclass(frozen=True, slots=True)
class Runtime:
    """Built once per app: the settings and where sessions come from."""

    settings: Settings
    sessions: Callable[[], Session]

    def unit_of_work(self, *, dry_run: bool) -> UnitOfWork:
        return UnitOfWork(self.sessions(), self.settings, dry_run=dry_run)


def runtime_of(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


def client_address(request: Request) -> str | None:
    """The peer, or what a trusted proxy said it is (the proxy middleware rewrote it)."""
    return request.client.host if request.client else None


class AuthenticationFailed(Exception):
    """Answered with 401 and a WWW-Authenticate challenge (RFC 6750)."""

    def __init__(self, detail: str, error: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


def challenge(exc: AuthenticationFailed) -> JSONResponse:
    value = 'Bearer realm="mailwarden"'
    if exc.error:
        value += f', error="{exc.error}"'
    return problem(401, exc.detail, slug="unauthenticated", headers={"WWW-Authenticate": value})


bearer = HTTPBearer(
    auto_error=False,
    description="An API key made by `mailwarden apikey create` or POST /api/v1/api-keys.",
)


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    if credentials is None:
        raise AuthenticationFailed("send an API key as `Authorization: Bearer <key>`", None)
    runtime = runtime_of(request)
    settings = runtime.settings
    client = client_address(request)
    token = credentials.credentials
    client_subject = throttle.client(settings, client)
    subjects = [client_subject]
    if parsed := apikeys.parse_token(token):
        subjects.append(throttle.api_key(settings, parsed[0]))
    with runtime.unit_of_work(dry_run=False) as uow:
        # A blocked client address is refused outright, even with a valid key.
        throttle.ensure_allowed(uow, [client_subject])
        # A key id is public (listings, audit entries), so a key under attack must not lock out
        # the holder of its secret: its counter throttles wrong secrets only.
        key_wait = throttle.blocked_for(uow, subjects[1:])
        try:
            actor = apikeys.authenticate(uow, token, client)
        except apikeys.InvalidKey:
            uow.session.rollback()
            throttle.record_failure(uow, subjects)
            uow.finish()
            if key_wait is not None:
                raise RateLimited(key_wait) from None
            raise AuthenticationFailed(
                "the API key is invalid, revoked or expired", "invalid_token"
            ) from None
        uow.finish()
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(authenticate)]


class DryRunPlan(BaseModel):
    """What a mutation would do; nothing was changed."""

    dry_run: bool
    plan: list[dict[str, Any]]


DryRun = Annotated[
    bool,
    Query(description="Run every rule and return the plan of changes, then change nothing."),
]


def as_json(value: Any) -> Any:
    """Schemas, dataclasses, moments and containers of them, as JSON values."""
    return to_jsonable_python(value)


def page_body(page: Page[Any]) -> dict[str, Any]:
    return {"items": [as_json(item) for item in page.items], "next_cursor": page.next_cursor}


@dataclass(frozen=True, slots=True)
class ApiContext:
    actor: Actor
    runtime: Runtime

    def read(self, action: Callable[[UnitOfWork, Actor], T]) -> T:
        """A read in its own transaction, rolled back: reads never leave anything behind."""
        with self.runtime.unit_of_work(dry_run=True) as uow:
            return action(uow, self.actor)

    def respond(self, action: Callable[[UnitOfWork, Actor], Any]) -> JSONResponse:
        return JSONResponse(as_json(self.read(action)))

    def list(self, action: Callable[[UnitOfWork, Actor], Page[Any]]) -> JSONResponse:
        try:
            page = self.read(action)
        except ValidationError as error:
            raise error.renamed(_LIST_PARAMETERS) from None
        return JSONResponse(page_body(page))

    def mutate(
        self,
        action: Callable[[UnitOfWork, Actor], Any],
        *,
        dry_run: bool,
        status: int = 200,
    ) -> Response:
        """One change in one transaction; on a dry run the same change, rolled back."""
        with self.runtime.unit_of_work(dry_run=dry_run) as uow:
            result = action(uow, self.actor)
            plan = uow.finish()
        if dry_run:
            return JSONResponse({"dry_run": True, "plan": [change.as_dict() for change in plan]})
        headers = {}
        if uow.follow_up_failures:
            # The change stands; the host work after it did not happen. Say so, in one line.
            text = "; ".join(str(failure) for failure in uow.follow_up_failures)
            headers[_FOLLOW_UP_HEADER] = _header_safe(text)
        if result is None:
            return Response(status_code=204, headers=headers)
        return JSONResponse(as_json(result), status_code=status, headers=headers)


def _header_safe(text: str) -> str:
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return printable[:1000]


def api_context(request: Request, actor: CurrentActor) -> ApiContext:
    return ApiContext(actor, runtime_of(request))


Context = Annotated[ApiContext, Depends(api_context)]
