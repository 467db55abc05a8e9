"""/api/v1/registrations on every backend: the moderation queue over HTTP.

Answers are compared with what the service (and so `mailwarden registration ... --json`) shows;
an approval creates the mailbox with the password the visitor chose; no answer ever holds that
password or its hash; an admin of one domain never sees or decides another domain's requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text

from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationSubmit
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.api_helpers import Api, api_rebound, make_persona_keys, shared_app

OPERATOR = Actor.local_operator(Channel.SYSTEM)
REGISTRATIONS = "/api/v1/registrations"
CHOSEN = "the visitor's own passphrase"
CLIENT = "198.51.100.7"
# Submitted in this order, so the queue (oldest first) lists them so.
REQUESTS = ("newcomer@a.example", "second@a.example", "newcomer@b.example")


@pytest.fixture
def built_app() -> FastAPI:
    return shared_app()


@pytest.fixture
def queue(world: World, make_uow: UowFactory) -> dict[str, int]:
    """Registration open in both domains and a pending request per REQUESTS: address -> id."""
    with make_uow() as uow:
        for domain in ("a.example", "b.example"):
            domains.update(uow, OPERATOR, domain, parse(DomainUpdate, {"registration_open": True}))
        for address in REQUESTS:
            data = {"address": address, "name": "New Person", "password": CHOSEN}
            registrations.submit(uow, parse(RegistrationSubmit, data), client_address=CLIENT)
        page = registrations.list_requests(uow, OPERATOR, limit=500)
        uow.finish()
    return {request.address: request.id for request in page.items}


@pytest.fixture
def api(
    built_app: FastAPI,
    queue: dict[str, int],
    make_uow: UowFactory,
    connection: Connection,
    settings: Settings,
) -> Iterator[Api]:
    with api_rebound(built_app, connection, settings, make_persona_keys(make_uow)) as client:
        yield client


def served(make_uow: UowFactory, request_id: int) -> dict[str, Any]:
    with make_uow() as uow:
        return registrations.get(uow, OPERATOR, request_id).model_dump(mode="json")


def addresses(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["address"] for item in response.json()["items"]]


def audit_entries(connection: Connection) -> list[str]:
    rows = connection.execute(text("SELECT * FROM audit_log ORDER BY id"))
    return [json.dumps([str(value) for value in row]) for row in rows]


def mailbox_hash(connection: Connection, address: str) -> str | None:
    stored = connection.execute(
        text("SELECT password_hash FROM mailboxes WHERE address = :address"), {"address": address}
    ).scalar_one_or_none()
    return None if stored is None else str(stored)


def issues(response: Any, status: int = 422) -> list[tuple[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


def assert_no_secret(response: Any) -> None:
    for secret in (CHOSEN, '"password"', "password_hash", "{SHA", "$5$", "$6$"):
        assert secret not in response.text, response.text


# --- reading the queue ------------------------------------------------------------------------


def test_the_queue_lists_pending_requests_oldest_first(api: Api, make_uow: UowFactory) -> None:
    response = api.get(REGISTRATIONS)
    assert addresses(response) == list(REQUESTS)
    assert response.json()["items"][0] == served(make_uow, response.json()["items"][0]["id"])
    assert response.json()["items"][0]["client_address"] == CLIENT
    assert_no_secret(response)


def test_the_queue_pages_with_its_cursor(api: Api) -> None:
    first = api.get(REGISTRATIONS, params={"limit": 2})
    assert addresses(first) == list(REQUESTS[:2])
    cursor = first.json()["next_cursor"]
    assert cursor
    rest = api.get(REGISTRATIONS, params={"limit": 2, "cursor": cursor})
    assert addresses(rest) == list(REQUESTS[2:])
    assert rest.json()["next_cursor"] is None


def test_the_queue_filters_by_domain_and_status(api: Api, queue: dict[str, int]) -> None:
    api.post(f"{REGISTRATIONS}/{queue['second@a.example']}/reject", json={"reason": "no"})
    assert addresses(api.get(REGISTRATIONS, params={"domain": "a.example"})) == [REQUESTS[0]]
    assert addresses(api.get(REGISTRATIONS, params={"status": "rejected"})) == [REQUESTS[1]]
    assert addresses(api.get(REGISTRATIONS, params={"status": "approved"})) == []
    assert addresses(api.get(REGISTRATIONS, params={"status": "all"})) == list(REQUESTS)


def test_an_unknown_status_is_refused_under_its_name(api: Api) -> None:
    assert [field for field, _ in issues(api.get(REGISTRATIONS, params={"status": "new"}))] == [
        "status"
    ]


def test_a_forged_cursor_is_refused_under_its_name(api: Api) -> None:
    response = api.get(REGISTRATIONS, params={"cursor": "' OR 1=1 --"})
    assert [field for field, _ in issues(response)] == ["cursor"]


def test_a_request_is_shown_as_the_service_shows_it(
    api: Api, make_uow: UowFactory, queue: dict[str, int]
) -> None:
    request_id = queue["newcomer@a.example"]
    response = api.get(f"{REGISTRATIONS}/{request_id}", as_="domain_admin_a")
    assert response.status_code == 200, response.text
    assert response.json() == served(make_uow, request_id)
    assert response.json()["status"] == "pending"
    assert_no_secret(response)


# --- deciding ---------------------------------------------------------------------------------


def test_approval_creates_the_mailbox_with_the_chosen_password(
    api: Api, make_uow: UowFactory, connection: Connection, queue: dict[str, int]
) -> None:
    request_id = queue["newcomer@a.example"]
    response = api.post(f"{REGISTRATIONS}/{request_id}/approve", as_="domain_admin_a")
    assert response.status_code == 200, response.text
    with make_uow() as uow:
        mailbox = mailboxes.get(uow, OPERATOR, "newcomer@a.example").model_dump(mode="json")
    assert response.json() == mailbox
    assert (mailbox["address"], mailbox["name"]) == ("newcomer@a.example", "New Person")
    stored = mailbox_hash(connection, "newcomer@a.example")
    assert stored is not None and verify_password(CHOSEN, stored)
    assert stored not in response.text
    assert_no_secret(response)
    decided = served(make_uow, request_id)
    assert (decided["status"], decided["decided_by"]) == ("approved", "alice")


def test_rejection_records_the_reason_and_creates_nothing(
    api: Api, make_uow: UowFactory, connection: Connection, queue: dict[str, int]
) -> None:
    request_id = queue["newcomer@a.example"]
    response = api.post(
        f"{REGISTRATIONS}/{request_id}/reject",
        json={"reason": "not a member"},
        as_="domain_admin_a",
    )
    assert response.status_code == 200, response.text
    assert response.json() == served(make_uow, request_id)
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "not a member")
    assert mailbox_hash(connection, "newcomer@a.example") is None
    assert api.get(f"{REGISTRATIONS}/{request_id}").json()["reason"] == "not a member"


def test_a_rejection_without_a_reason_has_an_empty_one(api: Api, queue: dict[str, int]) -> None:
    response = api.post(f"{REGISTRATIONS}/{queue['newcomer@b.example']}/reject", json={})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "")


def test_a_decided_request_is_not_decided_again(api: Api, queue: dict[str, int]) -> None:
    path = f"{REGISTRATIONS}/{queue['newcomer@a.example']}"
    assert api.post(f"{path}/approve").status_code == 200
    assert issues(api.post(f"{path}/reject", json={}), 409) == [("id", "decided")]
    assert issues(api.post(f"{path}/approve"), 409) == [("id", "decided")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"reason": "x" * 256}, ("reason", "too_long")),
        ({"reason": "line\nbreak"}, ("reason", "control_character")),
        ({"reason": 7}, ("reason", "string_type")),
        ({"reason": "", "status": "approved"}, ("status", "extra_forbidden")),
    ],
    ids=["too-long", "control", "number", "extra"],
)
def test_a_bad_rejection_is_refused_with_its_field_and_rule(
    api: Api, make_uow: UowFactory, queue: dict[str, int], body: dict[str, Any], expected: Any
) -> None:
    request_id = queue["newcomer@a.example"]
    response = api.post(f"{REGISTRATIONS}/{request_id}/reject", json=body)
    assert issues(response) == [expected]
    assert served(make_uow, request_id)["status"] == "pending"


# --- dry run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body"), [("approve", None), ("reject", {"reason": "not a member"})]
)
def test_a_dry_run_decision_changes_nothing(
    api: Api,
    make_uow: UowFactory,
    connection: Connection,
    queue: dict[str, int],
    action: str,
    body: dict[str, Any] | None,
) -> None:
    request_id = queue["newcomer@a.example"]
    before, entries = served(make_uow, request_id), audit_entries(connection)
    response = api.post(
        f"{REGISTRATIONS}/{request_id}/{action}", json=body, params={"dry_run": "true"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dry_run"] is True and answer["plan"]
    assert_no_secret(response)
    assert served(make_uow, request_id) == before
    assert mailbox_hash(connection, "newcomer@a.example") is None
    assert audit_entries(connection) == entries


# --- scoping ----------------------------------------------------------------------------------


def test_a_domain_admin_sees_only_its_domains_requests(api: Api) -> None:
    assert addresses(api.get(REGISTRATIONS, as_="domain_admin_a")) == list(REQUESTS[:2])
    assert addresses(api.get(REGISTRATIONS, as_="domain_admin_b")) == list(REQUESTS[2:])
    assert addresses(api.get(REGISTRATIONS, as_="narrowed_a")) == list(REQUESTS[:2])
    foreign = api.get(REGISTRATIONS, as_="domain_admin_a", params={"domain": "b.example"})
    assert foreign.status_code == 404, foreign.text


def test_a_domain_admin_cannot_see_or_decide_another_domains_request(
    api: Api, make_uow: UowFactory, connection: Connection, queue: dict[str, int]
) -> None:
    request_id = queue["newcomer@b.example"]
    before, entries = served(make_uow, request_id), audit_entries(connection)
    for persona in ("domain_admin_a", "narrowed_a"):
        for method, path, body in (
            ("GET", f"{REGISTRATIONS}/{request_id}", None),
            ("POST", f"{REGISTRATIONS}/{request_id}/approve", None),
            ("POST", f"{REGISTRATIONS}/{request_id}/reject", {"reason": ""}),
        ):
            response = api.request(method, path, as_=persona, json=body)
            # The same answer as for a request that does not exist.
            assert response.status_code == 404, f"{method} {path} as {persona}: {response.text}"
            assert "newcomer" not in response.text
    assert served(make_uow, request_id) == before
    assert mailbox_hash(connection, "newcomer@b.example") is None
    assert audit_entries(connection) == entries


def test_a_read_only_key_reads_but_cannot_decide(
    api: Api, make_uow: UowFactory, queue: dict[str, int]
) -> None:
    request_id = queue["newcomer@a.example"]
    assert api.get(f"{REGISTRATIONS}/{request_id}", as_="read_only").status_code == 200
    for action in ("approve", "reject"):
        response = api.post(f"{REGISTRATIONS}/{request_id}/{action}", as_="read_only", json={})
        assert response.status_code == 403, response.text
    assert served(make_uow, request_id)["status"] == "pending"


@pytest.mark.parametrize("request_id", ["0", "2147483647", "99999999999999999999"])
def test_a_missing_request_is_a_404(api: Api, request_id: str) -> None:
    response = api.get(f"{REGISTRATIONS}/{request_id}")
    assert response.status_code == 404, response.text


def test_a_request_id_that_is_not_a_number_is_refused_under_its_name(api: Api) -> None:
    assert [field for field, _ in issues(api.get(f"{REGISTRATIONS}/newcomer"))] == ["request_id"]


def test_decisions_are_audited_under_the_key_without_the_password(
    api: Api, connection: Connection, queue: dict[str, int]
) -> None:
    before = len(audit_entries(connection))
    api.post(f"{REGISTRATIONS}/{queue['newcomer@a.example']}/approve", as_="domain_admin_a")
    api.post(f"{REGISTRATIONS}/{queue['second@a.example']}/reject", json={}, as_="domain_admin_a")
    entries = audit_entries(connection)[before:]
    assert any("registration.approve" in entry for entry in entries)
    assert any("registration.reject" in entry for entry in entries)
    assert all("alice" in entry and CHOSEN not in entry for entry in entries)
