"""An HTTP client on the real app, bound to the test's rolled-back transaction, with API keys
for every persona of tests/factories/world.py."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mailwarden.api.app import create_app
from mailwarden.api.context import Runtime
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.settings import Settings
from tests.conftest import UowFactory

# Persona -> how its key is made: (admin, domains it is narrowed to, read-only).
PERSONA_KEYS: dict[str, tuple[str, list[str], bool]] = {
    "superadmin": ("root", [], False),
    "domain_admin_a": ("alice", [], False),
    "domain_admin_b": ("bob", [], False),
    "read_only": ("root", [], True),
    "narrowed_a": ("root", ["a.example"], False),
}
PERSONAS = ("anonymous", *PERSONA_KEYS)


def make_key(
    make_uow: UowFactory, admin: str, domains: list[str] | None = None, read_only: bool = False
) -> str:
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        data = parse(
            ApiKeyCreate, {"admin": admin, "domains": domains or [], "read_only": read_only}
        )
        created = apikeys.create(uow, operator, data)
        uow.finish()
    return created.key


@dataclass
class Api:
    """`api.get(path, as_="superadmin")`: requests as a persona (anonymous sends no key)."""

    client: TestClient
    keys: dict[str, str]
    app: FastAPI

    def headers(self, persona: str) -> dict[str, str]:
        if persona == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.keys[persona]}"}

    def request(self, method: str, path: str, *, as_: str = "superadmin", **kwargs: Any) -> Any:
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@contextmanager
def api_on(connection: Connection, settings: Settings, keys: dict[str, str]) -> Iterator[Api]:
    """The app with sessions inside the test's outer transaction (its commits are savepoints)."""

    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    app = create_app(settings, sessions=sessions)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, keys, app)


def sessions_on(connection: Connection) -> Callable[[], Session]:
    """Sessions inside the test's outer transaction (their commits are savepoints)."""

    def sessions() -> Session:
        return Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return sessions


def _unbound_sessions() -> Session:
    raise AssertionError("bind the shared app to the test's transaction with api_rebound()")


@functools.cache
def shared_app(
    *, max_body_bytes: int | None = None, trusted_proxies: tuple[str, ...] = ()
) -> FastAPI:
    """One app per test process (and per build-time setting), for api_rebound().

    Only what the middleware reads at build time is a parameter; the rest of the settings come
    with each test through api_rebound().
    """
    build_time: dict[str, Any] = {"trusted_proxies": list(trusted_proxies)}
    if max_body_bytes is not None:
        build_time["max_body_bytes"] = max_body_bytes
    settings = Settings(data_dir=Path(tempfile.gettempdir()), **build_time)
    return create_app(settings, sessions=_unbound_sessions)


@contextmanager
def api_rebound(
    app: FastAPI, connection: Connection, settings: Settings, keys: dict[str, str]
) -> Iterator[Api]:
    """An app built once (shared_app()), bound to this test's transaction and settings.

    create_app() costs a few hundred milliseconds with every router (FastAPI builds the OpenAPI
    document), more than many tests want to pay each. Only the runtime settings follow
    `settings`; the ones the middleware read at build time (max_body_bytes, trusted_proxies)
    stay those the app was built with.
    """
    app.state.runtime = Runtime(settings, sessions_on(connection))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, keys, app)


def make_persona_keys(make_uow: UowFactory) -> dict[str, str]:
    """A key for every persona of PERSONA_KEYS (the world must exist)."""
    return {
        persona: make_key(make_uow, admin, domains, read_only)
        for persona, (admin, domains, read_only) in PERSONA_KEYS.items()
    }
