"""/api/v1/api-keys and /api/v1/me on every backend.

Answers are compared with what the service (and so `mailwarden apikey ... --json`) shows for the
same key; the token itself must appear in exactly one answer, the one to its creation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from mailwarden.admins import service as admins
from mailwarden.api.app import create_app
from mailwarden.apikeys import service as apikeys
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import PermissionDenied
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.api_helpers import PERSONA_KEYS, Api, api_rebound, make_key

OPERATOR = Actor.local_operator(Channel.SYSTEM)
KEYS = "/api/v1/api-keys"
ME = "/api/v1/me"
NEW_PASSWORD = "a new password for the API"
ACCOUNT_FAILURES = 3


def _no_sessions() -> Session:
    raise AssertionError("each test binds the app to its own transaction first")


@pytest.fixture(scope="module")
def built_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("app")), sessions=_no_sessions)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_failures_per_account": ACCOUNT_FAILURES})


@pytest.fixture
def api(
    built_app: FastAPI,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
    settings: Settings,
) -> Iterator[Api]:
    """The `api` of conftest, on an app built once for the module."""
    keys = {
        persona: make_key(make_uow, admin, domains, read_only)
        for persona, (admin, domains, read_only) in PERSONA_KEYS.items()
    }
    with api_rebound(built_app, connection, settings, keys) as client:
        yield client


def key_id(api: Api, persona: str) -> str:
    parsed = apikeys.parse_token(api.keys[persona])
    assert parsed is not None
    return parsed[0]


def served(make_uow: UowFactory, key: str) -> dict[str, Any]:
    """The key as the service (and `apikey show --json`) shows it, last use aside."""
    with make_uow() as uow:
        shown = apikeys.get(uow, OPERATOR, key).model_dump(mode="json")
    return without_last_use(shown)


def without_last_use(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if k not in {"last_used_at", "last_used_from"}}


def issues(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


def create(api: Api, as_: str = "superadmin", **body: Any) -> dict[str, Any]:
    response = api.post(KEYS, as_=as_, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def logs_in(make_uow: UowFactory, username: str, password: str) -> bool:
    with make_uow() as uow:
        try:
            admins.authenticate(uow, username, password, Channel.WEB)
        except PermissionDenied:
            return False
    return True


# --- create ----------------------------------------------------------------------------------


def test_creating_a_key_shows_its_token_once(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    created = create(api, admin="alice", name="deploy", domains=["a.example"])
    token = created.pop("key")
    assert without_last_use(created) == served(make_uow, created["id"])
    assert (created["admin"], created["created_by"], created["narrowed"]) == ("alice", "root", True)
    parsed = apikeys.parse_token(token)
    assert parsed is not None and parsed[0] == created["id"]

    # The token works, and shows nowhere else.
    me = api.client.get(ME, headers=bearer(token))
    assert (me.status_code, me.json()["username"]) == (200, "alice")
    answers = [
        api.get(KEYS, params={"include_inactive": "true"}).text,
        api.get(f"{KEYS}/{created['id']}").text,
        api.get(KEYS, as_="domain_admin_a").text,
        me.text,
        api.get("/api/v1/audit", params={"limit": 500}).text,
    ]
    for answer in answers:
        assert token not in answer and parsed[1] not in answer
    rows = connection.execute(text("SELECT * FROM api_keys")).all()
    assert all(parsed[1] not in str(value) for row in rows for value in row)


def test_a_key_without_an_admin_is_the_callers_own(api: Api) -> None:
    created = create(api, as_="domain_admin_a", name="mine", read_only=True)
    assert (created["admin"], created["created_by"], created["read_only"]) == (
        "alice",
        "alice",
        True,
    )
    me = api.client.get(ME, headers=bearer(created["key"])).json()
    assert (me["read_only"], me["api_key"]["id"]) == (True, created["id"])


def test_a_key_made_with_a_narrowed_key_is_narrowed_too(api: Api) -> None:
    created = create(api, as_="narrowed_a")
    assert (created["admin"], created["narrowed"], created["domains"]) == (
        "root",
        True,
        ["a.example"],
    )
    me = api.client.get(ME, headers=bearer(created["key"])).json()
    assert (me["role"], me["domains"]) == ("domain-admin", ["a.example"])


def test_an_expiry_is_kept_and_a_key_from_an_expiring_key_ends_with_it(api: Api) -> None:
    ends = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    parent = create(api, expires_at=ends.isoformat())
    assert parent["expires_at"] == ends.isoformat().replace("+00:00", "Z")
    child = api.client.post(KEYS, headers=bearer(parent["key"]), json={"name": "child"})
    assert child.status_code == 201, child.text
    assert child.json()["expires_at"] == parent["expires_at"]
    later = (ends + timedelta(days=1)).isoformat()
    refused = api.client.post(KEYS, headers=bearer(parent["key"]), json={"expires_at": later})
    assert issues(refused) == [("expires_at", "beyond_acting_key")]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"expires_at": "2100-01-01T00:00:00"}, "expires_at", "naive_datetime"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "in_past"),
        ({"expires_at": "next week"}, "expires_at", "datetime_from_date_parsing"),
        ({"admin": "alice", "domains": ["b.example"]}, "domains[0]", "not_managed"),
        ({"admin": "alice", "secret_hash": "0" * 64}, "secret_hash", "extra_forbidden"),
        ({"read_only": "yes"}, "read_only", "bool_type"),
        ({"name": "two\nlines"}, "name", "control_character"),
        ({"expires_at": "9999-12-31T23:59:59-05:00"}, "expires_at", "out_of_range"),
    ],
    ids=[
        "naive",
        "past",
        "not-a-moment",
        "unmanaged-domain",
        "mass-assignment",
        "loose-bool",
        "control-in-name",
        "beyond-the-calendar",
    ],
)
def test_creating_refuses_invalid_input(
    body: dict[str, Any], field: str, rule: str, api: Api
) -> None:
    assert issues(api.post(KEYS, json=body)) == [(field, rule)]


def test_a_dry_run_create_shows_the_plan_and_creates_no_key(api: Api) -> None:
    before = api.get(KEYS).json()
    response = api.post(KEYS, params={"dry_run": "true"}, json={"admin": "bob", "name": "x"})
    assert response.status_code == 200, response.text
    body = response.json()
    [change] = body["plan"]
    assert (body["dry_run"], change["change"], change["object_type"]) == (True, "create", "api_key")
    assert change["changes"]["admin"] == "bob"
    assert "mw_" not in response.text
    assert api.get(KEYS).json()["items"] == before["items"]


@pytest.mark.parametrize(
    ("persona", "body", "status"),
    [
        ("domain_admin_a", {"admin": "bob"}, 403),
        ("domain_admin_a", {"admin": "root"}, 403),
        ("domain_admin_a", {"domains": ["b.example"]}, 404),
        ("narrowed_a", {"admin": "alice"}, 403),
        ("narrowed_a", {"domains": ["b.example"]}, 404),
        ("read_only", {}, 403),
        ("anonymous", {}, 401),
        ("superadmin", {"admin": "ghost"}, 404),
    ],
    ids=[
        "for-another-admin",
        "for-a-superadmin",
        "foreign-domain",
        "narrowed-for-another",
        "narrowed-widening",
        "read-only",
        "anonymous",
        "unknown-admin",
    ],
)
def test_creating_is_refused_beyond_the_callers_reach(
    persona: str, body: dict[str, Any], status: int, api: Api
) -> None:
    before = api.get(KEYS, params={"include_inactive": "true"}).json()["items"]
    response = api.post(KEYS, as_=persona, json=body)
    assert response.status_code == status, response.text
    after = api.get(KEYS, params={"include_inactive": "true"}).json()["items"]
    assert [k["id"] for k in after] == [k["id"] for k in before]


# --- list and show ---------------------------------------------------------------------------


def test_a_superadmin_lists_every_admins_keys(api: Api, make_uow: UowFactory) -> None:
    body = api.get(KEYS).json()
    assert sorted(k["admin"] for k in body["items"]) == ["alice", "bob", "root", "root", "root"]
    assert [k["id"] for k in body["items"]] == sorted(k["id"] for k in body["items"])
    alice = api.get(KEYS, params={"admin": "Alice"}).json()["items"]
    assert [k["id"] for k in alice] == [key_id(api, "domain_admin_a")]
    assert without_last_use(alice[0]) == served(make_uow, alice[0]["id"])
    assert all("key" not in k for k in body["items"])


@pytest.mark.parametrize(
    ("persona", "admin"),
    [("domain_admin_a", "alice"), ("domain_admin_b", "bob"), ("narrowed_a", "root")],
)
def test_an_admin_lists_only_its_own_keys(persona: str, admin: str, api: Api) -> None:
    items = api.get(KEYS, as_=persona).json()["items"]
    assert {k["admin"] for k in items} == {admin}
    assert key_id(api, persona) in {k["id"] for k in items}


@pytest.mark.parametrize("other", ["bob", "root", "ghost"])
def test_a_domain_admin_cannot_list_another_admins_keys(other: str, api: Api) -> None:
    response = api.get(KEYS, as_="domain_admin_a", params={"admin": other})
    assert response.status_code == 403, response.text


def test_the_list_hides_revoked_and_expired_keys_unless_asked(
    api: Api, make_uow: UowFactory
) -> None:
    revoked = create(api, admin="bob", name="revoked")
    api.delete(f"{KEYS}/{revoked['id']}")
    expired = create(api, admin="bob", name="expired")
    with make_uow() as uow:
        uow.session.execute(
            text("UPDATE api_keys SET expires_at = :past WHERE key_id = :id"),
            {"past": (utcnow() - timedelta(minutes=1)).replace(tzinfo=None), "id": expired["id"]},
        )
        uow.finish()
    live = [k["name"] for k in api.get(KEYS, params={"admin": "bob"}).json()["items"]]
    every = api.get(KEYS, params={"admin": "bob", "include_inactive": "true"}).json()["items"]
    assert live == [""]
    assert sorted((k["name"], k["active"]) for k in every) == [
        ("", True),
        ("expired", False),
        ("revoked", False),
    ]
    assert api.client.get(ME, headers=bearer(expired["key"])).status_code == 401


def test_the_key_list_pages_with_its_cursor(api: Api) -> None:
    every = [k["id"] for k in api.get(KEYS).json()["items"]]
    first = api.get(KEYS, params={"limit": 2}).json()
    assert ([k["id"] for k in first["items"]], first["next_cursor"]) == (every[:2], every[1])
    rest = api.get(KEYS, params={"limit": 500, "cursor": first["next_cursor"]}).json()
    assert [k["id"] for k in rest["items"]] == every[2:]
    assert issues(api.get(KEYS, params={"cursor": "not-a-key"})) == [("cursor", "invalid_key_id")]


def test_a_key_is_shown_to_its_admin_and_to_superadmins(api: Api, make_uow: UowFactory) -> None:
    alices = key_id(api, "domain_admin_a")
    for persona in ("domain_admin_a", "superadmin", "read_only"):
        response = api.get(f"{KEYS}/{alices}", as_=persona)
        assert response.status_code == 200, response.text
        assert without_last_use(response.json()) == served(make_uow, alices)
        assert "key" not in response.json()


@pytest.mark.parametrize("persona", ["domain_admin_b", "narrowed_a"])
def test_another_admins_key_is_answered_like_a_missing_one(persona: str, api: Api) -> None:
    alices = key_id(api, "domain_admin_a")
    foreign = api.get(f"{KEYS}/{alices}", as_=persona)
    missing = api.get(f"{KEYS}/{'0' * 12}", as_=persona)
    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert foreign.json()["detail"].replace(alices, "0" * 12) == missing.json()["detail"]


def test_a_malformed_key_id_is_invalid_input(api: Api) -> None:
    assert issues(api.get(f"{KEYS}/XYZ")) == [("id", "invalid_key_id")]
    assert api.get(f"{KEYS}/{'a' * 33}").status_code == 422


# --- revoke ----------------------------------------------------------------------------------


def test_revoking_answers_with_the_revoked_key_and_refuses_it_at_once(
    api: Api, make_uow: UowFactory
) -> None:
    created = create(api, admin="alice")
    response = api.delete(f"{KEYS}/{created['id']}", as_="domain_admin_a")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revoked_at"] is not None and body["active"] is False
    assert without_last_use(body) == served(make_uow, created["id"])
    assert "key" not in body
    assert api.client.get(ME, headers=bearer(created["key"])).status_code == 401
    again = api.delete(f"{KEYS}/{created['id']}")
    assert (again.status_code, again.json()["errors"][0]["rule"]) == (409, "already_revoked")


def test_a_key_may_revoke_itself(api: Api) -> None:
    response = api.delete(f"{KEYS}/{key_id(api, 'domain_admin_b')}", as_="domain_admin_b")
    assert response.status_code == 200, response.text
    assert api.get(ME, as_="domain_admin_b").status_code == 401


def test_a_dry_run_revoke_leaves_the_key_working(api: Api, make_uow: UowFactory) -> None:
    alices = key_id(api, "domain_admin_a")
    response = api.delete(f"{KEYS}/{alices}", params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    [change] = response.json()["plan"]
    assert (change["change"], change["key"], change["changes"]["revoked"]) == (
        "update",
        alices,
        [False, True],
    )
    assert served(make_uow, alices)["active"] is True
    assert api.get(ME, as_="domain_admin_a").status_code == 200


@pytest.mark.parametrize(
    ("persona", "target", "status"),
    [
        ("domain_admin_b", "domain_admin_a", 404),
        ("narrowed_a", "domain_admin_a", 404),
        ("read_only", "domain_admin_a", 403),
        ("read_only", "read_only", 403),
        ("anonymous", "domain_admin_a", 401),
    ],
)
def test_revoking_is_refused_beyond_the_callers_reach(
    persona: str, target: str, status: int, api: Api
) -> None:
    response = api.delete(f"{KEYS}/{key_id(api, target)}", as_=persona)
    assert response.status_code == status, response.text
    assert api.get(ME, as_=target).status_code == 200


# --- me --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (
            "superadmin",
            {"username": "root", "role": "superadmin", "all_domains": True, "domains": []},
        ),
        (
            "domain_admin_a",
            {"username": "alice", "role": "domain-admin", "all_domains": False},
        ),
        (
            "narrowed_a",
            {"username": "root", "role": "domain-admin", "domains": ["a.example"]},
        ),
        ("read_only", {"username": "root", "read_only": True, "all_domains": True}),
    ],
)
def test_me_tells_who_acts_on_which_domains_with_which_key(
    persona: str, expected: dict[str, Any], api: Api
) -> None:
    response = api.get(ME, as_=persona)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {name: body[name] for name in expected} == expected
    key = body["api_key"]
    assert key["id"] == key_id(api, persona)
    assert set(key) == {"id", "name", "read_only", "narrowed", "domains", "expires_at"}
    assert (key["narrowed"], key["read_only"]) == (persona == "narrowed_a", persona == "read_only")
    assert "mw_" not in response.text


def test_me_follows_the_admins_domains_as_they_change(api: Api) -> None:
    assert api.get(ME, as_="domain_admin_a").json()["domains"] == ["a.example"]
    api.patch("/api/v1/admins/alice", json={"add_domains": ["b.example"]})
    assert api.get(ME, as_="domain_admin_a").json()["domains"] == ["a.example", "b.example"]


def test_me_needs_a_key(api: Api) -> None:
    response = api.get(ME, as_="anonymous")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_admin_changes_its_own_password_with_the_current_one(
    api: Api, make_uow: UowFactory
) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    dry = api.post(f"{ME}/password", as_="domain_admin_a", params={"dry_run": "true"}, json=body)
    assert dry.status_code == 200, dry.text
    assert [c["key"] for c in dry.json()["plan"]] == ["alice"]
    assert NEW_PASSWORD not in dry.text and PASSWORD not in dry.text
    assert logs_in(make_uow, "alice", PASSWORD)

    response = api.post(f"{ME}/password", as_="domain_admin_a", json=body)
    assert (response.status_code, response.content) == (204, b"")
    assert logs_in(make_uow, "alice", NEW_PASSWORD)
    # The key keeps working: the password and the key are separate credentials.
    assert api.get(ME, as_="domain_admin_a").status_code == 200
    entry = api.get("/api/v1/audit", params={"action": "admin.password"}).json()["items"][0]
    assert (entry["object_key"], entry["api_key"]) == ("alice", key_id(api, "domain_admin_a"))
    assert NEW_PASSWORD not in str(entry)


@pytest.mark.parametrize(
    ("persona", "body", "status", "issue"),
    [
        (
            "domain_admin_a",
            {"current_password": "wrong", "new_password": NEW_PASSWORD},
            422,
            ("current_password", "wrong_password"),
        ),
        (
            "domain_admin_a",
            {"current_password": PASSWORD, "new_password": "short"},
            422,
            ("new_password", "too_short"),
        ),
        (
            "domain_admin_a",
            {"current_password": PASSWORD},
            422,
            ("new_password", "missing"),
        ),
        (
            "read_only",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            403,
            None,
        ),
        (
            "anonymous",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            401,
            None,
        ),
    ],
    ids=["wrong-current", "weak-new", "missing-new", "read-only", "anonymous"],
)
def test_an_own_password_change_is_refused_when_it_breaks_a_rule(
    persona: str,
    body: dict[str, Any],
    status: int,
    issue: tuple[str, str] | None,
    api: Api,
    make_uow: UowFactory,
) -> None:
    response = api.post(f"{ME}/password", as_=persona, json=body)
    assert response.status_code == status, response.text
    if issue is not None:
        assert issues(response) == [issue]
    assert logs_in(make_uow, "alice", PASSWORD) and logs_in(make_uow, "root", PASSWORD)


def test_guessing_the_current_password_is_throttled(api: Api, make_uow: UowFactory) -> None:
    guess = {"current_password": "a guess", "new_password": NEW_PASSWORD}
    for _ in range(ACCOUNT_FAILURES):
        assert api.post(f"{ME}/password", as_="domain_admin_a", json=guess).status_code == 422
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    refused = api.post(f"{ME}/password", as_="domain_admin_a", json=right)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    assert logs_in(make_uow, "alice", PASSWORD)
    # Only that account: others go on, and the key itself still works for everything else.
    bob = api.post(f"{ME}/password", as_="domain_admin_b", json=right)
    assert bob.status_code == 204, bob.text
    assert api.get(ME, as_="domain_admin_a").status_code == 200


def test_a_right_password_clears_the_accounts_failures(api: Api, make_uow: UowFactory) -> None:
    guess = {"current_password": "a guess", "new_password": NEW_PASSWORD}
    for _ in range(ACCOUNT_FAILURES - 1):
        api.post(f"{ME}/password", as_="domain_admin_a", json=guess)
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api.post(f"{ME}/password", as_="domain_admin_a", json=right).status_code == 204
    for _ in range(ACCOUNT_FAILURES - 1):
        api.post(f"{ME}/password", as_="domain_admin_a", json=guess)
    back = {"current_password": NEW_PASSWORD, "new_password": PASSWORD}
    assert api.post(f"{ME}/password", as_="domain_admin_a", json=back).status_code == 204
