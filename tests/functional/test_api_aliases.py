"""/api/v1/aliases and /api/v1/alias-domains on every backend.

Each answer is compared with what the service (and so `--json` of the CLI) shows for the same
object; refusals are checked for their status and for the field and rule they name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, text

from mailwarden.alias_domains import service as alias_domains
from mailwarden.aliases import service as aliases
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.unit_of_work import UnitOfWork
from tests.conftest import UowFactory
from tests.functional.api_helpers import Api

OPERATOR = Actor.local_operator(Channel.SYSTEM)
ALIASES = "/api/v1/aliases"
ALIAS_DOMAINS = "/api/v1/alias-domains"
INFO = "info@a.example"
FOREIGN = "info@b.example"


def served(make_uow: UowFactory, read: Callable[[UnitOfWork, Actor], Any]) -> Any:
    """What the service says, as the JSON `--json` prints for it."""
    with make_uow() as uow:
        return read(uow, OPERATOR).model_dump(mode="json")


def audit_entries(connection: Connection) -> list[str]:
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


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def addresses(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["address"] for item in response.json()["items"]]


def make_alias_domains(api: Api) -> None:
    for name, target, active in (
        ("alias-a.example", "a.example", True),
        ("other-a.example", "a.example", False),
        ("alias-b.example", "b.example", True),
    ):
        body = {"alias_domain": name, "target_domain": target, "active": active}
        created(api.post(ALIAS_DOMAINS, json=body))


# --- aliases ------------------------------------------------------------------------------------


def test_create_answers_201_with_the_alias_as_the_service_shows_it(
    api: Api, make_uow: UowFactory, connection: Connection
) -> None:
    before = len(audit_entries(connection))
    body = created(
        api.post(
            ALIASES,
            json={"address": "Sales@A.example", "targets": ["USER1@a.example", "x+y@c.example"]},
        )
    )
    assert body == {
        "address": "sales@a.example",
        "domain": "a.example",
        "catch_all": False,
        "targets": ["user1@a.example", "x+y@c.example"],
        "active": True,
    }
    assert body == served(make_uow, lambda uow, a: aliases.get(uow, a, "sales@a.example"))
    assert api.get(f"{ALIASES}/sales@a.example").json() == body
    assert len(audit_entries(connection)) == before + 1


def test_a_catch_all_is_created_read_changed_and_removed_at_its_at_domain_path(
    api: Api, make_uow: UowFactory
) -> None:
    body = created(api.post(ALIASES, json={"address": "@a.example", "targets": [INFO]}))
    assert (body["address"], body["catch_all"]) == ("@a.example", True)
    shown = api.get(f"{ALIASES}/@a.example")
    assert shown.status_code == 200
    assert (
        shown.json() == body == served(make_uow, lambda uow, a: aliases.get(uow, a, "@a.example"))
    )
    # Clients that percent-encode the '@' reach the same alias.
    assert api.get(f"{ALIASES}/%40a.example").json() == body

    changed = api.patch(f"{ALIASES}/@a.example", json={"add_targets": ["user1@a.example"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["targets"] == [INFO, "user1@a.example"]

    removed = api.delete(f"{ALIASES}/@a.example")
    assert removed.status_code == 204
    assert removed.content == b""
    assert api.get(f"{ALIASES}/@a.example").status_code == 404


def test_update_replaces_adds_and_removes_targets_and_changes_the_state(
    api: Api, make_uow: UowFactory
) -> None:
    path = f"{ALIASES}/{INFO}"
    replaced = api.patch(path, json={"set_targets": ["a@c.example", "b@c.example"]})
    assert replaced.json()["targets"] == ["a@c.example", "b@c.example"]
    edited = api.patch(
        path, json={"add_targets": ["c@c.example"], "remove_targets": ["a@c.example"]}
    )
    assert edited.json()["targets"] == ["b@c.example", "c@c.example"]
    disabled = api.patch(path, json={"active": False})
    assert disabled.status_code == 200
    assert disabled.json()["active"] is False
    assert disabled.json() == served(make_uow, lambda uow, a: aliases.get(uow, a, INFO))


def test_list_answers_a_page_as_the_service_lists_it(api: Api, make_uow: UowFactory) -> None:
    body = api.get(ALIASES).json()
    with make_uow() as uow:
        page = aliases.list_aliases(uow, OPERATOR)
    assert body == {
        "items": [item.model_dump(mode="json") for item in page.items],
        "next_cursor": None,
    }
    assert [a["address"] for a in body["items"]] == [INFO, FOREIGN]


def test_list_filters_sorts_and_pages(api: Api) -> None:
    created(api.post(ALIASES, json={"address": "@a.example", "targets": [INFO]}))
    off = {"address": "off@b.example", "targets": ["x@c.example"], "active": False}
    created(api.post(ALIASES, json=off))

    assert addresses(api.get(ALIASES)) == ["@a.example", INFO, FOREIGN, "off@b.example"]
    assert addresses(api.get(ALIASES, params={"domain": "b.example"})) == [
        FOREIGN,
        "off@b.example",
    ]
    # The search looks at targets too.
    assert addresses(api.get(ALIASES, params={"q": "X@C"})) == ["off@b.example"]
    assert addresses(api.get(ALIASES, params={"active": "false"})) == ["off@b.example"]
    assert addresses(api.get(ALIASES, params={"sort": "-address"})) == [
        "off@b.example",
        FOREIGN,
        INFO,
        "@a.example",
    ]
    first = api.get(ALIASES, params={"limit": 3}).json()
    assert [a["address"] for a in first["items"]] == ["@a.example", INFO, FOREIGN]
    rest = api.get(ALIASES, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [a["address"] for a in rest["items"]] == ["off@b.example"]
    assert rest["next_cursor"] is None
    assert issues(api.get(ALIASES, params={"sort": "targets"})) == [("sort", "unknown_sort")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"address": "no-at-sign", "targets": [INFO]}, ("address", "at_sign")),
        (
            {"address": "x@a.example", "targets": [INFO], "colour": "red"},
            ("colour", "extra_forbidden"),
        ),
        ({"address": "x@a.example", "targets": []}, ("targets", "too_short")),
        ({"address": "x@a.example", "targets": "user1@a.example"}, ("targets", "list_type")),
        ({"address": "x@a.example", "targets": ["x@a.example"]}, ("targets[0]", "self_loop")),
        ({"address": "x@a.example", "targets": [INFO, "|/bin/sh"]}, ("targets[1]", "pipe_target")),
        ({"address": "x@a.example"}, ("targets", "missing")),
    ],
)
def test_create_refuses_broken_input_naming_the_field_and_rule(
    api: Api, connection: Connection, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    before = audit_entries(connection)
    assert issues(api.post(ALIASES, json=body)) == [expected]
    assert api.get(f"{ALIASES}/x@a.example").status_code == 404
    assert audit_entries(connection) == before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"set_targets": [INFO], "add_targets": ["x@c.example"]}, ("set_targets", "exclusive")),
        ({"remove_targets": ["nobody@c.example"]}, ("remove_targets", "not_a_target")),
        ({"remove_targets": ["user1@a.example"]}, ("targets", "required")),
        ({"targets": ["x@c.example"]}, ("targets", "extra_forbidden")),
        ({"active": "no"}, ("active", "bool_type")),
    ],
)
def test_update_refuses_broken_input(
    api: Api, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    before = api.get(f"{ALIASES}/{INFO}").json()
    assert issues(api.patch(f"{ALIASES}/{INFO}", json=body)) == [expected]
    assert api.get(f"{ALIASES}/{INFO}").json() == before


def test_create_refuses_an_address_that_is_taken(api: Api) -> None:
    assert conflict_rule(api.post(ALIASES, json={"address": INFO, "targets": ["x@c.example"]})) == (
        "exists"
    )
    mailbox = {"address": "user1@a.example", "targets": ["x@c.example"]}
    assert conflict_rule(api.post(ALIASES, json=mailbox)) == "is_mailbox"


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"active": False}), ("DELETE", None)]
)
def test_a_missing_alias_is_not_found(api: Api, method: str, body: dict[str, Any] | None) -> None:
    for address in ("nobody@a.example", "@b.example"):
        response = api.request(method, f"{ALIASES}/{address}", json=body)
        assert response.status_code == 404, response.text


def test_a_bad_address_in_the_path_is_a_422_naming_it(api: Api) -> None:
    assert issues(api.get(f"{ALIASES}/no-at-sign")) == [("address", "at_sign")]


# --- alias domains ------------------------------------------------------------------------------


def test_create_an_alias_domain_answers_201_as_the_service_shows_it(
    api: Api, make_uow: UowFactory
) -> None:
    body = created(
        api.post(
            ALIAS_DOMAINS, json={"alias_domain": "Bücher.example", "target_domain": "a.example"}
        )
    )
    name = "xn--bcher-kva.example"
    assert body == served(make_uow, lambda uow, a: alias_domains.get(uow, a, name))
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "alias_domain": name,
        "target_domain": "a.example",
        "active": True,
    }
    assert api.get(f"{ALIAS_DOMAINS}/{name}").json() == body
    assert api.get(f"{ALIAS_DOMAINS}/bücher.example").json() == body


def test_alias_domains_list_filter_sort_and_page(api: Api, make_uow: UowFactory) -> None:
    make_alias_domains(api)

    def names(**params: Any) -> list[str]:
        response = api.get(ALIAS_DOMAINS, params=params)
        assert response.status_code == 200, response.text
        return [item["alias_domain"] for item in response.json()["items"]]

    everything = api.get(ALIAS_DOMAINS).json()
    with make_uow() as uow:
        page = alias_domains.list_alias_domains(uow, OPERATOR)
    assert everything == {
        "items": [item.model_dump(mode="json") for item in page.items],
        "next_cursor": None,
    }
    assert names() == ["alias-a.example", "alias-b.example", "other-a.example"]
    assert names(domain="a.example") == ["alias-a.example", "other-a.example"]
    assert names(q="other") == ["other-a.example"]
    # The search matches the target domain's name too.
    assert names(q="b.exa") == ["alias-b.example"]
    assert names(active="false") == ["other-a.example"]
    assert names(sort="-alias_domain") == ["other-a.example", "alias-b.example", "alias-a.example"]
    first = api.get(ALIAS_DOMAINS, params={"limit": 2}).json()
    assert [d["alias_domain"] for d in first["items"]] == ["alias-a.example", "alias-b.example"]
    rest = api.get(ALIAS_DOMAINS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["alias_domain"] for d in rest["items"]] == ["other-a.example"]
    assert rest["next_cursor"] is None
    assert issues(api.get(ALIAS_DOMAINS, params={"sort": "name"})) == [("sort", "unknown_sort")]


def test_remove_an_alias_domain_answers_204(api: Api, connection: Connection) -> None:
    make_alias_domains(api)
    before = len(audit_entries(connection))
    response = api.delete(f"{ALIAS_DOMAINS}/alias-a.example")
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"{ALIAS_DOMAINS}/alias-a.example").status_code == 404
    assert len(audit_entries(connection)) == before + 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"alias_domain": "a.example", "target_domain": "a.example"},
            ("alias_domain", "self_loop"),
        ),
        (
            {"alias_domain": "bad_name.example", "target_domain": "a.example"},
            ("alias_domain", "invalid_character"),
        ),
        (
            {"alias_domain": "x.example", "target_domain": "a.example", "mx": "y"},
            ("mx", "extra_forbidden"),
        ),
        ({"alias_domain": "x.example"}, ("target_domain", "missing")),
    ],
)
def test_create_an_alias_domain_refuses_broken_input(
    api: Api, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert issues(api.post(ALIAS_DOMAINS, json=body)) == [expected]
    assert api.get(ALIAS_DOMAINS).json()["items"] == []


def test_create_an_alias_domain_refuses_a_name_that_is_taken(api: Api) -> None:
    make_alias_domains(api)
    for name, rule in (("b.example", "exists"), ("alias-b.example", "is_alias_domain")):
        body = {"alias_domain": name, "target_domain": "a.example"}
        assert conflict_rule(api.post(ALIAS_DOMAINS, json=body)) == rule


def test_a_missing_alias_domain_or_target_is_not_found(api: Api) -> None:
    assert api.get(f"{ALIAS_DOMAINS}/nothing.example").status_code == 404
    assert api.delete(f"{ALIAS_DOMAINS}/nothing.example").status_code == 404
    body = {"alias_domain": "x.example", "target_domain": "nowhere.example"}
    assert api.post(ALIAS_DOMAINS, json=body).status_code == 404


# --- dry runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", ALIASES, {"address": "@a.example", "targets": [INFO]}),
        ("PATCH", f"{ALIASES}/{INFO}", {"set_targets": ["x@c.example"], "active": False}),
        ("DELETE", f"{ALIASES}/{INFO}", None),
        ("POST", ALIAS_DOMAINS, {"alias_domain": "new.example", "target_domain": "a.example"}),
        ("DELETE", f"{ALIAS_DOMAINS}/alias-a.example", None),
    ],
)
def test_a_dry_run_answers_the_plan_and_changes_nothing(
    api: Api, connection: Connection, method: str, path: str, body: dict[str, Any] | None
) -> None:
    make_alias_domains(api)

    def state() -> list[Any]:
        return [api.get(ALIASES).json(), api.get(ALIAS_DOMAINS).json(), audit_entries(connection)]

    before = state()
    response = api.request(method, path, json=body, params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert len(response.json()["plan"]) == 1
    assert state() == before


# --- who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{ALIASES}/{FOREIGN}", None),
        ("PATCH", f"{ALIASES}/{FOREIGN}", {"active": False}),
        ("DELETE", f"{ALIASES}/{FOREIGN}", None),
        ("POST", ALIASES, {"address": "new@b.example", "targets": [FOREIGN]}),
        ("POST", ALIASES, {"address": "@b.example", "targets": [FOREIGN]}),
        ("GET", f"{ALIAS_DOMAINS}/alias-b.example", None),
    ],
)
def test_a_domain_admin_finds_nothing_of_another_domain(
    api: Api, connection: Connection, method: str, path: str, body: dict[str, Any] | None
) -> None:
    make_alias_domains(api)
    before = [api.get(ALIASES).json(), api.get(ALIAS_DOMAINS).json(), audit_entries(connection)]
    response = api.request(method, path, json=body, as_="domain_admin_a")
    assert response.status_code == 404, response.text
    after = [api.get(ALIASES).json(), api.get(ALIAS_DOMAINS).json(), audit_entries(connection)]
    assert after == before


def test_a_domain_admin_lists_only_its_domain(api: Api) -> None:
    make_alias_domains(api)
    assert addresses(api.get(ALIASES, as_="domain_admin_a")) == [INFO]
    assert api.get(ALIASES, params={"domain": "b.example"}, as_="domain_admin_a").status_code == 404
    listed = api.get(ALIAS_DOMAINS, as_="domain_admin_a").json()["items"]
    assert [d["alias_domain"] for d in listed] == ["alias-a.example", "other-a.example"]
    foreign = api.get(ALIAS_DOMAINS, params={"domain": "b.example"}, as_="domain_admin_a")
    assert foreign.status_code == 404


def test_a_domain_admin_changes_aliases_of_its_domain(api: Api) -> None:
    body = {"address": "team@a.example", "targets": ["user1@a.example"]}
    assert (
        created(api.post(ALIASES, json=body, as_="domain_admin_a"))["address"] == "team@a.example"
    )
    response = api.patch(f"{ALIASES}/team@a.example", json={"active": False}, as_="domain_admin_a")
    assert response.json()["active"] is False
    assert api.delete(f"{ALIASES}/team@a.example", as_="domain_admin_a").status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", ALIAS_DOMAINS, {"alias_domain": "mine.example", "target_domain": "a.example"}),
        ("DELETE", f"{ALIAS_DOMAINS}/alias-a.example", None),
    ],
)
def test_only_a_superadmin_creates_or_removes_alias_domains(
    api: Api, connection: Connection, method: str, path: str, body: dict[str, Any] | None
) -> None:
    make_alias_domains(api)
    before = [api.get(ALIAS_DOMAINS).json(), audit_entries(connection)]
    response = api.request(method, path, json=body, as_="domain_admin_a")
    assert response.status_code == 403, response.text
    assert [api.get(ALIAS_DOMAINS).json(), audit_entries(connection)] == before


MUTATIONS = [
    ("POST", ALIASES, {"address": "new@a.example", "targets": [INFO]}),
    ("PATCH", f"{ALIASES}/{INFO}", {"active": False}),
    ("DELETE", f"{ALIASES}/{INFO}", None),
    ("POST", ALIAS_DOMAINS, {"alias_domain": "new.example", "target_domain": "a.example"}),
    ("DELETE", f"{ALIAS_DOMAINS}/alias-a.example", None),
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
    make_alias_domains(api)
    before = audit_entries(connection)
    params = {"dry_run": "true"} if dry_run else None
    response = api.request(method, path, json=body, params=params, as_="read_only")
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert audit_entries(connection) == before


def test_a_read_only_key_reads(api: Api) -> None:
    make_alias_domains(api)
    for path in (ALIASES, f"{ALIASES}/{INFO}", ALIAS_DOMAINS, f"{ALIAS_DOMAINS}/alias-a.example"):
        assert api.get(path, as_="read_only").status_code == 200, path
