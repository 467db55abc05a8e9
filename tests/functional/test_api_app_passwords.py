"""/api/v1/mailboxes/{address}/app-passwords on every backend.

The password is in exactly one answer, the one to its creation; lists and dry runs never show it
or its hash. Answers are compared with what the service (and so `--json` of the CLI) shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, select, text

from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.models import AppPassword
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import verify_password
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.api_helpers import Api, api_rebound, make_persona_keys, shared_app

OPERATOR = Actor.local_operator(Channel.SYSTEM)
USER = "user1@a.example"
FOREIGN = "user1@b.example"
# What an app password looks like (apppasswords/tokens.py): public id, "-", the secret.
APP_PASSWORD_TEXT = re.compile(r"[a-z2-7]{8}-[a-z2-7]{26}")


def app_passwords(address: str) -> str:
    return f"/api/v1/mailboxes/{address}/app-passwords"


@pytest.fixture
def built_app() -> FastAPI:
    return shared_app()


@pytest.fixture
def api(
    built_app: FastAPI,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
    settings: Settings,
) -> Iterator[Api]:
    with api_rebound(built_app, connection, settings, make_persona_keys(make_uow)) as client:
        yield client


def create(api: Api, name: str, *, address: str = USER, as_: str = "superadmin") -> dict[str, Any]:
    response = api.post(app_passwords(address), as_=as_, json={"name": name})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def served(make_uow: UowFactory, address: str = USER) -> list[dict[str, Any]]:
    """The mailbox's app passwords as the service lists them."""
    with make_uow() as uow:
        page = apppasswords.list_app_passwords(uow, OPERATOR, address, limit=500)
    return [item.model_dump(mode="json") for item in page.items]


def stored_hashes(make_uow: UowFactory) -> list[str]:
    with make_uow() as uow:
        return list(uow.session.scalars(select(AppPassword.password_hash)))


def audit_entries(connection: Connection) -> list[str]:
    rows = connection.execute(text("SELECT * FROM audit_log ORDER BY id"))
    return [json.dumps([str(value) for value in row]) for row in rows]


