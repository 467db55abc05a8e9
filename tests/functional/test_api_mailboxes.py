"""/api/v1/mailboxes on every backend: mailboxes, passwords, removal, vacation, forwarding, Sieve.

Each answer is compared with what the service (and so `--json` of the CLI) shows for the same
object; refusals are checked for their status and for the field and rule they name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, select, text

from mailwarden.forwarding import service as forwarding
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.settings import Settings
from mailwarden.vacation import service as vacation
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD
from tests.functional.api_helpers import Api, api_on
from tests.support.managesieve_server import ManageSieveServer, closed_port, running_server

OPERATOR = Actor.local_operator(Channel.SYSTEM)
MAILBOXES = "/api/v1/mailboxes"
USER = "user1@a.example"
FOREIGN = "user1@b.example"
NEW_PASSWORD = "a new password for the API"
VACATION = {
    "subject": "Away until July",
    "body": "I am away.\nBack on 15 July.\n",
    "starts_on": "2025-07-01",
    "ends_on": "2025-07-14",
    "interval_days": 3,
}


def served(make_uow: UowFactory, read: Callable[[UnitOfWork, Actor], Any]) -> Any:
    """What the service says, as the JSON `--json` prints for it."""
    with make_uow() as uow:
        return read(uow, OPERATOR).model_dump(mode="json")


def password_hash(make_uow: UowFactory, address: str) -> str:
    with make_uow() as uow:
        stored = uow.session.scalar(select(Mailbox.password_hash).where(Mailbox.address == address))
    assert stored is not None
    return stored


def audit_entries(connection: Connection) -> list[str]:
    """Every audit entry as text (the whole row), oldest first."""
    rows = connection.execute(text("SELECT * FROM audit_log ORDER BY id"))
    return [json.dumps([str(value) for value in row]) for row in rows]


def issues(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


def conflict_rule(response: Any) -> str:
    assert response.status_code == 409, response.text
    rule: str = response.json()["errors"][0]["rule"]
    return rule


def create(api: Api, address: str, **fields: Any) -> dict[str, Any]:
    response = api.post(MAILBOXES, json={"address": address, "password": PASSWORD, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- create, show, list -------------------------------------------------------------------------


def test_create_answers_201_with_the_mailbox_as_the_service_shows_it(
    api: Api, make_uow: UowFactory
) -> None:
    response = api.post(
        MAILBOXES,
        json={
            "address": "Carol@A.example",
            "name": "Carol",
            "quota_bytes": 1024**2,
            "password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "password" not in body
    assert body == served(make_uow, lambda uow, a: mailboxes.get(uow, a, "carol@a.example"))
    assert body["address"] == "carol@a.example"
    assert body["domain"] == "a.example"
    assert body["local_part"] == "carol"
    assert body["name"] == "Carol"
    assert body["quota_bytes"] == 1024**2
    assert body["active"] is True
    assert body["password_scheme"] == "SHA256-CRYPT"
    assert body["removed_at"] is None
    assert verify_password(NEW_PASSWORD, password_hash(make_uow, "carol@a.example"))


def test_create_without_a_quota_takes_the_domains_default(api: Api) -> None:
    assert create(api, "dora@a.example")["quota_bytes"] == 1024**3


def test_create_with_a_scheme_hashes_with_it(api: Api, make_uow: UowFactory) -> None:
    body = create(api, "erin@a.example", scheme="sha512-crypt")
    assert body["password_scheme"] == "SHA512-CRYPT"
    assert password_hash(make_uow, "erin@a.example").startswith("{SHA512-CRYPT}$6$")


def test_a_generated_password_is_returned_once_and_works(
    api: Api, make_uow: UowFactory, connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = api.post(MAILBOXES, json={"address": "gen@a.example", "random_password": True})
    assert response.status_code == 201, response.text
    body = response.json()
    password = body.pop("password")
    assert len(password) == 20
    assert verify_password(password, password_hash(make_uow, "gen@a.example"))
    assert body == served(make_uow, lambda uow, a: mailboxes.get(uow, a, "gen@a.example"))
    # Once: no later answer, no audit entry and no log line holds it.
    assert "password" not in api.get(f"{MAILBOXES}/gen@a.example").json()
    listed = api.get(MAILBOXES, params={"q": "gen"}).text
    assert password not in listed
    assert not any(password in entry for entry in audit_entries(connection))
    assert password not in caplog.text


def test_a_password_the_client_sent_is_never_echoed_nor_audited(
    api: Api, connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [
        api.post(MAILBOXES, json={"address": "fay@a.example", "password": NEW_PASSWORD}),
        api.post(f"{MAILBOXES}/fay@a.example/password", json={"password": NEW_PASSWORD + "!"}),
        api.post(
            f"{MAILBOXES}/fay@a.example/password",
            json={"password": NEW_PASSWORD + "!"},
            params={"dry_run": "true"},
        ),
        # Refused: the message names the rule, not the password.
        api.post(MAILBOXES, json={"address": "gus@a.example", "password": "short!x"}),
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 422]
    for response in responses:
        assert "short!x" not in response.text
        assert NEW_PASSWORD not in response.text
    assert not any(NEW_PASSWORD in entry for entry in audit_entries(connection))
    assert NEW_PASSWORD not in caplog.text


def test_show_answers_the_mailbox_as_the_service_shows_it(api: Api, make_uow: UowFactory) -> None:
    response = api.get(f"{MAILBOXES}/User1@A.example")
    assert response.status_code == 200
    assert response.json() == served(make_uow, lambda uow, a: mailboxes.get(uow, a, USER))


def test_list_answers_a_page_as_the_service_lists_it(api: Api, make_uow: UowFactory) -> None:
    body = api.get(MAILBOXES).json()
    with make_uow() as uow:
        page = mailboxes.list_mailboxes(uow, OPERATOR)
    assert body == {
        "items": [item.model_dump(mode="json") for item in page.items],
        "next_cursor": None,
    }
    assert [m["address"] for m in body["items"]] == [
        "postmaster@a.example",
        USER,
        FOREIGN,
    ]


def test_list_pages_with_limit_and_cursor(api: Api) -> None:
    first = api.get(MAILBOXES, params={"limit": 2}).json()
    assert [m["address"] for m in first["items"]] == ["postmaster@a.example", USER]
    assert first["next_cursor"]
    second = api.get(MAILBOXES, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [m["address"] for m in second["items"]] == [FOREIGN]
    assert second["next_cursor"] is None


def test_list_filters_by_domain_search_and_state(api: Api) -> None:
    create(api, "idle@b.example", active=False, name="Quiet Person")

    def listed(**params: Any) -> list[str]:
        response = api.get(MAILBOXES, params=params)
        assert response.status_code == 200, response.text
        return [m["address"] for m in response.json()["items"]]

    assert listed(domain="b.example") == ["idle@b.example", FOREIGN]
    assert listed(q="POST") == ["postmaster@a.example"]
    assert listed(q="quiet") == ["idle@b.example"]
    assert listed(active="false") == ["idle@b.example"]
    assert listed(active="true", domain="b.example") == [FOREIGN]


def test_list_sorts_by_address_or_creation_either_way(api: Api) -> None:
    create(api, "zed@b.example")
    create(api, "abe@b.example")

    def listed(sort: str) -> list[dict[str, Any]]:
        response = api.get(MAILBOXES, params={"sort": sort, "limit": 2})
        items: list[dict[str, Any]] = response.json()["items"]
        cursor = response.json()["next_cursor"]
        while cursor:
            response = api.get(MAILBOXES, params={"sort": sort, "limit": 2, "cursor": cursor})
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
        return items

    everyone = sorted(m["address"] for m in listed("address"))
    assert [m["address"] for m in listed("address")] == everyone
    assert [m["address"] for m in listed("-address")] == everyone[::-1]
    by_creation = sorted(listed("address"), key=lambda m: (m["created_at"], m["address"]))
    assert listed("created_at") == by_creation
    assert [m["address"] for m in listed("-created_at")] == [
        m["address"] for m in by_creation[::-1]
    ]
    assert issues(api.get(MAILBOXES, params={"sort": "name"})) == [("sort", "unknown_sort")]


def test_list_refuses_a_limit_out_of_range(api: Api) -> None:
    assert issues(api.get(MAILBOXES, params={"limit": 0})) == [("limit", "greater_than_equal")]


# --- validation, conflicts, missing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"address": "not-an-address"}, ("address", "at_sign")),
        ({"colour": "red"}, ("colour", "extra_forbidden")),
        ({"quota_bytes": -1}, ("quota_bytes", "greater_than_equal")),
        ({"password": "new\nline password"}, ("password", "forbidden_character")),
        ({"password": "short"}, ("password", "too_short")),
        ({"password": 12345678}, ("password", "string_type")),
        ({"password": None}, ("password", "required")),
        ({"random_password": True}, ("random_password", "exclusive")),
        ({"scheme": "MD5"}, ("scheme", "unknown_scheme")),
        ({"scheme": "CRYPT"}, ("scheme", "scheme_not_writable")),
        ({"active": "yes"}, ("active", "bool_type")),
    ],
)
def test_create_refuses_broken_input_naming_the_field_and_rule(
    api: Api, connection: Connection, changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    before = audit_entries(connection)
    body = {"address": "x@a.example", "password": PASSWORD} | changes
    assert issues(api.post(MAILBOXES, json=body)) == [expected]
    assert api.get(f"{MAILBOXES}/x@a.example").status_code == 404
    assert audit_entries(connection) == before


def test_create_refuses_an_address_that_exists(api: Api) -> None:
    assert conflict_rule(api.post(MAILBOXES, json={"address": USER, "password": PASSWORD})) == (
        "exists"
    )
    taken = {"address": "info@a.example", "password": PASSWORD}
    assert conflict_rule(api.post(MAILBOXES, json=taken)) == "is_alias"


def test_create_in_a_missing_domain_is_not_found(api: Api) -> None:
    response = api.post(MAILBOXES, json={"address": "x@nowhere.example", "password": PASSWORD})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
        ("POST", "/password", {"password": NEW_PASSWORD}),
        ("GET", "/vacation", None),
        ("PUT", "/vacation", VACATION),
        ("DELETE", "/vacation", None),
        ("GET", "/forward", None),
        ("PUT", "/forward", {"targets": ["x@c.example"]}),
        ("DELETE", "/forward", None),
        ("POST", "/sieve/apply", None),
    ],
)
def test_every_route_answers_404_for_a_missing_mailbox(
    api: Api, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    response = api.request(method, f"{MAILBOXES}/nobody@a.example{suffix}", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["status"] == 404


def test_a_bad_address_in_the_path_is_a_422_naming_it(api: Api) -> None:
    assert issues(api.get(f"{MAILBOXES}/no-at-sign")) == [("address", "at_sign")]
    assert issues(api.get(f"{MAILBOXES}/{'x' * 250}@a.example")) == [("address", "string_too_long")]


# --- update, remove, restore --------------------------------------------------------------------


def test_update_changes_name_quota_and_state(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    before = audit_entries(connection)
    response = api.patch(
        f"{MAILBOXES}/{USER}",
        json={"name": "User One", "quota_bytes": 2 * 1024**3, "active": False},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == served(make_uow, lambda uow, a: mailboxes.get(uow, a, USER))
    assert (body["name"], body["quota_bytes"], body["active"]) == ("User One", 2 * 1024**3, False)
    assert len(audit_entries(connection)) == len(before) + 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"quota_bytes": -1}, ("quota_bytes", "greater_than_equal")),
        ({"maildir": "/etc"}, ("maildir", "extra_forbidden")),
        ({"name": "x" * 256}, ("name", "string_too_long")),
        ({"quota_bytes": 20 * 1024**3}, ("quota_bytes", "exceeds_domain_quota")),
    ],
)
def test_update_refuses_broken_input(
    api: Api, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    before = api.get(f"{MAILBOXES}/{USER}").json()
    assert issues(api.patch(f"{MAILBOXES}/{USER}", json=body)) == [expected]
    assert api.get(f"{MAILBOXES}/{USER}").json() == before


def test_remove_answers_the_removed_mailbox_and_restore_brings_it_back(
    api: Api, make_uow: UowFactory
) -> None:
    removed = api.delete(f"{MAILBOXES}/{USER}")
    assert removed.status_code == 200, removed.text
    body = removed.json()
    assert body["address"] == USER
    removed_at = datetime.fromisoformat(body["removed_at"])
    assert datetime.fromisoformat(body["purge_after"]) == removed_at + timedelta(hours=48)
    assert api.get(f"{MAILBOXES}/{USER}").json() == served(
        make_uow, lambda uow, a: mailboxes.get(uow, a, USER)
    )
    live = [m["address"] for m in api.get(MAILBOXES).json()["items"]]
    assert USER not in live
    pending = api.get(MAILBOXES, params={"removed": "true"}).json()["items"]
    assert [m["address"] for m in pending] == [USER]
    assert conflict_rule(api.delete(f"{MAILBOXES}/{USER}")) == "already_removed"
    assert conflict_rule(api.patch(f"{MAILBOXES}/{USER}", json={"name": "x"})) == "removed"
    assert conflict_rule(api.post(MAILBOXES, json={"address": USER, "password": PASSWORD})) == (
        "pending_purge"
    )

    restored = api.post(f"{MAILBOXES}/{USER}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["removed_at"] is None
    assert restored.json()["purge_after"] is None
    assert restored.json() == served(make_uow, lambda uow, a: mailboxes.get(uow, a, USER))
    assert conflict_rule(api.post(f"{MAILBOXES}/{USER}/restore")) == "not_removed"


# --- passwords ----------------------------------------------------------------------------------


def test_set_password_answers_like_passwd_json_and_the_password_works(
    api: Api, make_uow: UowFactory
) -> None:
    response = api.post(
        f"{MAILBOXES}/{USER}/password", json={"password": NEW_PASSWORD, "scheme": "SHA512-CRYPT"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"address": USER, "password_scheme": "SHA512-CRYPT"}
    stored = password_hash(make_uow, USER)
    assert verify_password(NEW_PASSWORD, stored)
    assert not verify_password(PASSWORD, stored)


def test_set_a_random_password_returns_it_once(api: Api, make_uow: UowFactory) -> None:
    response = api.post(f"{MAILBOXES}/{USER}/password", json={"random_password": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"address", "password_scheme", "password"}
    assert verify_password(body["password"], password_hash(make_uow, USER))
    assert body["password"] not in api.get(f"{MAILBOXES}/{USER}").text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"password": "new\nline password"}, ("password", "forbidden_character")),
        ({"password": "{SHA512-CRYPT}$6$abc"}, ("password", "looks_like_hash")),
        ({}, ("password", "required")),
        ({"password": NEW_PASSWORD, "random_password": True}, ("random_password", "exclusive")),
        ({"password": NEW_PASSWORD, "scheme": "NOPE"}, ("scheme", "unknown_scheme")),
        ({"password": NEW_PASSWORD, "hash": "x"}, ("hash", "extra_forbidden")),
    ],
)
def test_set_password_refuses_broken_input(
    api: Api, make_uow: UowFactory, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    before = password_hash(make_uow, USER)
    assert issues(api.post(f"{MAILBOXES}/{USER}/password", json=body)) == [expected]
    assert password_hash(make_uow, USER) == before


# --- vacation, forwarding, Sieve ----------------------------------------------------------------


def test_vacation_is_disabled_and_empty_until_set(api: Api) -> None:
    response = api.get(f"{MAILBOXES}/{USER}/vacation")
    assert response.status_code == 200
    assert response.json() == {
        "address": USER,
        "enabled": False,
        "subject": None,
        "body": None,
        "starts_on": None,
        "ends_on": None,
        "interval_days": None,
        "updated_at": None,
    }


def test_vacation_set_show_and_disable(api: Api, make_uow: UowFactory) -> None:
    response = api.put(f"{MAILBOXES}/{USER}/vacation", json=VACATION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == served(make_uow, lambda uow, a: vacation.get_vacation(uow, a, USER))
    assert {k: body[k] for k in VACATION} == VACATION
    assert body["enabled"] is True
    assert api.get(f"{MAILBOXES}/{USER}/vacation").json() == body

    disabled = api.delete(f"{MAILBOXES}/{USER}/vacation")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    # The text is kept for the next time.
    assert disabled.json()["subject"] == VACATION["subject"]
    assert disabled.json() == served(make_uow, lambda uow, a: vacation.get_vacation(uow, a, USER))


def test_vacation_dates_are_optional(api: Api) -> None:
    body = {"subject": "Away", "body": "Gone fishing."}
    response = api.put(f"{MAILBOXES}/{USER}/vacation", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["starts_on"] is None
    assert response.json()["interval_days"] == 7


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ends_on": "2025-13-01"}, [("ends_on", "invalid_date")]),
        ({"starts_on": "2025-7-1"}, [("starts_on", "invalid_date")]),
        ({"starts_on": "2025-07-01T00:00:00"}, [("starts_on", "invalid_date")]),
        ({"starts_on": 20250701}, [("starts_on", "string_type")]),
        ({"ends_on": "2025-06-30"}, [("ends_on", "before_start")]),
        ({"interval_days": 0}, [("interval_days", "out_of_range")]),
        ({"subject": "two\nlines"}, [("subject", "control_character")]),
        ({"reply_to": "x@c.example"}, [("reply_to", "extra_forbidden")]),
    ],
)
def test_vacation_refuses_broken_input_naming_the_field(
    api: Api,
    connection: Connection,
    changes: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    before = audit_entries(connection)
    assert issues(api.put(f"{MAILBOXES}/{USER}/vacation", json=VACATION | changes)) == expected
    assert api.get(f"{MAILBOXES}/{USER}/vacation").json()["enabled"] is False
    assert audit_entries(connection) == before


def test_forward_set_show_and_disable(api: Api, make_uow: UowFactory) -> None:
    assert api.get(f"{MAILBOXES}/{USER}/forward").json() == {
        "address": USER,
        "enabled": False,
        "targets": [],
        "keep_copy": True,
        "updated_at": None,
    }
    response = api.put(
        f"{MAILBOXES}/{USER}/forward",
        json={"targets": ["Home@C.example", "desk+mail@c.example"], "keep_copy": False},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == served(make_uow, lambda uow, a: forwarding.get_forward(uow, a, USER))
    assert body["targets"] == ["home@c.example", "desk+mail@c.example"]
    assert (body["enabled"], body["keep_copy"]) == (True, False)

    disabled = api.delete(f"{MAILBOXES}/{USER}/forward")
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert disabled.json()["targets"] == body["targets"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"targets": [USER]}, [("targets[0]", "self_target")]),
        ({"targets": []}, [("targets", "required")]),
        ({"targets": ["a@c.example", "a@c.example"]}, [("targets[1]", "duplicate")]),
        ({"targets": "a@c.example"}, [("targets", "list_type")]),
        ({"targets": ["a@c.example"], "copy": True}, [("copy", "extra_forbidden")]),
    ],
)
def test_forward_refuses_broken_input(
    api: Api, body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert issues(api.put(f"{MAILBOXES}/{USER}/forward", json=body)) == expected
    assert api.get(f"{MAILBOXES}/{USER}/forward").json()["enabled"] is False


def test_sieve_apply_without_a_server_is_a_conflict(api: Api) -> None:
    assert conflict_rule(api.post(f"{MAILBOXES}/{USER}/sieve/apply")) == "not_configured"


def test_sieve_apply_says_when_the_upload_failed(
    api: Api, connection: Connection, settings: Settings
) -> None:
    unreachable = settings.model_copy(
        update={
            "managesieve_host": "127.0.0.1",
            "managesieve_port": closed_port(),
            "sieve_master_password": SecretStr("master secret"),
        }
    )
    with api_on(connection, unreachable, api.keys) as sieve_api:
        stored = sieve_api.put(f"{MAILBOXES}/{USER}/vacation", json=VACATION)
        assert stored.status_code == 200, stored.text
        assert "mailwarden-follow-up-failed" in stored.headers
        response = sieve_api.post(f"{MAILBOXES}/{USER}/sieve/apply")
    assert response.status_code == 200, response.text
    assert "mailwarden-follow-up-failed" in response.headers
    body = response.json()
    script = body.pop("script")
    assert body == {
        "address": USER,
        "script_name": "mailwarden",
        "vacation_enabled": True,
        "forward_enabled": False,
        "applied": False,
    }
    assert "vacation" in script


@pytest.fixture(scope="module")
def sieve_server() -> Iterator[ManageSieveServer]:
    yield from running_server([USER])


def test_vacation_and_apply_reach_a_real_managesieve_server(
    api: Api, connection: Connection, sieve_server: ManageSieveServer, settings: Settings
) -> None:
    reachable = settings.model_copy(
        update={
            "managesieve_host": sieve_server.host,
            "managesieve_port": sieve_server.port,
            "sieve_master_user": sieve_server.master_user,
            "sieve_master_password": SecretStr(sieve_server.master_password),
        }
    )
    with api_on(connection, reachable, api.keys) as sieve_api:
        stored = sieve_api.put(f"{MAILBOXES}/{USER}/vacation", json=VACATION)
        assert stored.status_code == 200, stored.text
        assert "mailwarden-follow-up-failed" not in stored.headers
        script = sieve_server.stored_script(USER)
        assert script is not None
        assert ':subject "Away until July"' in script

        applied = sieve_api.post(f"{MAILBOXES}/{USER}/sieve/apply")
        assert applied.status_code == 200, applied.text
        assert "mailwarden-follow-up-failed" not in applied.headers
        assert applied.json()["applied"] is True
        assert applied.json()["script"] == sieve_server.stored_script(USER)

        assert sieve_api.delete(f"{MAILBOXES}/{USER}/vacation").status_code == 200
        assert sieve_server.stored_script(USER) is None
    assert sieve_server.master_password not in json.dumps(audit_entries(connection))


# --- dry runs -----------------------------------------------------------------------------------


def _remove_user(api: Api) -> None:
    assert api.delete(f"{MAILBOXES}/{USER}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "prepare"),
    [
        ("POST", MAILBOXES, {"address": "dry@a.example", "random_password": True}, None),
        ("PATCH", f"{MAILBOXES}/{USER}", {"name": "Dry", "active": False}, None),
        ("DELETE", f"{MAILBOXES}/{USER}", None, None),
        ("POST", f"{MAILBOXES}/{USER}/restore", None, _remove_user),
        ("POST", f"{MAILBOXES}/{USER}/password", {"password": NEW_PASSWORD}, None),
        ("PUT", f"{MAILBOXES}/{USER}/vacation", VACATION, None),
        ("PUT", f"{MAILBOXES}/{USER}/forward", {"targets": ["x@c.example"]}, None),
    ],
)
def test_a_dry_run_answers_the_plan_and_changes_nothing(
    api: Api,
    make_uow: UowFactory,
    connection: Connection,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    prepare: Callable[[Api], None] | None,
) -> None:
    if prepare is not None:
        prepare(api)

    def state() -> list[Any]:
        return [
            api.get(MAILBOXES).json(),
            api.get(MAILBOXES, params={"removed": "true"}).json(),
            api.get(f"{MAILBOXES}/{USER}").json(),
            api.get(f"{MAILBOXES}/{USER}/vacation").json(),
            api.get(f"{MAILBOXES}/{USER}/forward").json(),
            password_hash(make_uow, USER),
            audit_entries(connection),
        ]

    before = state()
    response = api.request(method, path, json=body, params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dry_run"] is True
    assert len(answer["plan"]) == 1
    assert "password" not in json.dumps(answer).replace("password_", "")
    assert state() == before


def test_a_dry_run_of_disabling_what_is_enabled_changes_nothing(
    api: Api, connection: Connection
) -> None:
    assert api.put(f"{MAILBOXES}/{USER}/vacation", json=VACATION).status_code == 200
    assert api.put(f"{MAILBOXES}/{USER}/forward", json={"targets": ["x@c.example"]}).is_success
    before = [
        api.get(f"{MAILBOXES}/{USER}/vacation").json(),
        api.get(f"{MAILBOXES}/{USER}/forward").json(),
        audit_entries(connection),
    ]
    for kind in ("vacation", "forward"):
        response = api.delete(f"{MAILBOXES}/{USER}/{kind}", params={"dry_run": "true"})
        assert response.json()["dry_run"] is True
        plan = response.json()["plan"]
        assert [(change["change"], change["object_type"]) for change in plan] == [("update", kind)]
    after = [
        api.get(f"{MAILBOXES}/{USER}/vacation").json(),
        api.get(f"{MAILBOXES}/{USER}/forward").json(),
        audit_entries(connection),
    ]
    assert after == before


# --- who may --------------------------------------------------------------------------------------


FOREIGN_REQUESTS = [
    ("GET", f"{MAILBOXES}/{FOREIGN}", None),
    ("PATCH", f"{MAILBOXES}/{FOREIGN}", {"name": "x"}),
    ("DELETE", f"{MAILBOXES}/{FOREIGN}", None),
    ("POST", f"{MAILBOXES}/{FOREIGN}/restore", None),
    ("POST", f"{MAILBOXES}/{FOREIGN}/password", {"password": NEW_PASSWORD}),
    ("GET", f"{MAILBOXES}/{FOREIGN}/vacation", None),
    ("PUT", f"{MAILBOXES}/{FOREIGN}/vacation", VACATION),
    ("DELETE", f"{MAILBOXES}/{FOREIGN}/vacation", None),
    ("GET", f"{MAILBOXES}/{FOREIGN}/forward", None),
    ("PUT", f"{MAILBOXES}/{FOREIGN}/forward", {"targets": ["x@c.example"]}),
    ("DELETE", f"{MAILBOXES}/{FOREIGN}/forward", None),
    ("POST", f"{MAILBOXES}/{FOREIGN}/sieve/apply", None),
    ("POST", MAILBOXES, {"address": "new@b.example", "password": PASSWORD}),
    ("GET", MAILBOXES, None),  # with domain=b.example, below
]


@pytest.mark.parametrize(("method", "path", "body"), FOREIGN_REQUESTS)
def test_a_domain_admin_finds_nothing_of_another_domain(
    api: Api, connection: Connection, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = [api.get(f"{MAILBOXES}/{FOREIGN}").json(), audit_entries(connection)]
    params = {"domain": "b.example"} if path == MAILBOXES and method == "GET" else None
    response = api.request(method, path, json=body, params=params, as_="domain_admin_a")
    assert response.status_code == 404, response.text
    assert [api.get(f"{MAILBOXES}/{FOREIGN}").json(), audit_entries(connection)] == before


def test_a_domain_admin_lists_and_changes_its_own_domain_only(api: Api) -> None:
    listed = api.get(MAILBOXES, as_="domain_admin_a").json()["items"]
    assert [m["address"] for m in listed] == ["postmaster@a.example", USER]
    response = api.patch(f"{MAILBOXES}/{USER}", json={"name": "Mine"}, as_="domain_admin_a")
    assert response.status_code == 200
    assert response.json()["name"] == "Mine"


MUTATIONS = [
    ("POST", MAILBOXES, {"address": "new@a.example", "password": PASSWORD}),
    ("PATCH", f"{MAILBOXES}/{USER}", {"name": "x"}),
    ("DELETE", f"{MAILBOXES}/{USER}", None),
    ("POST", f"{MAILBOXES}/{USER}/restore", None),
    ("POST", f"{MAILBOXES}/{USER}/password", {"password": NEW_PASSWORD}),
    ("PUT", f"{MAILBOXES}/{USER}/vacation", VACATION),
    ("DELETE", f"{MAILBOXES}/{USER}/vacation", None),
    ("PUT", f"{MAILBOXES}/{USER}/forward", {"targets": ["x@c.example"]}),
    ("DELETE", f"{MAILBOXES}/{USER}/forward", None),
    ("POST", f"{MAILBOXES}/{USER}/sieve/apply", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MUTATIONS)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_read_only_key_is_refused_every_mutation(
    api: Api,
    connection: Connection,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    dry_run: bool,
) -> None:
    before = audit_entries(connection)
    params = {"dry_run": "true"} if dry_run else None
    response = api.request(method, path, json=body, params=params, as_="read_only")
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert audit_entries(connection) == before


def test_a_read_only_key_reads(api: Api) -> None:
    for path in (MAILBOXES, f"{MAILBOXES}/{USER}", f"{MAILBOXES}/{USER}/vacation"):
        assert api.get(path, as_="read_only").status_code == 200
    assert api.get(f"{MAILBOXES}/{USER}/forward", as_="read_only").status_code == 200
