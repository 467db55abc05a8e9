"""The security baseline (docs/security.md) over HTTP: each test is named after what it guards."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.schemas import AdminCreate
from mailwarden.api.access import declared_routes
from mailwarden.api.app import OPENAPI_URL, route_table
from mailwarden.api.context import Runtime
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.models import ApiKey
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes.models import Mailbox
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.api_helpers import (
    Api,
    api_rebound,
    make_key,
    make_persona_keys,
    shared_app,
)
from tests.functional.api_routes import (
    EXAMPLES,
    NEW_PASSWORD,
    add_alias_domains,
    add_app_passwords,
    fill,
    key_id,
    placeholders,
    request_registrations,
)

DECLARED = declared_routes(route_table())
V1 = "/api/v1"
OPERATOR = Actor.local_operator(Channel.SYSTEM)
PROBLEM_JSON = "application/problem+json"

# What a response must never contain: stored hashes (any scheme), their column names, tokens.
SECRET_MARKERS = ("{SHA", "{BLF", "{ARGON", "{PBKDF2", "$6$", "$5$", "$2b$", "$argon2")
SECRET_NAMES = ("secret_hash", "password_hash")
TOKEN = re.compile(r"mw_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
# What an error body must never contain: the inside of the server.
INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|line \d+|sqlalchemy|psycopg|pymysql|sqlite3|"
    r"\b[A-Z]\w*(Error|Exception)\b"
)


@pytest.fixture
def built_app() -> FastAPI:
    return shared_app()


@pytest.fixture
def keys(world: World, make_uow: UowFactory) -> dict[str, str]:
    return make_persona_keys(make_uow)


@pytest.fixture
def api(
    built_app: FastAPI, keys: dict[str, str], connection: Connection, settings: Settings
) -> Iterator[Api]:
    """The conftest `api`, on an app built once per process (create_app is slow)."""
    with api_rebound(built_app, connection, settings, keys) as client:
        yield client


@contextmanager
def from_peer(api: Api, host: str) -> Iterator[Api]:
    """The same app, reached from another peer address."""
    with TestClient(api.app, raise_server_exceptions=False, client=(host, 40000)) as client:
        yield Api(client, api.keys, api.app)


def _last_audit_id(make_uow: UowFactory) -> int:
    with make_uow(dry_run=True) as uow:
        return uow.session.scalar(select(func.max(AuditEntry.id))) or 0


def _stored_hashes(make_uow: UowFactory) -> list[str]:
    with make_uow(dry_run=True) as uow:
        return [
            *uow.session.scalars(select(Mailbox.password_hash)),
            *uow.session.scalars(select(Admin.password_hash)),
            *uow.session.scalars(select(ApiKey.secret_hash)),
        ]


def assert_no_secrets(
    text: str, label: str, hashes: Sequence[str] = (), tokens: Sequence[str] = ()
) -> None:
    for marker in (*SECRET_MARKERS, *SECRET_NAMES):
        assert marker not in text, f"{label} shows {marker!r}: {text[:500]}"
    assert not TOKEN.search(text), f"{label} shows an API key token"
    for stored in hashes:
        # The part after the {SCHEME} prefix: a hash must not show up in any form.
        assert stored.split("}", 1)[-1] not in text, f"{label} shows a stored hash"
    for token in tokens:
        assert token.split("_", 2)[2] not in text, f"{label} shows a key's secret"


def assert_bare_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert not INTERNALS.search(response.text), f"an error body shows internals: {response.text}"
    return body


def _fields(body: dict[str, Any]) -> list[str]:
    return [issue["field"] for issue in body.get("errors") or []]


# --- mass assignment ----------------------------------------------------------------------

_NEW_MAILBOX = {"address": "new@a.example", "password": NEW_PASSWORD}
_NEW_ADMIN = {
    "username": "carol",
    "role": "domain-admin",
    "domains": ["a.example"],
    "password": NEW_PASSWORD,
}
_OWN_PASSWORD = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
# (method, path, a valid body, fields a caller could hope to set through it)
_MASS_ASSIGNABLE = [
    ("POST", f"{V1}/mailboxes", _NEW_MAILBOX, ("password_hash", "domain_id", "maildir")),
    ("PATCH", f"{V1}/mailboxes/user1@a.example", {"name": "x"}, ("password_hash", "domain_id")),
    (
        "POST",
        f"{V1}/mailboxes/user1@a.example/password",
        {"password": NEW_PASSWORD},
        ("password_hash",),
    ),
    (
        "PUT",
        f"{V1}/mailboxes/user1@a.example/vacation",
        {"subject": "s", "body": "b"},
        ("mailbox_id",),
    ),
    (
        "PUT",
        f"{V1}/mailboxes/user1@a.example/forward",
        {"targets": ["x@c.example"]},
        ("mailbox_id",),
    ),
    (
        "POST",
        f"{V1}/aliases",
        {"address": "new@a.example", "targets": ["user1@a.example"]},
        ("domain_id",),
    ),
    ("PATCH", f"{V1}/aliases/info@a.example", {"active": True}, ("domain_id",)),
    ("PATCH", f"{V1}/domains/a.example", {"description": "x"}, ("id", "removed_at")),
    ("POST", f"{V1}/api-keys", {"name": "ci"}, ("secret_hash", "narrowed", "role")),
    ("POST", f"{V1}/me/password", _OWN_PASSWORD, ("role", "username")),
    ("POST", f"{V1}/admins", _NEW_ADMIN, ("password_hash", "id")),
    ("PATCH", f"{V1}/admins/alice", {"active": True}, ("username", "password_hash")),
    ("POST", f"{V1}/admins/alice/password", {"password": NEW_PASSWORD}, ("role",)),
    (
        "POST",
        f"{V1}/alias-domains",
        {"alias_domain": "new.example", "target_domain": "a.example"},
        ("target_domain_id",),
    ),
]
MASS_ASSIGNMENT = [
    (method, path, body, field)
    for method, path, body, fields in _MASS_ASSIGNABLE
    for field in fields
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    MASS_ASSIGNMENT,
    ids=[f"{m} {p} +{f}" for m, p, _b, f in MASS_ASSIGNMENT],
)
def test_unknown_body_fields_are_refused_by_name(
    api: Api, make_uow: UowFactory, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    # As the one who would gain from it: a domain admin, where it may call the route at all.
    persona = "superadmin" if "/admins" in path or "alias-domains" in path else "domain_admin_a"
    before = _last_audit_id(make_uow)
    response = api.request(method, path, as_=persona, json={**body, field: 1})
    problem = assert_bare_problem(response, 422)
    assert field in _fields(problem), problem
    assert _last_audit_id(make_uow) == before


# --- secrets ------------------------------------------------------------------------------


def _make_history(api: Api, make_uow: UowFactory) -> list[str]:
    """Real changes through the API that involve secrets; returns the secrets they used."""
    secret_texts = ["a new mailbox password", "an admin's new password", "a reset password"]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{V1}/mailboxes", {"address": "new@a.example", "password": secret_texts[0]}),
        ("POST", f"{V1}/mailboxes/user1@a.example/password", {"password": secret_texts[2]}),
        ("POST", f"{V1}/mailboxes", {"address": "gen@a.example", "random_password": True}),
        (
            "POST",
            f"{V1}/admins",
            {
                "username": "carol",
                "role": "domain-admin",
                "domains": ["a.example"],
                "password": secret_texts[1],
            },
        ),
        ("POST", f"{V1}/admins/carol/password", {"random_password": True}),
        ("PUT", f"{V1}/mailboxes/user1@a.example/vacation", {"subject": "Away", "body": "Later."}),
        ("PUT", f"{V1}/mailboxes/user1@a.example/forward", {"targets": ["x@elsewhere.example"]}),
        ("POST", f"{V1}/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    ]
    for method, path, body in steps:
        response = api.request(method, path, json=body)
        assert response.status_code in (200, 201, 204), f"{method} {path}: {response.text}"
    created = api.post(f"{V1}/api-keys", json={"name": "made over the API"})
    assert created.status_code == 201, created.text
    secret_texts.append(created.json()["key"])
    revoked = api.delete(f"{V1}/api-keys/{created.json()['id']}")
    assert revoked.status_code == 200, revoked.text
    return [*secret_texts, NEW_PASSWORD]


def test_no_read_shows_a_password_hash_or_a_key_token(
    api: Api, make_uow: UowFactory, keys: dict[str, str]
) -> None:
    add_alias_domains(make_uow)
    add_app_passwords(make_uow)
    request_registrations(make_uow)
    used = _make_history(api, make_uow)
    hashes = _stored_hashes(make_uow)
    names = placeholders("superadmin", keys)
    extra_reads = [
        f"{V1}/mailboxes?removed=true",
        f"{V1}/api-keys?include_inactive=true",
        f"{V1}/audit?limit=500",
        OPENAPI_URL,
    ]
    read_examples = [
        EXAMPLES[(route.method, route.path)] for route in DECLARED if route.method == "GET"
    ]
    # The hosts the host reads need, each registered once (the world has no hosts).
    host_setups = [
        example.prepare
        for example in read_examples
        if example.prepare and example.calls[0].path.startswith(f"{V1}/hosts/")
    ]
    for prepare in dict.fromkeys(host_setups):
        prepare(make_uow)
    reads = [fill(call.path, names) for example in read_examples for call in example.calls]
    for path in [*reads, *extra_reads]:
        response = api.get(path)
        # These tests have no Postfix: a read that asks a host's daemons answers 502, and its
        # error text must keep secrets out as much as any answer.
        allowed = (200, 502) if path.startswith(f"{V1}/hosts/") else (200,)
        assert response.status_code in allowed, f"{path}: {response.text}"
        assert_no_secrets(response.text, f"GET {path}", hashes, [*keys.values(), used[3]])
        for text in used:
            assert text not in response.text, f"GET {path} shows a password or token"


def test_no_dry_run_plan_shows_a_secret(
    api: Api, make_uow: UowFactory, keys: dict[str, str]
) -> None:
    add_alias_domains(make_uow)
    add_app_passwords(make_uow)
    request_registrations(make_uow)
    hashes = _stored_hashes(make_uow)
    names = placeholders("superadmin", keys)
    for route in DECLARED:
        if route.method == "GET":
            continue
        for call in EXAMPLES[(route.method, route.path)].calls:
            path = fill(call.path, names)
            response = api.request(
                route.method,
                path,
                json=fill(call.body, names),
                params={**call.query, "dry_run": "true"},
            )
            label = f"{route.method} {path} (dry run)"
            if response.status_code != 200:
                # Restoring a mailbox that is not removed is refused: refusals are answers too.
                assert_bare_problem(response, response.status_code)
            assert_no_secrets(response.text, label, hashes, list(keys.values()))
            assert NEW_PASSWORD not in response.text, label


def test_audit_entries_of_api_changes_name_the_key_and_hold_no_secret(
    api: Api, make_uow: UowFactory, keys: dict[str, str]
) -> None:
    first = _last_audit_id(make_uow)
    used = _make_history(api, make_uow)
    entries = [
        entry
        for entry in api.get(f"{V1}/audit", params={"limit": 500}).json()["items"]
        if entry["id"] > first
    ]
    actions = {entry["action"] for entry in entries}
    assert {"mailbox.create", "mailbox.password", "admin.create", "admin.password"} <= actions
    assert {"api_key.create", "api_key.revoke"} <= actions
    for entry in entries:
        assert entry["channel"] == "api", entry
        assert entry["api_key"] == key_id(keys["superadmin"]), entry
        assert entry["client_address"] == "testclient", entry
    text = str(entries)
    assert_no_secrets(text, "the audit log", _stored_hashes(make_uow), list(keys.values()))
    for secret in used:
        assert secret not in text


# --- acting on superadmins and protected addresses -----------------------------------------


@pytest.fixture
def superadmin_with_a_mailbox(world: World, make_uow: UowFactory) -> str:
    """A superadmin whose login is a mailbox in a.example, alice's domain."""
    with make_uow() as uow:
        data = parse(AdminCreate, {"username": "user1@a.example", "role": Role.SUPERADMIN})
        admins.create(uow, OPERATOR, data, password=PASSWORD)
        uow.finish()
    return "user1@a.example"