def issues(response: Any, status: int = 422) -> list[tuple[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


# --- create and list --------------------------------------------------------------------------


def test_creating_an_app_password_shows_it_once(api: Api, make_uow: UowFactory) -> None:
    created = create(api, "laptop Thunderbird", as_="domain_admin_a")
    password = created.pop("password")
    assert served(make_uow) == [created]
    assert (created["address"], created["name"]) == (USER, "laptop Thunderbird")
    assert password.startswith(f"{created['id']}-") and APP_PASSWORD_TEXT.fullmatch(password)
    [stored] = stored_hashes(make_uow)
    assert verify_password(password, stored)
    listed = api.get(app_passwords(USER))
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [created], "next_cursor": None}
    # Neither the password, nor its secret part, nor the hash is ever shown again.
    for text_shown in (password, password.partition("-")[2], stored, "password"):
        assert text_shown not in listed.text


def test_an_answer_to_creation_never_holds_the_hash(api: Api, make_uow: UowFactory) -> None:
    response = api.post(app_passwords(USER), json={"name": "phone"})
    assert response.status_code == 201, response.text
    [stored] = stored_hashes(make_uow)
    assert stored not in response.text
    assert "{SHA" not in response.text and "hash" not in response.text


def test_the_list_pages_by_name(api: Api) -> None:
    for name in ("tablet", "laptop", "phone"):
        create(api, name)
    first = api.get(app_passwords(USER), params={"limit": 2}).json()
    assert [item["name"] for item in first["items"]] == ["laptop", "phone"]
    assert first["next_cursor"] == "phone"
    rest = api.get(app_passwords(USER), params={"limit": 2, "cursor": first["next_cursor"]})
    assert rest.json() == {"items": [rest.json()["items"][0]], "next_cursor": None}
    assert rest.json()["items"][0]["name"] == "tablet"


def test_a_domain_admin_sees_the_mailboxes_of_its_domain_by_unicode_or_any_case(
    api: Api,
) -> None:
    created = create(api, "phone")
    created.pop("password")
    response = api.get(app_passwords("User1@A.example"), as_="domain_admin_a")
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [created]


# --- revoke -----------------------------------------------------------------------------------


def test_revoking_by_name_then_by_id(api: Api, make_uow: UowFactory) -> None:
    create(api, "phone")
    laptop = create(api, "laptop")
    response = api.delete(f"{app_passwords(USER)}/phone", as_="domain_admin_a")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert [item["name"] for item in served(make_uow)] == ["laptop"]
    response = api.delete(f"{app_passwords(USER)}/{laptop['id']}")
    assert response.status_code == 204, response.text
    assert served(make_uow) == []


def test_revoking_an_unknown_app_password_is_a_404(api: Api) -> None:
    response = api.delete(f"{app_passwords(USER)}/nothing here")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_changes_are_audited_under_the_key_without_the_password(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    before = len(audit_entries(connection))
    created = create(api, "phone", as_="domain_admin_a")
    api.delete(f"{app_passwords(USER)}/phone", as_="domain_admin_a")
    entries = audit_entries(connection)[before:]
    assert len(entries) == 2
    assert all("alice" in entry and "app_password" in entry for entry in entries)
    assert "app_password.revoke" in entries[1]
    assert all(created["password"].partition("-")[2] not in entry for entry in entries)
    assert all("{SHA" not in entry for entry in entries)


# --- dry run ----------------------------------------------------------------------------------


def test_a_dry_run_of_a_creation_changes_nothing_and_shows_no_password(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    before = audit_entries(connection)
    response = api.post(app_passwords(USER), json={"name": "phone"}, params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dry_run"] is True and answer["plan"]
    assert not APP_PASSWORD_TEXT.search(response.text)
    assert served(make_uow) == []
    assert stored_hashes(make_uow) == []
    assert audit_entries(connection) == before


def test_a_dry_run_of_a_revocation_changes_nothing(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    create(api, "phone")
    listed, before = served(make_uow), audit_entries(connection)
    response = api.delete(f"{app_passwords(USER)}/phone", params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert served(make_uow) == listed
    assert audit_entries(connection) == before


# --- scoping ----------------------------------------------------------------------------------


def test_a_domain_admin_cannot_touch_another_domains_app_passwords(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    create(api, "phone", address=FOREIGN)
    listed, before = served(make_uow, FOREIGN), audit_entries(connection)
    for method, path, body in (
        ("GET", app_passwords(FOREIGN), None),
        ("POST", app_passwords(FOREIGN), {"name": "laptop"}),
        ("DELETE", f"{app_passwords(FOREIGN)}/phone", None),
        ("DELETE", f"{app_passwords(FOREIGN)}/{listed[0]['id']}", None),
    ):
        response = api.request(method, path, as_="domain_admin_a", json=body)
        # The same answer as for a mailbox that does not exist: nothing about b.example leaks.
        assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert "phone" not in response.text
    assert served(make_uow, FOREIGN) == listed
    assert audit_entries(connection) == before


def test_a_key_narrowed_to_a_domain_cannot_reach_another(api: Api) -> None:
    response = api.post(app_passwords(FOREIGN), as_="narrowed_a", json={"name": "phone"})
    assert response.status_code == 404, response.text


def test_a_read_only_key_lists_but_cannot_create_or_revoke(api: Api, make_uow: UowFactory) -> None:
    create(api, "phone")
    assert api.get(app_passwords(USER), as_="read_only").status_code == 200
    refused = api.post(app_passwords(USER), as_="read_only", json={"name": "laptop"})
    assert refused.status_code == 403, refused.text
    refused = api.delete(f"{app_passwords(USER)}/phone", as_="read_only")
    assert refused.status_code == 403, refused.text
    assert [item["name"] for item in served(make_uow)] == ["phone"]


def test_a_missing_mailbox_is_a_404(api: Api) -> None:
    response = api.get(app_passwords("nobody@a.example"))
    assert response.status_code == 404, response.text


# --- input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": ""}, ("name", "required")),
        ({"name": "   "}, ("name", "required")),
        ({"name": "x" * 101}, ("name", "too_long")),
        ({"name": "tab\there"}, ("name", "control_character")),
        # revoke takes a name or an id: a name shaped like an id could name another password.
        ({"name": "abcdefgh"}, ("name", "looks_like_id")),
        ({}, ("name", "missing")),
        ({"name": 7}, ("name", "string_type")),
        ({"name": "phone", "password": "mine"}, ("password", "extra_forbidden")),
    ],
    ids=["empty", "blank", "too-long", "control", "id-shaped", "missing", "number", "extra"],
)
def test_a_bad_name_is_refused_with_its_field_and_rule(
    api: Api, make_uow: UowFactory, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    response = api.post(app_passwords(USER), as_="domain_admin_a", json=body)
    assert issues(response) == [expected]
    assert served(make_uow) == []


def test_a_name_taken_in_the_mailbox_is_a_conflict(api: Api, make_uow: UowFactory) -> None:
    create(api, "phone")
    response = api.post(app_passwords(USER), json={"name": "phone"})
    assert issues(response, 409) == [("name", "duplicate")]
    assert len(served(make_uow)) == 1


def test_a_list_limit_out_of_range_is_refused_under_its_name(api: Api) -> None:
    assert issues(api.get(app_passwords(USER), params={"limit": 0})) == [
        ("limit", "greater_than_equal")
    ]
