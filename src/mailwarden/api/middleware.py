"""ASGI middleware: request metrics, and the problem+json answer to an oversized body.

Plain ASGI rather than BaseHTTPMiddleware: no extra task per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailwarden.kernel.actor import Actor

from .metrics import Metrics
from .problems import problem

key_log = logging.getLogger("mailwarden.api.keys")


class RequestRecorder:
    """Counts and times every request by method, route template and status, and logs every
    use of an API key with the key's id (mailwarden.api.keys), so a key's use can be traced
    in the logs as its changes can in the audit log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[int, str]) -> None:
        self.app = app
        self.metrics = metrics
        # Route object id -> full path template ("/api/v1/mailboxes/{address}").
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = self._route_of(scope)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
            actor = scope.get("state", {}).get("actor")
            if isinstance(actor, Actor) and actor.api_key is not None:
                key_log.info(
                    "key %s (%s) from %s: %s %s -> %d",
                    actor.api_key,
                    actor.username,
                    actor.client_address or "unknown",
                    scope["method"],
                    route,
                    status,
                )

    def _route_of(self, scope: Scope) -> str:
        # The template, never the raw path: raw paths would make a time series per mailbox and
        # put addresses into the metrics.
        route: Any = scope.get("route")
        if route is None:
            return "unmatched"
        path = self.templates.get(id(route), getattr(route, "path", None))
        return path if isinstance(path, str) else "unmatched"


class BodyLimit:
    """413 as problem+json for a body above `limit` bytes, announced or streamed.

    Starlette's (and so FastAPI's) body limit answers an announced Content-Length in plain
    text, from outside the app's middleware; every error of this API is problem+json, so the
    limit lives here. A body is never buffered whole before the check.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._announced(scope) > self.limit:
            await self._refuse(scope, receive, send)
            return
        detail = f"request bodies are limited to {self.limit} bytes"
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # An HTTPException, because FastAPI turns anything else raised while it
                    # reads a body into "400 error parsing the body".
                    raise HTTPException(413, detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if started or exc.status_code != 413:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"request bodies are limited to {self.limit} bytes")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    @staticmethod
    def _announced(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return -1
        return -1
