"""The authorization matrix: every declared route, as every persona, answers as its declaration
(api/access.py) and the rules in api_routes.expected_status promise.

Mutations expected to succeed are sent as dry runs; mutations expected to be refused are sent
for real. Either way the object must be unchanged afterwards (as a superadmin reads it) and the
audit log must have no new entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from mailwarden.api import app as app_module
from mailwarden.api.access import DeclaredRoute, declared_routes, requires
from mailwarden.api.app import create_app, route_table
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.permissions import Permission
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional import api_helpers
from tests.functional.api_helpers import Api, api_rebound, make_persona_keys, shared_app
from tests.functional.api_routes import (
    DOMAIN_OF,
    EXAMPLES,
    KNOWN_BUGS,
    PERSONAS,
    Call,
    Example,
    Kind,
    expected_status,
    fill,
    placeholders,
)

DECLARED = declared_routes(route_table())
GET_TEMPLATES = {route.path for route in DECLARED if route.method == "GET"}
# Using a key records when and from where; that is not a change to the object.
VOLATILE_FIELDS = frozenset({"last_used_at", "last_used_from"})


def _no_sessions() -> Session:
    raise AssertionError("an app that refuses to start never opens a session")


@pytest.fixture
def built_app() -> FastAPI:
    return shared_app()


@pytest.fixture
def persona_keys(world: World, make_uow: UowFactory) -> dict[str, str]:
    return make_persona_keys(make_uow)


def _witness(route: DeclaredRoute, path: str) -> str:
    """The nearest GET route at or above the mutated path: where a change would show."""
    template_parts, parts = route.path.split("/"), path.split("/")
    for cut in range(len(template_parts), 1, -1):
        if "/".join(template_parts[:cut]) in GET_TEMPLATES:
            return "/".join(parts[:cut])
    raise AssertionError(f"no GET route shows what {route.method} {route.path} changes")


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def _last_audit_id(make_uow: UowFactory) -> int:
    with make_uow(dry_run=True) as uow:
        return uow.session.scalar(select(func.max(AuditEntry.id))) or 0


def _observe(api: Api, make_uow: UowFactory, witness: str) -> tuple[int, Any, int]:
    response = api.get(witness, as_="superadmin")
    body = response.json() if response.status_code != 204 else None
    return response.status_code, _without_volatile(body), _last_audit_id(make_uow)


def _check_list(example: Example, persona_name: str, body: dict[str, Any], label: str) -> None:
    persona = PERSONAS[persona_name]
    items = body["items"]
    assert items, f"{label}: the list is empty, so it proves nothing about scoping"
    if example.item_domain:
        seen = {item[example.item_domain] for item in items}
        if persona.reach is None:
            assert {"a.example", "b.example"} <= seen, f"{label}: {seen}"
        else:
            assert seen == {DOMAIN_OF[persona.reach]}, f"{label} shows other domains: {seen}"
    if example.item_admin:
        owners = {item[example.item_admin] for item in items}
        if persona.reach is None:
            assert {"root", "alice", "bob"} <= owners, f"{label}: {owners}"
        else:
            assert owners == {persona.admin}, f"{label} shows other admins': {owners}"


def _check_refusal_shape(response: Any, status: int, label: str) -> None:
    assert response.headers["content-type"] == "application/problem+json", label
    assert response.json()["status"] == status, label
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), label


def _run_call(
    api: Api,
    make_uow: UowFactory,
    route: DeclaredRoute,
    example: Example,
    persona: str,
    call: Call,
) -> str | None:
    """Send one call and check it; returns what is wrong when it shows a known bug."""
    names = placeholders(persona, api.keys)
    path, body = fill(call.path, names), fill(call.body, names)
    status = expected_status(route.method, route.access, persona, call.kind)
    status = example.overrides.get((persona, call.kind), status)
    known_bug = KNOWN_BUGS.get((route.method, route.path, persona, call.kind))
    label = f"{route.method} {path} as {persona} ({call.kind})"
    mutation = route.method != "GET"
    before = _observe(api, make_uow, _witness(route, path)) if mutation else None
    # A mutation the rules allow is sent as a dry run: the check must not change anything.
    params = {**call.query, **({"dry_run": "true"} if mutation and status == 200 else {})}
    response = api.request(route.method, path, as_=persona, json=body, params=params)
    if known_bug is not None:
        assert response.status_code != status, f"{label} is fixed: drop it from KNOWN_BUGS"
        return f"{label} answered {response.status_code}: {known_bug}"
    assert response.status_code == status, f"{label}: {response.status_code} {response.text}"
    if status >= 400:
        _check_refusal_shape(response, status, label)
    elif mutation:
        assert response.json().get("dry_run") is True, f"{label} is not a dry run: {response.text}"
    elif example.item_domain or example.item_admin:
        _check_list(example, persona, response.json(), label)
    if before is not None:
        after = _observe(api, make_uow, _witness(route, path))
        assert after[:2] == before[:2], f"{label} changed what {_witness(route, path)} shows"
        assert after[2] == before[2], f"{label} wrote an audit entry"
    return None


@pytest.mark.parametrize("route", DECLARED, ids=lambda route: f"{route.method} {route.path}")
def test_each_persona_gets_what_the_route_declares(
    route: DeclaredRoute,
    built_app: FastAPI,
    persona_keys: dict[str, str],
    make_uow: UowFactory,
    connection: Connection,
    settings: Settings,
    subtests: pytest.Subtests,
) -> None:
    example = EXAMPLES.get((route.method, route.path))
    assert example is not None, (
        f"{route.method} {route.path} has no example in tests/functional/api_routes.py"
    )
    if example.prepare is not None:
        example.prepare(make_uow)
    runtime_settings = settings.model_copy(update=example.settings)
    with api_rebound(built_app, connection, runtime_settings, persona_keys) as api:
        for persona in PERSONAS:
            with subtests.test(persona=persona):
                # Each persona starts from the same state, even after a refusal that was not.
                attempt = connection.begin_nested()
                try:
                    bugs = [
                        bug
                        for call in example.calls
                        if (bug := _run_call(api, make_uow, route, example, persona, call))
                    ]
                finally:
                    attempt.rollback()
                if bugs:
                    pytest.xfail("; ".join(bugs))


def test_every_declared_route_has_an_example() -> None:
    missing = [f"{r.method} {r.path}" for r in DECLARED if (r.method, r.path) not in EXAMPLES]
    assert not missing, f"add examples to tests/functional/api_routes.py for: {missing}"


def test_every_example_names_a_declared_route() -> None:
    declared = {(route.method, route.path) for route in DECLARED}
    assert not sorted(set(EXAMPLES) - declared)


def test_known_bugs_name_declared_routes_and_personas() -> None:
    declared = {(route.method, route.path) for route in DECLARED}
    for method, path, persona, _kind in KNOWN_BUGS:
        assert (method, path) in declared
        assert persona in PERSONAS


def test_the_matrix_covers_every_persona_the_api_fixture_has() -> None:
    assert set(PERSONAS) == set(api_helpers.PERSONAS)


def test_every_route_except_health_requires_a_key() -> None:
    public = [f"{r.method} {r.path}" for r in DECLARED if not r.access.authenticated]
    assert public == ["GET /healthz"]


def test_the_examples_cover_both_domains_wherever_a_route_acts_on_one() -> None:
    for (method, path), example in EXAMPLES.items():
        kinds = {call.kind for call in example.calls}
        if Kind.A in kinds or Kind.B in kinds:
            assert {Kind.A, Kind.B} <= kinds, f"{method} {path}"
        if Kind.OWN in kinds and path != "/api/v1/me" and not path.startswith("/api/v1/me/"):
            assert Kind.OTHERS in kinds, f"{method} {path}"


def _router_with_an_undeclared_route() -> APIRouter:
    router = APIRouter(prefix="/rogue")

    @router.get("/declared")
    @requires(Permission.DOMAIN_READ)
    def declared() -> dict[str, str]:
        return {}

    @router.post("/undeclared")
    def undeclared() -> dict[str, str]:
        return {}

    return router


def test_the_route_table_refuses_a_route_without_a_declaration() -> None:
    with pytest.raises(RuntimeError, match="POST /api/v1/rogue/undeclared"):
        declared_routes([("/api/v1", _router_with_an_undeclared_route())])


def test_the_app_does_not_start_with_an_undeclared_route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    routers = [*app_module.RESOURCE_ROUTERS, _router_with_an_undeclared_route()]
    monkeypatch.setattr(app_module, "RESOURCE_ROUTERS", routers)
    with pytest.raises(RuntimeError, match="undeclared"):
        create_app(Settings(data_dir=tmp_path), sessions=_no_sessions)