GUARDED_MAILBOX_CHANGES = [
    ("POST", "password", {"password": NEW_PASSWORD}),
    ("PATCH", "", {"name": "taken over"}),
    ("DELETE", "", None),
    ("PUT", "vacation", {"subject": "Away", "body": "Gone."}),
    ("PUT", "forward", {"targets": ["attacker@b.example"]}),
]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    GUARDED_MAILBOX_CHANGES,
    ids=[f"{m} {s or 'mailbox'}" for m, s, _ in GUARDED_MAILBOX_CHANGES],
)
@pytest.mark.parametrize("persona", ["domain_admin_a", "narrowed_a"])
def test_a_domain_admin_cannot_take_over_a_superadmins_mailbox(
    api: Api,
    make_uow: UowFactory,
    superadmin_with_a_mailbox: str,
    persona: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    path = f"{V1}/mailboxes/{superadmin_with_a_mailbox}" + (f"/{suffix}" if suffix else "")
    before = _last_audit_id(make_uow)
    shown = api.get(f"{V1}/mailboxes/{superadmin_with_a_mailbox}").json()
    assert_bare_problem(api.request(method, path, as_=persona, json=body), 403)
    assert api.get(f"{V1}/mailboxes/{superadmin_with_a_mailbox}").json() == shown
    assert _last_audit_id(make_uow) == before
    # The same request is fine for a superadmin: it is the guard that refused, nothing else.
    allowed = api.request(method, path, json=body, params={"dry_run": "true"})
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("persona", ["domain_admin_a", "narrowed_a"])
def test_a_domain_admin_cannot_remove_postmaster(
    api: Api, make_uow: UowFactory, persona: str
) -> None:
    path = f"{V1}/mailboxes/postmaster@a.example"
    before = _last_audit_id(make_uow)
    problem = assert_bare_problem(api.delete(path, as_=persona), 403)
    assert "postmaster" in problem["detail"]
    assert api.get(path).json()["removed_at"] is None
    assert _last_audit_id(make_uow) == before
    assert api.delete(path, params={"dry_run": "true"}).status_code == 200


def test_a_domain_admin_cannot_remove_a_protected_alias(api: Api, make_uow: UowFactory) -> None:
    created = api.post(
        f"{V1}/aliases", json={"address": "abuse@a.example", "targets": ["user1@a.example"]}
    )
    assert created.status_code == 201, created.text
    before = _last_audit_id(make_uow)
    assert_bare_problem(api.delete(f"{V1}/aliases/abuse@a.example", as_="domain_admin_a"), 403)
    assert api.get(f"{V1}/aliases/abuse@a.example").status_code == 200
    assert _last_audit_id(make_uow) == before


# --- injection through sort, filters and cursors -------------------------------------------

SORTED_LISTS = [
    f"{V1}/domains",
    f"{V1}/mailboxes",
    f"{V1}/aliases",
    f"{V1}/alias-domains",
    f"{V1}/admins",
]
HOSTILE_SORTS = [
    "name; DROP TABLE domains",
    "password_hash",
    "-password_hash",
    "(SELECT 1)",
    "name DESC",
    "1",
    "name,id",
]
HOSTILE_CURSORS = ["' OR 1=1 --", "1; DROP TABLE domains", "eyJpZCI6IDF9", "%00", "-1"]


@pytest.mark.parametrize("path", SORTED_LISTS)
def test_sort_outside_the_allow_list_is_refused(api: Api, path: str) -> None:
    for sort in HOSTILE_SORTS:
        problem = assert_bare_problem(api.get(path, params={"sort": sort}), 422)
        assert "sort" in _fields(problem), f"{path}?sort={sort}: {problem}"


# Lists whose cursor is opaque (it names its sort): anything not made by the server is refused.
OPAQUE_CURSOR_LISTS = [
    (f"{V1}/domains", {"sort": "-created_at"}),
    (f"{V1}/mailboxes", {"sort": "created_at"}),
    (f"{V1}/audit", {}),
]


@pytest.mark.parametrize(
    ("path", "query"), OPAQUE_CURSOR_LISTS, ids=[p for p, _ in OPAQUE_CURSOR_LISTS]
)
def test_a_forged_cursor_is_refused(api: Api, path: str, query: dict[str, str]) -> None:
    for cursor in HOSTILE_CURSORS:
        problem = assert_bare_problem(api.get(path, params={**query, "cursor": cursor}), 422)
        assert "cursor" in _fields(problem), f"{path}?cursor={cursor}: {problem}"


@pytest.mark.parametrize("path", [*SORTED_LISTS, f"{V1}/api-keys"])
def test_sql_in_a_cursor_is_only_a_position(api: Api, path: str) -> None:
    # Under the default sort a cursor is the last key of the previous page, compared as a bound
    # value: at most it starts the page elsewhere, it never widens what the list shows.
    everything = api.get(path).json()["items"]
    for cursor in HOSTILE_CURSORS:
        response = api.get(path, params={"cursor": cursor})
        assert response.status_code in (200, 422), f"{path}?cursor={cursor}: {response.text}"
        if response.status_code == 200:
            assert all(item in everything for item in response.json()["items"])
        else:
            assert _fields(assert_bare_problem(response, 422)), response.text


@pytest.mark.parametrize(
    "path", [f"{V1}/domains?cursor=not%20a%20domain", f"{V1}/api-keys?cursor=zz"]
)
def test_an_invalid_cursor_is_reported_under_its_parameter_name(api: Api, path: str) -> None:
    assert _fields(assert_bare_problem(api.get(path), 422)) == ["cursor"]


@pytest.mark.parametrize("path", SORTED_LISTS)
def test_sql_in_a_search_is_only_text(api: Api, path: str) -> None:
    for q in ["' OR '1'='1", "%' OR 1=1 --", "_", "%", "\\", "a'); DROP TABLE domains; --"]:
        response = api.get(path, params={"q": q})
        assert response.status_code == 200, f"{path}?q={q}: {response.text}"
        # Nothing in the world contains these characters: LIKE wildcards are escaped too.
        assert response.json()["items"] == [], f"{path}?q={q} matched {response.text}"


def test_sql_in_audit_filters_is_only_text(api: Api) -> None:
    for name in ("actor", "action", "object_type", "object_key"):
        response = api.get(f"{V1}/audit", params={name: "' OR '1'='1"})
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


# --- hostile paths and error bodies ---------------------------------------------------------

HOSTILE_SEGMENTS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "a%00b",
    "user1%00@a.example",
    "user1@a.example%0d%0aX-Injected:%20yes",
    "%ff%fe",
    "%F0%9F%92%A9@a.example",
    "'%20OR%20'1'='1",
    "%25",
    "user1@a.example%2F..%2Fuser1@b.example",
    "%EF%BD%95ser1@a.example",
    "%E2%80%AEelpmaxe.a@1resu",
    "x" * 10_000,
    "@" * 300,
]
PATH_ROUTES = [route for route in DECLARED if "{" in route.path]


