"""/api/v1/admins and /api/v1/audit on every backend.

Answers are compared with what the service (and so `mailwarden admin ... --json`) shows for the
same object; refusals are checked for their status and for the field and rule they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from mailwarden.admins import service as admins
from mailwarden.api.app import create_app
from mailwarden.apikeys.service import parse_token
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import PermissionDenied
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.api_helpers import PERSONA_KEYS, Api, api_rebound, make_key

OPERATOR = Actor.local_operator(Channel.SYSTEM)
ADMINS = "/api/v1/admins"
AUDIT = "/api/v1/audit"
NEW_PASSWORD = "a new password for the API"
CAROL = {"username": "carol", "role": "domain-admin", "domains": ["a.example"]}


def _no_sessions() -> Session:
    raise AssertionError("each test binds the app to its own transaction first")


@pytest.fixture(scope="module")
def built_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("app")), sessions=_no_sessions)


@pytest.fixture
def api(
    built_app: FastAPI,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
    settings: Settings,
) -> Iterator[Api]:
    """The `api` of conftest, on an app built once for the module (building one per test costs
    more than most of these tests)."""
    keys = {
        persona: make_key(make_uow, admin, domains, read_only)
        for persona, (admin, domains, read_only) in PERSONA_KEYS.items()
    }
    with api_rebound(built_app, connection, settings, keys) as client:
        yield client


def served(make_uow: UowFactory, username: str) -> dict[str, Any]:
    """The admin as the service (and `admin show --json`) shows it."""
    with make_uow() as uow:
        return admins.get(uow, OPERATOR, username).model_dump(mode="json")


def logs_in(make_uow: UowFactory, username: str, password: str) -> bool:
    with make_uow() as uow:
        try:
            admins.authenticate(uow, username, password, Channel.WEB)
        except PermissionDenied:
            return False
    return True


def issues(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


def conflict_rule(response: Any) -> str:
    assert response.status_code == 409, response.text
    rule: str = response.json()["errors"][0]["rule"]
    return rule


def audit_count(connection: Connection) -> int:
    return int(connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one())


def key_id(api: Api, persona: str) -> str:
    parsed = parse_token(api.keys[persona])
    assert parsed is not None
    return parsed[0]


# --- list ------------------------------------------------------------------------------------


def test_a_superadmin_lists_every_admin_as_the_cli_shows_them(
    api: Api, make_uow: UowFactory
) -> None:
    body = api.get(ADMINS).json()
    assert [a["username"] for a in body["items"]] == ["alice", "bob", "root"]
    assert body["items"][0] == served(make_uow, "alice")
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ALI"}, ["alice"]),
        ({"role": "superadmin"}, ["root"]),
        ({"role": "domain-admin", "sort": "-username"}, ["bob", "alice"]),
        ({"active": "false"}, []),
        ({"active": "true", "q": "o"}, ["bob", "root"]),
    ],
    ids=["search", "role", "role-descending", "inactive", "active-search"],
)
def test_the_admin_list_filters_and_sorts(
    query: dict[str, str], expected: list[str], api: Api
) -> None:
    response = api.get(ADMINS, params=query)
    assert response.status_code == 200, response.text
    assert [a["username"] for a in response.json()["items"]] == expected


def test_the_admin_list_pages_with_its_cursor(api: Api) -> None:
    first = api.get(ADMINS, params={"limit": 2}).json()
    assert [a["username"] for a in first["items"]] == ["alice", "bob"]
    second = api.get(ADMINS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([a["username"] for a in second["items"]], second["next_cursor"]) == (["root"], None)


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        ({"sort": "password_hash"}, "sort", "unknown_sort"),
        ({"role": "emperor"}, "role", "enum"),
        ({"limit": "0"}, "limit", "greater_than_equal"),
        ({"q": "ro\x00"}, "q", "control_character"),
        ({"cursor": "alice\x00"}, "cursor", "invalid_cursor"),
    ],
)
def test_the_admin_list_refuses_unknown_parameters(
    query: dict[str, str], field: str, rule: str, api: Api
) -> None:
    assert issues(api.get(ADMINS, params=query)) == [(field, rule)]


@pytest.mark.parametrize(
    ("persona", "own", "other"),
    [
        ("domain_admin_a", "alice", "bob"),
        ("domain_admin_b", "bob", "alice"),
        ("narrowed_a", "root", "alice"),
    ],
)
def test_a_domain_admin_lists_only_its_own_account(
    persona: str, own: str, other: str, api: Api
) -> None:
    assert [a["username"] for a in api.get(ADMINS, as_=persona).json()["items"]] == [own]
    assert api.get(ADMINS, as_=persona, params={"q": other}).json()["items"] == []


# --- create ----------------------------------------------------------------------------------


def test_it_creates_an_admin_with_the_given_password(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    response = api.post(ADMINS, json={**CAROL, "password": NEW_PASSWORD})
    assert response.status_code == 201, response.text
    assert response.json() == served(make_uow, "carol")
    assert "password" not in response.json()
    assert logs_in(make_uow, "carol", NEW_PASSWORD)
    stored = connection.execute(text("SELECT * FROM audit_log ORDER BY id DESC")).first()
    assert stored is not None
    assert NEW_PASSWORD not in json.dumps([str(value) for value in stored])
    assert stored.api_key == key_id(api, "superadmin")


def test_a_generated_password_is_returned_once(api: Api, make_uow: UowFactory) -> None:
    response = api.post(ADMINS, json={**CAROL, "random_password": True})
    assert response.status_code == 201, response.text
    body = response.json()
    generated = body.pop("password")
    assert body == served(make_uow, "carol")
    assert logs_in(make_uow, "carol", generated)
    assert "password" not in api.get(f"{ADMINS}/carol").json()


@pytest.mark.parametrize(
    ("choice", "issue"),
    [
        ({}, ("password", "required")),
        ({"password": NEW_PASSWORD, "random_password": True}, ("random_password", "exclusive")),
        ({"random_password": False}, ("password", "required")),
    ],
    ids=["neither", "both", "random-false"],
)
def test_creating_takes_exactly_one_way_to_the_password(
    choice: dict[str, Any], issue: tuple[str, str], api: Api, make_uow: UowFactory
) -> None:
    assert issues(api.post(ADMINS, json={**CAROL, **choice})) == [issue]
    assert api.get(f"{ADMINS}/carol").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({**CAROL, "password": "short"}, "password", "too_short"),
        ({**CAROL, "domains": [], "password": NEW_PASSWORD}, "domains", "required"),
        ({**CAROL, "role": "emperor", "password": NEW_PASSWORD}, "role", "enum"),
        ({**CAROL, "password_hash": "{PLAIN}x", "password": NEW_PASSWORD}, "password_hash", ""),
        ({**CAROL, "username": "Not Valid", "password": NEW_PASSWORD}, "username", "whitespace"),
    ],
    ids=["short-password", "no-domains", "unknown-role", "mass-assignment", "bad-username"],
)
def test_creating_refuses_invalid_input(
    body: dict[str, Any], field: str, rule: str, api: Api
) -> None:
    found = issues(api.post(ADMINS, json=body))
    assert found[0][0] == field
    if rule:
        assert found[0][1] == rule
    else:
        assert found[0][1] == "extra_forbidden"


def test_creating_an_existing_admin_is_a_conflict(api: Api) -> None:
    response = api.post(ADMINS, json={**CAROL, "username": "alice", "password": NEW_PASSWORD})
    assert conflict_rule(response) == "exists"


def test_a_dry_run_create_returns_the_plan_and_creates_nothing(
    api: Api, connection: Connection
) -> None:
    before = audit_count(connection)
    response = api.post(ADMINS, params={"dry_run": "true"}, json={**CAROL, "random_password": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    [change] = body["plan"]
    assert (change["change"], change["object_type"], change["key"]) == ("create", "admin", "carol")
    assert "password" not in json.dumps(body)
    assert api.get(f"{ADMINS}/carol").status_code == 404
    assert audit_count(connection) == before


@pytest.mark.parametrize(
    ("persona", "status"),
    [("domain_admin_a", 403), ("read_only", 403), ("narrowed_a", 403), ("anonymous", 401)],
)
def test_only_a_superadmin_creates_admins(persona: str, status: int, api: Api) -> None:
    response = api.post(ADMINS, as_=persona, json={**CAROL, "password": NEW_PASSWORD})
    assert response.status_code == status, response.text
    assert api.get(f"{ADMINS}/carol").status_code == 404


# --- show, change, remove --------------------------------------------------------------------


def test_an_admin_is_shown_as_the_cli_shows_it(api: Api, make_uow: UowFactory) -> None:
    assert api.get(f"{ADMINS}/Alice").json() == served(make_uow, "alice")
    assert api.get(f"{ADMINS}/alice", as_="domain_admin_a").json() == served(make_uow, "alice")
    assert api.get(f"{ADMINS}/ghost").status_code == 404


@pytest.mark.parametrize("other", ["bob", "root", "ghost"])
def test_a_domain_admin_learns_nothing_about_other_admins(other: str, api: Api) -> None:
    response = api.get(f"{ADMINS}/{other}", as_="domain_admin_a")
    # The same answer whether the account exists or not.
    assert response.status_code == 403, response.text
    assert other not in response.text


def test_it_changes_an_admins_domains_and_state(api: Api, make_uow: UowFactory) -> None:
    response = api.patch(f"{ADMINS}/alice", json={"add_domains": ["b.example"]})
    assert response.status_code == 200, response.text
    assert response.json()["domains"] == ["a.example", "b.example"]
    response = api.patch(f"{ADMINS}/alice", json={"remove_domains": ["a.example"], "active": False})
    assert response.json() == served(make_uow, "alice")
    assert (response.json()["domains"], response.json()["active"]) == (["b.example"], False)
    # An inactive admin's keys stop working at once.
    assert api.get("/api/v1/me", as_="domain_admin_a").status_code == 401


def test_a_dry_run_change_returns_the_plan_and_changes_nothing(
    api: Api, make_uow: UowFactory
) -> None:
    before = served(make_uow, "alice")
    response = api.patch(f"{ADMINS}/alice", params={"dry_run": "true"}, json={"role": "superadmin"})
    assert response.status_code == 200, response.text
    [change] = response.json()["plan"]
    assert change["changes"]["role"] == ["domain-admin", "superadmin"]
    assert served(make_uow, "alice") == before


@pytest.mark.parametrize(
    ("path", "body", "status", "rule"),
    [
        ("root", {"role": "domain-admin", "add_domains": ["a.example"]}, 409, "self_demotion"),
        ("root", {"active": False}, 409, "self_demotion"),
        ("alice", {"add_domains": ["nowhere.example"]}, 404, None),
        ("ghost", {"active": False}, 404, None),
        ("alice", {"role": "emperor"}, 422, "enum"),
        ("alice", {"username": "mallory"}, 422, "extra_forbidden"),
    ],
    ids=[
        "self-demotion",
        "self-deactivation",
        "unknown-domain",
        "unknown-admin",
        "bad-role",
        "rename",
    ],
)
def test_changing_an_admin_refuses_what_breaks_a_rule(
    path: str, body: dict[str, Any], status: int, rule: str | None, api: Api
) -> None:
    response = api.patch(f"{ADMINS}/{path}", json=body)
    assert response.status_code == status, response.text
    if rule is not None:
        assert rule in {issue["rule"] for issue in response.json()["errors"]}


@pytest.mark.parametrize("persona", ["domain_admin_a", "read_only", "narrowed_a"])
def test_only_a_superadmin_changes_admins(persona: str, api: Api, make_uow: UowFactory) -> None:
    before = served(make_uow, "alice")
    response = api.patch(f"{ADMINS}/alice", as_=persona, json={"add_domains": ["b.example"]})
    assert response.status_code == 403, response.text
    assert served(make_uow, "alice") == before


def test_it_removes_an_admin_and_with_it_its_keys(api: Api) -> None:
    dry = api.delete(f"{ADMINS}/alice", params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert [c["change"] for c in dry.json()["plan"]] == ["delete"]
    assert api.get("/api/v1/me", as_="domain_admin_a").status_code == 200

    response = api.delete(f"{ADMINS}/alice")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(f"{ADMINS}/alice").status_code == 404
    assert api.get("/api/v1/me", as_="domain_admin_a").status_code == 401
    assert api.delete(f"{ADMINS}/alice").status_code == 404


def test_nobody_removes_their_own_account(api: Api) -> None:
    assert conflict_rule(api.delete(f"{ADMINS}/root")) == "self_removal"


@pytest.mark.parametrize("persona", ["domain_admin_a", "read_only", "narrowed_a"])
def test_only_a_superadmin_removes_admins(persona: str, api: Api) -> None:
    assert api.delete(f"{ADMINS}/bob", as_=persona).status_code == 403
    assert api.get(f"{ADMINS}/bob").status_code == 200


# --- passwords -------------------------------------------------------------------------------


def test_a_superadmin_sets_another_admins_password(api: Api, make_uow: UowFactory) -> None:
    response = api.post(f"{ADMINS}/alice/password", json={"password": NEW_PASSWORD})
    assert (response.status_code, response.json()) == (200, {"username": "alice"})
    assert logs_in(make_uow, "alice", NEW_PASSWORD)
    assert not logs_in(make_uow, "alice", PASSWORD)


def test_a_generated_admin_password_is_returned_once(api: Api, make_uow: UowFactory) -> None:
    response = api.post(f"{ADMINS}/bob/password", json={"random_password": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == "bob"
    assert logs_in(make_uow, "bob", body["password"])


def test_a_dry_run_password_change_changes_nothing(api: Api, make_uow: UowFactory) -> None:
    response = api.post(
        f"{ADMINS}/alice/password", params={"dry_run": "true"}, json={"password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    [change] = response.json()["plan"]
    assert (change["key"], NEW_PASSWORD in response.text) == ("alice", False)
    assert logs_in(make_uow, "alice", PASSWORD)


@pytest.mark.parametrize(
    ("persona", "username"),
    [
        ("domain_admin_a", "alice"),
        ("domain_admin_a", "bob"),
        ("narrowed_a", "root"),
        ("read_only", "alice"),
    ],
    ids=["own-account", "other-account", "narrowed-own-superadmin", "read-only"],
)
def test_a_key_without_the_permission_sets_no_password(
    persona: str, username: str, api: Api, make_uow: UowFactory
) -> None:
    """Not even its own: that is /me/password, which asks for the current one."""
    response = api.post(
        f"{ADMINS}/{username}/password", as_=persona, json={"password": NEW_PASSWORD}
    )
    assert response.status_code == 403, response.text
    assert logs_in(make_uow, username, PASSWORD)


def test_setting_a_password_takes_exactly_one_way_to_it(api: Api) -> None:
    for body, issue in (
        ({}, ("password", "required")),
        ({"password": NEW_PASSWORD, "random_password": True}, ("random_password", "exclusive")),
    ):
        assert issues(api.post(f"{ADMINS}/alice/password", json=body)) == [issue]
    assert issues(api.post(f"{ADMINS}/alice/password", json={"password": "short"}))[0] == (
        "password",
        "too_short",
    )
    assert api.post(f"{ADMINS}/ghost/password", json={"password": NEW_PASSWORD}).status_code == 404


# --- audit -----------------------------------------------------------------------------------


def test_the_audit_log_lists_changes_newest_first_with_the_key_that_made_them(
    api: Api, connection: Connection
) -> None:
    api.patch(f"{ADMINS}/alice", json={"add_domains": ["b.example"]})
    api.patch("/api/v1/domains/a.example", as_="domain_admin_a", json={"description": "Team A"})
    body = api.get(AUDIT).json()
    newest, second = body["items"][:2]
    assert (newest["action"], newest["actor"], newest["api_key"], newest["channel"]) == (
        "domain.update",
        "alice",
        key_id(api, "domain_admin_a"),
        "api",
    )
    assert (second["action"], second["object_key"], second["api_key"]) == (
        "admin.update",
        "alice",
        key_id(api, "superadmin"),
    )
    assert [e["id"] for e in body["items"]] == sorted(
        (e["id"] for e in body["items"]), reverse=True
    )
    # Made before the API was used: no key.
    assert body["items"][-1]["api_key"] is None
    assert set(newest) == {
        "id",
        "created_at",
        "actor",
        "actor_role",
        "channel",
        "client_address",
        "api_key",
        "action",
        "object_type",
        "object_key",
        "domain",
        "before",
        "after",
    }


def test_tokens_never_reach_the_audit_log(api: Api) -> None:
    created = api.post("/api/v1/api-keys", json={"admin": "alice"}).json()
    api.delete(f"/api/v1/api-keys/{created['id']}")
    text_of_log = api.get(AUDIT, params={"limit": 500}).text
    for token in [created["key"], *api.keys.values()]:
        parsed = parse_token(token)
        assert parsed is not None
        assert token not in text_of_log and parsed[1] not in text_of_log
    actions = [
        e["action"] for e in api.get(AUDIT, params={"object_type": "api_key"}).json()["items"]
    ]
    assert actions[:2] == ["api_key.revoke", "api_key.create"]


@pytest.mark.parametrize(
    ("query", "expected_actions"),
    [
        ({"action": "alias.create"}, ["alias.create", "alias.create"]),
        ({"object_type": "domain"}, ["domain.create", "domain.create"]),
        ({"object_key": "USER1@a.example"}, ["mailbox.create"]),
        ({"actor": "nobody"}, []),
    ],
    ids=["action", "object-type", "object-key", "actor"],
)
def test_the_audit_log_filters(
    query: dict[str, str], expected_actions: list[str], api: Api
) -> None:
    response = api.get(AUDIT, params=query)
    assert response.status_code == 200, response.text
    assert [e["action"] for e in response.json()["items"]] == expected_actions


def test_the_audit_log_filters_by_actor_and_time(api: Api) -> None:
    api.patch(f"{ADMINS}/bob", json={"add_domains": ["a.example"]})
    mine = api.get(AUDIT, params={"actor": "ROOT"}).json()["items"]
    assert [e["action"] for e in mine] == ["admin.update"]
    later = (utcnow() + timedelta(minutes=5)).isoformat()
    assert api.get(AUDIT, params={"since": later}).json()["items"] == []
    every = api.get(AUDIT, params={"limit": 500}).json()["items"]
    assert api.get(AUDIT, params={"until": later, "limit": 500}).json()["items"] == every
    # Without an offset a moment is UTC, as with `audit list --since`.
    naive = (utcnow() + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert api.get(AUDIT, params={"since": naive}).json()["items"] == []
    assert api.get(AUDIT, params={"until": naive, "limit": 500}).json()["items"] == every


def test_the_audit_log_pages_below_the_cursor(api: Api) -> None:
    every = [e["id"] for e in api.get(AUDIT, params={"limit": 500}).json()["items"]]
    first = api.get(AUDIT, params={"limit": 3}).json()
    assert [e["id"] for e in first["items"]] == every[:3]
    assert first["next_cursor"] == str(every[2])
    second = api.get(AUDIT, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in second["items"]] == every[3:6]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "0"}, "cursor"),
        ({"cursor": "abc"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        # Beyond the calendar once in UTC.
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
        ({"actor": "root\x00"}, "actor"),
        ({"object_key": "\x1b[31m"}, "object_key"),
    ],
)
def test_the_audit_log_refuses_malformed_parameters(
    query: dict[str, str], field: str, api: Api
) -> None:
    assert [f for f, _ in issues(api.get(AUDIT, params=query))] == [field]


@pytest.mark.parametrize("persona", ["domain_admin_a", "narrowed_a"])
def test_a_domain_admin_reads_the_history_of_its_domains_only(persona: str, api: Api) -> None:
    api.patch(f"{ADMINS}/bob", json={"active": False})
    items = api.get(AUDIT, as_=persona, params={"limit": 500}).json()["items"]
    assert items
    assert {e["domain"] for e in items} == {"a.example"}
    assert api.get(AUDIT, as_=persona, params={"object_key": "user1@b.example"}).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_the_audit_log_needs_a_key(api: Api) -> None:
    assert api.get(AUDIT, as_="anonymous").status_code == 401
    assert api.get(AUDIT, as_="read_only").status_code == 200
