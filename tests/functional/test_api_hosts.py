"""/api/v1/hosts on every backend: the registry as the CLI shows it, dry runs, field errors as
problem+json, superadmins only, SSH hosts against the real OpenSSH server on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from mailwarden.hosts import service as hosts
from mailwarden.kernel.actor import Actor, Channel
from tests.conftest import UowFactory
from tests.functional.api_helpers import Api
from tests.support.sshd import SshServer

HOSTS = "/api/v1/hosts"
OPERATOR = Actor.local_operator(Channel.SYSTEM)
LOCAL = {"name": "mx1", "transport": "local"}


def issues(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(issue["field"], issue["rule"]) for issue in response.json()["errors"]]


def add(api: Api, name: str, **fields: Any) -> Any:
    response = api.post(HOSTS, json={"name": name, "transport": "local", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_list_get_update_remove(api: Api, make_uow: UowFactory) -> None:
    created = add(api, "mx2", log_paths=["/var/log/mail.log", "/var/log/dovecot.log"])
    add(api, "mx1")
    add(api, "mx3")

    first = api.get(HOSTS, params={"limit": 2}).json()
    second = api.get(HOSTS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    shown = api.get(f"{HOSTS}/mx2").json()
    patched = api.patch(f"{HOSTS}/mx2", json={"mail_root": "/srv/vmail"})
    removed = api.delete(f"{HOSTS}/mx3")

    assert created["log_paths"] == ["/var/log/mail.log", "/var/log/dovecot.log"]
    assert [host["name"] for host in first["items"]] == ["mx1", "mx2"]
    assert [host["name"] for host in second["items"]] == ["mx3"]
    assert second["next_cursor"] is None
    with make_uow() as uow:
        served = hosts.get(uow, OPERATOR, "mx2").model_dump(mode="json")
    assert shown["name"] == served["name"] and shown["log_paths"] == served["log_paths"]
    assert patched.status_code == 200 and patched.json()["mail_root"] == "/srv/vmail"
    assert removed.status_code == 204
    assert api.get(f"{HOSTS}/mx3").status_code == 404


def test_dry_runs_return_the_plan_and_change_nothing(api: Api) -> None:
    add(api, "mx1")

    created = api.post(
        HOSTS, params={"dry_run": "true"}, json={"name": "mx2", "transport": "local"}
    )
    patched = api.patch(f"{HOSTS}/mx1", params={"dry_run": "true"}, json={"mail_root": "/srv"})
    removed = api.delete(f"{HOSTS}/mx1", params={"dry_run": "true"})

    assert created.status_code == 200
    assert created.json()["plan"][0]["change"] == "create"
    assert patched.json()["plan"][0]["changes"]["mail_root"] == ["/var/vmail", "/srv"]
    assert (
        removed.json()
        == {
            "dry_run": True,
            "plan": [removed.json()["plan"][0]],
        }
        and removed.json()["plan"][0]["change"] == "delete"
    )
    assert [host["name"] for host in api.get(HOSTS).json()["items"]] == ["mx1"]
    assert api.get(f"{HOSTS}/mx1").json()["mail_root"] == "/var/vmail"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "Mx 1", "transport": "local"}, ("name", "invalid_host_name")),
        ({"name": "mx1", "transport": "carrier-pigeon"}, ("transport", "literal_error")),
        (
            {"name": "mx1", "transport": "local", "mail_root": "vmail"},
            ("mail_root", "not_absolute"),
        ),
        (
            {"name": "mx1", "transport": "local", "smtp_port": 0},
            ("smtp_port", "greater_than_equal"),
        ),
        ({**LOCAL, "role": "superadmin"}, ("role", "extra_forbidden")),
        (
            {"name": "mx1", "transport": "ssh", "ssh_target": "root@;rm", "ssh_key_file": "/k"},
            ("ssh_target", "invalid_address"),
        ),
        (
            {"name": "mx1", "transport": "ssh", "ssh_target": "-oProxyCommand=x@h"},
            ("ssh_key_file", "required"),
        ),
    ],
)
def test_bad_bodies_are_422_naming_field_and_rule(
    api: Api, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    response = api.post(HOSTS, json=body)

    assert issues(response)[0] == expected
    assert api.get(HOSTS).json()["items"] == []


def test_a_duplicate_is_409_and_a_missing_host_404(api: Api) -> None:
    add(api, "mx1")

    duplicate = api.post(HOSTS, json={"name": "mx1", "transport": "local"})
    missing = api.get(f"{HOSTS}/mx9")

    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert missing.status_code == 404


@pytest.mark.parametrize("persona", ["domain_admin_a", "narrowed_a"])
def test_only_superadmins_reach_hosts(api: Api, persona: str) -> None:
    add(api, "mx1")

    answers = [
        api.get(HOSTS, as_=persona),
        api.get(f"{HOSTS}/mx1", as_=persona),
        api.post(HOSTS, json={"name": "mx2", "transport": "local"}, as_=persona),
        api.patch(f"{HOSTS}/mx1", json={"mail_root": "/srv"}, as_=persona),
        api.delete(f"{HOSTS}/mx1", as_=persona),
        api.post(f"{HOSTS}/mx1/check", as_=persona),
    ]

    assert [answer.status_code for answer in answers] == [403] * 6


def test_a_read_only_key_reads_and_checks_but_changes_nothing(api: Api) -> None:
    add(api, "mx1")

    assert api.get(HOSTS, as_="read_only").status_code == 200
    assert api.post(f"{HOSTS}/mx1/check", as_="read_only").status_code == 200
    assert api.delete(f"{HOSTS}/mx1", as_="read_only").status_code == 403


def test_check_reports_each_item(api: Api) -> None:
    add(api, "mx1", log_paths=["/nonexistent/mail.log"])

    response = api.post(f"{HOSTS}/mx1/check")

    assert response.status_code == 200
    body = response.json()
    items = {item["check"]: item for item in body["items"]}
    assert items["connection"]["ok"] is True
    assert items["log /nonexistent/mail.log"] == {
        "check": "log /nonexistent/mail.log",
        "ok": False,
        "detail": "missing",
    }
    assert body["ok"] is False


def test_an_ssh_host_records_its_key_and_a_wrong_fingerprint_is_422(
    api: Api, ssh_server: SshServer
) -> None:
    body = {
        "name": "mx2",
        "transport": "ssh",
        "ssh_target": f"{ssh_server.user}@{ssh_server.host}:{ssh_server.port}",
        "ssh_key_file": str(ssh_server.client_key),
    }

    wrong = api.post(HOSTS, json={**body, "host_key_fingerprint": "SHA256:" + "C" * 43})
    planned = api.post(HOSTS, params={"dry_run": "true"}, json=body)
    created = api.post(HOSTS, json=body)
    check = api.post(f"{HOSTS}/mx2/check")

    assert issues(wrong) == [("host_key_fingerprint", "mismatch")]
    assert ssh_server.host_key_fingerprint in wrong.json()["detail"]
    plan = planned.json()["plan"][0]["changes"]
    assert plan["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert created.status_code == 201
    assert created.json()["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert "PRIVATE" not in created.text
    assert check.status_code == 200
    assert check.json()["items"][0]["ok"] is True