@pytest.mark.parametrize("route", PATH_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_hostile_path_input_never_fails_the_server(
    api: Api, keys: dict[str, str], route: Any
) -> None:
    call = EXAMPLES[(route.method, route.path)].calls[0]
    body = fill(call.body, placeholders("superadmin", keys))
    template = route.path
    start, end = template.index("{"), template.index("}") + 1
    for segment in HOSTILE_SEGMENTS:
        path = template[:start] + segment + template[end:]
        for persona in ("superadmin", "domain_admin_a"):
            response = api.request(
                route.method, path, as_=persona, json=body, params={"dry_run": "true"}
            )
            label = f"{route.method} {path[:120]} as {persona}"
            assert response.status_code < 500, f"{label}: {response.text}"
            if response.status_code >= 400:
                assert_bare_problem(response, response.status_code)
            assert "X-Injected" not in response.headers, label


@contextmanager
def _client_with_sessions(sessions: Callable[[], Session], data_dir: Path) -> Iterator[TestClient]:
    app = shared_app()
    app.state.runtime = Runtime(Settings(data_dir=data_dir), sessions)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unexpected_error_is_a_bare_500(tmp_path: Path) -> None:
    def broken_sessions() -> Session:
        raise RuntimeError("cannot open /srv/secret/db.conf with password hunter2")

    with _client_with_sessions(broken_sessions, tmp_path) as client:
        response = client.get(
            f"{V1}/domains", headers={"Authorization": f"Bearer mw_{'0' * 12}_{'A' * 43}"}
        )
    body = assert_bare_problem(response, 500)
    assert set(body) == {"type", "title", "status", "detail"}
    assert "hunter2" not in response.text and "secret" not in response.text


def test_a_database_failure_does_not_show_the_statement(tmp_path: Path) -> None:
    def unreachable() -> Session:
        raise OperationalError(
            "SELECT password_hash FROM admins", {}, ConnectionError("db.internal:5432 refused")
        )

    with _client_with_sessions(unreachable, tmp_path) as client:
        response = client.get("/healthz")
    status = response.status_code
    assert status in (500, 503), response.text
    assert_bare_problem(response, status)
    assert "SELECT" not in response.text and "db.internal" not in response.text


# --- resource limits ------------------------------------------------------------------------


@pytest.fixture
def small_body_api(
    keys: dict[str, str], connection: Connection, settings: Settings
) -> Iterator[Api]:
    app = shared_app(max_body_bytes=1024)
    with api_rebound(app, connection, settings, keys) as client:
        yield client


def _oversized_domain() -> bytes:
    return b'{"name": "big.example", "description": "' + b"x" * 4000 + b'"}'


def test_an_announced_oversized_body_is_refused_with_413(
    small_body_api: Api, make_uow: UowFactory
) -> None:
    before = _last_audit_id(make_uow)
    response = small_body_api.post(
        f"{V1}/domains",
        content=_oversized_domain(),
        headers={"Content-Type": "application/json"},
    )
    assert_bare_problem(response, 413)
    assert _last_audit_id(make_uow) == before


def test_a_streamed_oversized_body_is_refused_with_413(
    small_body_api: Api, make_uow: UowFactory
) -> None:
    data = _oversized_domain()

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(data), 512):
            yield data[offset : offset + 512]

    before = _last_audit_id(make_uow)
    response = small_body_api.post(
        f"{V1}/domains", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_bare_problem(response, 413)
    assert _last_audit_id(make_uow) == before


def test_a_body_within_the_limit_passes(small_body_api: Api) -> None:
    response = small_body_api.post(
        f"{V1}/domains", json={"name": "small.example"}, params={"dry_run": "true"}
    )
    assert response.status_code == 200, response.text


# --- authentication -------------------------------------------------------------------------


@contextmanager
def throttled(
    built_app: FastAPI,
    connection: Connection,
    settings: Settings,
    keys: dict[str, str],
    **limits: int,
) -> Iterator[Api]:
    with api_rebound(built_app, connection, settings.model_copy(update=limits), keys) as api:
        yield api


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wrong_secret(token: str) -> str:
    return f"mw_{key_id(token)}_{'A' * 43}"


def _assert_rate_limited(response: Any) -> None:
    assert_bare_problem(response, 429)
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after


def test_failed_authentication_is_limited_per_key(
    built_app: FastAPI, connection: Connection, settings: Settings, keys: dict[str, str]
) -> None:
    with throttled(
        built_app,
        connection,
        settings,
        keys,
        auth_failures_per_account=3,
        auth_failures_per_client=100,
    ) as api:
        alice = keys["domain_admin_a"]
        for _ in range(3):
            response = api.get(f"{V1}/me", as_="anonymous", headers=_bearer(_wrong_secret(alice)))
            assert_bare_problem(response, 401)
        _assert_rate_limited(
            api.get(f"{V1}/me", as_="anonymous", headers=_bearer(_wrong_secret(alice)))
        )
        # Key ids are public (listings, audit entries): whoever holds the secret is not locked
        # out by someone guessing at its id ...
        assert api.get(f"{V1}/me", as_="domain_admin_a").status_code == 200
        # ... while the guessing stays throttled until the window ends.
        _assert_rate_limited(
            api.get(f"{V1}/me", as_="anonymous", headers=_bearer(_wrong_secret(alice)))
        )
        assert api.get(f"{V1}/me", as_="domain_admin_b").status_code == 200


def test_failed_authentication_is_limited_per_client_and_blocks_valid_keys_too(
    built_app: FastAPI, connection: Connection, settings: Settings, keys: dict[str, str]
) -> None:
    with throttled(
        built_app,
        connection,
        settings,
        keys,
        auth_failures_per_account=100,
        auth_failures_per_client=3,
    ) as api:
        with from_peer(api, "10.0.0.1") as guesser:
            for attempt in range(3):
                token = f"mw_{attempt:012x}_{'B' * 43}"
                response = guesser.get(f"{V1}/me", as_="anonymous", headers=_bearer(token))
                assert_bare_problem(response, 401)
            _assert_rate_limited(guesser.get(f"{V1}/me", as_="superadmin"))
        with from_peer(api, "10.0.0.2") as someone_else:
            assert someone_else.get(f"{V1}/me", as_="superadmin").status_code == 200


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(
    built_app: FastAPI, connection: Connection, settings: Settings, keys: dict[str, str]
) -> None:
    with (
        throttled(
            built_app,
            connection,
            settings,
            keys,
            auth_failures_per_account=100,
            auth_failures_per_client=2,
        ) as api,
        from_peer(api, "10.0.0.1") as peer,
    ):
        for n in range(2):
            headers = {**_bearer(f"mw_{n:012x}_{'C' * 43}"), "X-Forwarded-For": f"203.0.113.{n}"}
            assert_bare_problem(peer.get(f"{V1}/me", as_="anonymous", headers=headers), 401)
        # A new address in the header does not make a new client.
        fresh = {"X-Forwarded-For": "203.0.113.99"}
        _assert_rate_limited(peer.get(f"{V1}/me", as_="superadmin", headers=fresh))
    assert _last_used_from(api, keys["domain_admin_a"], peer_host="10.0.0.3") == "10.0.0.3"


def _last_used_from(api: Api, token: str, *, peer_host: str, forwarded: str = "") -> Any:
    """Use the key once from `peer_host` (saying `forwarded`), then read where it was used from."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with from_peer(api, peer_host) as peer:
        used = peer.get(f"{V1}/me", as_="anonymous", headers={**_bearer(token), **headers})
        assert used.status_code == 200, used.text
    return api.get(f"{V1}/api-keys/{key_id(token)}").json()["last_used_from"]


def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(
    keys: dict[str, str], connection: Connection, settings: Settings
) -> None:
    limits = {"auth_failures_per_account": 100, "auth_failures_per_client": 2}
    app = shared_app(trusted_proxies=("10.0.0.1",))
    with api_rebound(app, connection, settings.model_copy(update=limits), keys) as api:
        with from_peer(api, "10.0.0.1") as proxy:
            for n in range(2):
                headers = {**_bearer(f"mw_{n:012x}_{'D' * 43}"), "X-Forwarded-For": "203.0.113.7"}
                assert_bare_problem(proxy.get(f"{V1}/me", as_="anonymous", headers=headers), 401)
            blocked = {"X-Forwarded-For": "203.0.113.7"}
            _assert_rate_limited(proxy.get(f"{V1}/me", as_="superadmin", headers=blocked))
            # Another client behind the same proxy is another client.
            other = {"X-Forwarded-For": "203.0.113.8"}
            assert proxy.get(f"{V1}/me", as_="superadmin", headers=other).status_code == 200
        assert (
            _last_used_from(
                api, keys["domain_admin_a"], peer_host="10.0.0.1", forwarded="203.0.113.9"
            )
            == "203.0.113.9"
        )
        # Anyone else saying who the client is, is not believed.
        assert (
            _last_used_from(
                api, keys["domain_admin_b"], peer_host="10.0.0.2", forwarded="203.0.113.10"
            )
            == "10.0.0.2"
        )


def test_a_revoked_key_is_refused(api: Api, make_uow: UowFactory) -> None:
    token = make_key(make_uow, "alice")
    assert api.get(f"{V1}/me", as_="anonymous", headers=_bearer(token)).status_code == 200
    with make_uow() as uow:
        apikeys.revoke(uow, OPERATOR, key_id(token))
        uow.finish()
    response = api.get(f"{V1}/me", as_="anonymous", headers=_bearer(token))
    assert_bare_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_expired_key_is_refused(api: Api, make_uow: UowFactory) -> None:
    token = make_key(make_uow, "alice")
    assert api.get(f"{V1}/me", as_="anonymous", headers=_bearer(token)).status_code == 200
    with make_uow() as uow:
        # Keys cannot be made with a past expiry; this one simply ran out.
        uow.session.execute(
            update(ApiKey)
            .where(ApiKey.key_id == key_id(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        uow.finish()
    response = api.get(f"{V1}/me", as_="anonymous", headers=_bearer(token))
    assert_bare_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_malformed_authorization_header_is_refused_plainly(api: Api) -> None:
    for value in ("Bearer", "Bearer ", "Basic cm9vdDpwdw==", "Bearer mw_", "Bearer " + "A" * 5000):
        response = api.get(f"{V1}/me", as_="anonymous", headers={"Authorization": value})
        assert_bare_problem(response, 401)


# --- passwords ------------------------------------------------------------------------------


def _stored_admin_hash(make_uow: UowFactory, username: str) -> str:
    with make_uow(dry_run=True) as uow:
        stored = uow.session.scalar(select(Admin.password_hash).where(Admin.username == username))
    assert stored is not None
    return stored


def test_a_stored_hash_is_not_accepted_as_the_current_password(
    api: Api, make_uow: UowFactory
) -> None:
    stored = _stored_admin_hash(make_uow, "alice")
    before = _last_audit_id(make_uow)
    response = api.post(
        f"{V1}/me/password",
        as_="domain_admin_a",
        json={"current_password": stored, "new_password": NEW_PASSWORD},
    )
    problem = assert_bare_problem(response, 422)
    assert "current_password" in _fields(problem), problem
    assert _stored_admin_hash(make_uow, "alice") == stored
    assert _last_audit_id(make_uow) == before


def test_a_stored_hash_is_not_accepted_as_a_new_password(api: Api, make_uow: UowFactory) -> None:
    stored = _stored_admin_hash(make_uow, "alice")
    response = api.post(
        f"{V1}/me/password",
        as_="domain_admin_a",
        json={"current_password": PASSWORD, "new_password": stored},
    )
    assert_bare_problem(response, 422)
    assert _stored_admin_hash(make_uow, "alice") == stored


# Every API path that sets a password: (method, path, persona, body with the password as ~).
PASSWORD_PATHS = [
    ("POST", f"{V1}/mailboxes", "domain_admin_a", {"address": "new@a.example", "password": "~"}),
    ("POST", f"{V1}/mailboxes/user1@a.example/password", "domain_admin_a", {"password": "~"}),
    (
        "POST",
        f"{V1}/admins",
        "superadmin",
        {"username": "carol", "role": "domain-admin", "domains": ["a.example"], "password": "~"},
    ),
    ("POST", f"{V1}/admins/alice/password", "superadmin", {"password": "~"}),
    (
        "POST",
        f"{V1}/me/password",
        "domain_admin_a",
        {"current_password": PASSWORD, "new_password": "~"},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "persona", "body"),
    PASSWORD_PATHS,
    ids=[f"{m} {p}" for m, p, _, _ in PASSWORD_PATHS],
)
def test_passwords_with_nul_cr_or_lf_are_refused(
    api: Api, make_uow: UowFactory, method: str, path: str, persona: str, body: dict[str, Any]
) -> None:
    before = _last_audit_id(make_uow)
    for bad in ("good\x00password", "good\rpassword", "good\npassword", "\r\n\r\n\r\nabcdef"):
        filled = {key: (bad if value == "~" else value) for key, value in body.items()}
        for dry_run in ("false", "true"):
            response = api.request(
                method, path, as_=persona, json=filled, params={"dry_run": dry_run}
            )
            problem = assert_bare_problem(response, 422)
            assert [issue["rule"] for issue in problem["errors"]] == ["forbidden_character"]
    assert _last_audit_id(make_uow) == before


def test_a_refused_new_password_is_reported_under_its_own_name(api: Api) -> None:
    response = api.post(
        f"{V1}/me/password",
        as_="domain_admin_a",
        json={"current_password": PASSWORD, "new_password": "good\npassword"},
    )
    assert _fields(assert_bare_problem(response, 422)) == ["new_password"]


# --- the OpenAPI document -------------------------------------------------------------------


def test_openapi_marks_every_operation_with_its_permission_and_bearer_security(
    api: Api,
) -> None:
    document = api.get(OPENAPI_URL, as_="anonymous").json()
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items() if scheme.get("scheme") == "bearer"]
    assert len(bearer) == 1 and schemes[bearer[0]]["type"] == "http"
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {(route.method, route.path) for route in DECLARED}
    for route in DECLARED:
        operation = operations[(route.method, route.path)]
        label = f"{route.method} {route.path}"
        assert operation["x-permission"] == route.access.label, label
        security = operation.get("security", [])
        if route.access.authenticated:
            assert {bearer[0]: []} in security, label
            assert "401" in operation["responses"], label
        else:
            assert security == [], label


def test_openapi_documents_the_dry_run_answer_of_every_operation_that_takes_one(
    api: Api,
) -> None:
    document = api.get(OPENAPI_URL, as_="anonymous").json()
    components = document["components"]["schemas"]

    def variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in schema:
            return variants(components[schema["$ref"].rsplit("/", 1)[1]])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return [found for part in schema[key] for found in variants(part)]
        return [schema]

    checked, undocumented = 0, []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            if "dry_run" not in names:
                continue
            label = f"{method.upper()} {path}"
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
            shapes = [set(variant.get("properties", {})) for variant in variants(schema)]
            if not any({"dry_run", "plan"} <= shape for shape in shapes):
                undocumented.append(label)
            checked += 1
    assert undocumented == []
    assert checked >= 20
