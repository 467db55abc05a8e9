"""The HTTP application: the API under /api/v1, its OpenAPI document and docs, health, metrics,
and the web console and portal mounted at `/` behind them.

`create_app()` builds everything from settings; nothing is built at import time, so uvicorn
workers (`--factory`) and tests each get their own engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mailwarden import __version__
from mailwarden.db.engine import build_engine, session_factory
from mailwarden.settings import Settings
from mailwarden.web.app import create_web_app

from . import access, problems
from .context import AuthenticationFailed, Runtime, authenticate, challenge
from .metrics import Metrics
from .middleware import BodyLimit, RequestRecorder
from .routes import (
    admins,
    alias_domains,
    aliases,
    api_keys,
    app_passwords,
    audit,
    domains,
    health,
    hosts,
    mailboxes,
    me,
    queue,
    registrations,
    system,
    traffic,
)

API_PREFIX = "/api/v1"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = "/api/docs"

# The resources under /api/v1; every route needs a valid key (the dependency below).
RESOURCE_ROUTERS: list[APIRouter] = [
    domains.router,
    mailboxes.router,
    app_passwords.router,
    aliases.router,
    alias_domains.router,
    admins.router,
    audit.router,
    api_keys.router,
    me.router,
    registrations.router,
    traffic.router,
    hosts.router,
    health.router,
    queue.router,
]


def route_table() -> list[tuple[str, APIRouter]]:
    """Every router with the prefix it is served under: the source of the permission matrix."""
    return [(API_PREFIX, router) for router in RESOURCE_ROUTERS] + [("", system.router)]


def create_app(
    settings: Settings | None = None, *, sessions: Callable[[], Session] | None = None
) -> FastAPI:
    """Build the app. `sessions` replaces the engine (tests bind sessions to their transaction)."""
    settings = settings or Settings()
    engine = None
    if sessions is None:
        engine = build_engine(settings.effective_database_url)
        sessions = session_factory(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="mailwarden",
        version=__version__,
        summary="Domains, mailboxes, aliases and admins of the Postfix/Dovecot SQL database.",
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = Runtime(settings, sessions)
    app.state.metrics = Metrics()
    problems.install(app)
    app.add_exception_handler(AuthenticationFailed, _unauthenticated)

    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(authenticate)], responses=problems.ERROR_RESPONSES
    )
    for router in RESOURCE_ROUTERS:
        api.include_router(router)
    app.include_router(api)
    app.include_router(system.router)
    # Refuses to build an app with an undeclared route, and documents the declarations.
    declared = access.declared_routes(route_table())
    access.document(app, declared)

    templates = {id(entry.route): entry.path for entry in declared}
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestRecorder, metrics=app.state.metrics, templates=templates)
    # Last: the console takes every path the API did not (see mailwarden.web).
    web = create_web_app(app.state.runtime)
    # One state for both: whoever rebinds the runtime (tests) rebinds the console's too.
    web.state = app.state
    app.mount("/", web)
    if settings.trusted_proxies:
        # Only these peers may say who the client is (X-Forwarded-For) and how it connected.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthenticationFailed)
    return challenge(exc)
