"""`mailwarden apikey ...` on every backend."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mailwarden.apikeys import service as apikeys
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from tests.functional.cli_helpers import Cli

TOKEN = re.compile(r"mw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def staffed(cli: Cli) -> Cli:
    """root (superadmin), alice (a.example) and bob (b.example)."""
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_admin("root", "superadmin")
    cli.add_admin("alice", "domain-admin", "a.example")
    cli.add_admin("bob", "domain-admin", "b.example")
    return cli


def authenticate(engine: Engine, token: str) -> Actor:
    with UnitOfWork(Session(engine), Settings(), dry_run=True) as uow:
        return apikeys.authenticate(uow, token, "192.0.2.1")


def tokens_in(text: str) -> list[str]:
    return TOKEN.findall(text)


def test_create_prints_the_key_once_with_a_warning(staffed: Cli, engine: Engine) -> None:
    result = staffed.ok(
        "apikey", "create", "--admin", "alice", "--domain", "a.example", "--name", "deploy"
    )
    [token] = tokens_in(result.stdout)
    lines = result.stdout.splitlines()
    key_id = token.split("_")[1]
    assert lines[0] == f"Created API key {key_id} for alice."
    assert lines[1] == token
    assert "shown only this once" in lines[2]
    actor = authenticate(engine, token)
    assert (actor.username, actor.api_key) == ("alice", key_id)

    shown = staffed.ok("apikey", "show", key_id).stdout
    assert "deploy" in shown and "a.example" in shown and "read-write" in shown
    outputs = [
        shown,
        staffed.ok("apikey", "list").stdout,
        staffed.ok("apikey", "list", "--json").stdout,
        staffed.ok("apikey", "show", key_id, "--json").stdout,
        staffed.ok("audit", "list", "--json").stdout,
    ]
    # mw_<12 hex>_<secret>: the secret may hold "_" itself, so cut by position.
    secret = token[len("mw_") + 12 + 1 :]
    assert len(secret) == 43
    assert all(secret not in output for output in outputs)


def test_create_json_is_the_created_key_with_its_token(staffed: Cli, engine: Engine) -> None:
    created = staffed.json(
        "apikey", "create", "--admin", "root", "--read-only", "--expires", "2100-01-31"
    )
    assert TOKEN.fullmatch(created.pop("key"))
    # Valid through that day, UTC: it ends when the next one starts.
    assert created["expires_at"] == "2100-02-01T00:00:00Z"
    assert (created["admin"], created["read_only"], created["narrowed"]) == ("root", True, False)
    assert (created["created_by"], created["active"]) == ("local-operator", True)
    assert staffed.json("apikey", "show", created["id"]) == created


@pytest.mark.parametrize(
    ("expires", "stored"),
    [
        ("2100-06-30T18:00:00+02:00", "2100-06-30T16:00:00Z"),
        ("2100-06-30T18:00:00Z", "2100-06-30T18:00:00Z"),
        ("2100-12-31", "2101-01-01T00:00:00Z"),
    ],
)
def test_an_expiry_is_a_day_or_a_moment_with_its_offset(
    expires: str, stored: str, staffed: Cli
) -> None:
    created = staffed.json("apikey", "create", "--admin", "bob", "--expires", expires)
    assert created["expires_at"] == stored


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2100-06-30T18:00:00", "offset"),
        ("soon", "YYYY-MM-DD"),
        ("2100-02-30", "YYYY-MM-DD"),
        ("9999-12-31", "YYYY-MM-DD"),
    ],
)
def test_an_expiry_without_an_offset_or_not_a_date_is_a_usage_error(
    expires: str, message: str, staffed: Cli
) -> None:
    state = staffed.state()
    result = staffed.usage_error("apikey", "create", "--admin", "bob", "--expires", expires)
    assert message in result.stderr
    assert staffed.state() == state


def test_it_refuses_bad_key_requests(staffed: Cli) -> None:
    state = staffed.state()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert staffed.refused("apikey", "create", "--admin", "bob", "--expires", yesterday) == (
        "mailwarden: expires_at: the expiry must lie in the future [in_past]"
    )
    assert staffed.refused("apikey", "create") == (
        "mailwarden: admin: name the admin the key acts as [required]"
    )
    assert staffed.refused("apikey", "create", "--admin", "ghost") == (
        "mailwarden: admin not found: ghost"
    )
    assert staffed.refused("apikey", "create", "--admin", "alice", "--domain", "b.example") == (
        "mailwarden: domains[0]: alice does not manage b.example [not_managed]"
    )
    assert staffed.refused("apikey", "show", "0" * 12) == (
        "mailwarden: api_key not found: 000000000000"
    )
    assert staffed.refused("apikey", "revoke", "nothex").endswith("[invalid_key_id]")
    assert staffed.state() == state


def test_a_dry_run_create_prints_the_plan_and_no_key(staffed: Cli) -> None:
    state = staffed.state()
    result = staffed.ok("apikey", "create", "--admin", "alice", "--dry-run")
    assert "Dry run" in result.stdout and "create api key" in result.stdout
    assert tokens_in(result.stdout) == []
    plan = staffed.json("apikey", "create", "--admin", "alice", "--dry-run", "--json")
    assert plan["dry_run"] is True and plan["plan"][0]["object_type"] == "api_key"
    assert "key" not in plan["plan"][0]["changes"]
    assert staffed.state() == state


def test_list_hides_revoked_keys_unless_all_states(staffed: Cli) -> None:
    live = staffed.json("apikey", "create", "--admin", "alice", "--name", "live")
    gone = staffed.json("apikey", "create", "--admin", "alice", "--name", "gone")
    bobs = staffed.json("apikey", "create", "--admin", "bob")
    staffed.ok("apikey", "revoke", gone["id"])

    def ids(*options: str) -> list[str]:
        return [k["id"] for k in staffed.json("apikey", "list", *options)]

    assert ids() == sorted([live["id"], bobs["id"]])
    assert ids("--admin", "alice") == [live["id"]]
    assert ids("--admin", "alice", "--all-states") == sorted([live["id"], gone["id"]])
    assert all("key" not in k for k in staffed.json("apikey", "list", "--all-states"))
    table = staffed.ok("apikey", "list", "--all-states").stdout
    assert "revoked" in table and "active" in table and "live" in table
    assert staffed.ok("apikey", "list", "--admin", "root").stdout.strip() == "No API keys."


def test_list_pages_by_key_id(staffed: Cli) -> None:
    ids = sorted(staffed.json("apikey", "create", "--admin", "bob")["id"] for _ in range(3))
    result = staffed.ok("apikey", "list", "--limit", "2", "--json")
    assert [k["id"] for k in json.loads(result.stdout)] == ids[:2]
    assert f"--after {ids[1]}" in result.stderr
    rest = staffed.json("apikey", "list", "--after", ids[1])
    assert [k["id"] for k in rest] == ids[2:]
    assert [k["id"] for k in staffed.json("apikey", "list", "--limit", "1", "--all")] == ids


def test_revoke_shows_the_plan_and_stops_the_key(staffed: Cli, engine: Engine) -> None:
    created = staffed.json("apikey", "create", "--admin", "alice")
    dry = staffed.ok("apikey", "revoke", created["id"], "--dry-run").stdout
    assert "Dry run" in dry and f"change api key {created['id']}" in dry
    assert authenticate(engine, created["key"]).username == "alice"

    revoked = staffed.json("apikey", "revoke", created["id"])
    assert revoked["revoked_at"] is not None and revoked["active"] is False
    assert "key" not in revoked
    with pytest.raises(apikeys.InvalidKey):
        authenticate(engine, created["key"])
    assert staffed.refused("apikey", "revoke", created["id"]).endswith("[already_revoked]")
    shown = staffed.ok("apikey", "show", created["id"]).stdout
    assert re.search(r"state\s+revoked", shown)
    [entry] = [e for e in staffed.audit() if e["action"] == "api_key.revoke"]
    assert entry["object_key"] == created["id"]


def test_an_admin_manages_its_own_keys_with_as(staffed: Cli) -> None:
    bobs = staffed.json("apikey", "create", "--admin", "bob")
    own: dict[str, Any] = staffed.json("apikey", "create", "--name", "mine", as_admin="alice")
    assert (own["admin"], own["created_by"]) == ("alice", "alice")
    listed = staffed.json("apikey", "list", as_admin="alice")
    assert [k["id"] for k in listed] == [own["id"]]

    refusals = [
        staffed.refused("apikey", "create", "--admin", "bob", as_admin="alice"),
        staffed.refused("apikey", "list", "--admin", "bob", as_admin="alice"),
    ]
    assert all(line.startswith("mailwarden: not permitted: system:api-key:") for line in refusals)
    for command in ("show", "revoke"):
        assert staffed.refused("apikey", command, bobs["id"], as_admin="alice") == (
            f"mailwarden: api_key not found: {bobs['id']}"
        )
    assert staffed.refused("apikey", "create", "--domain", "b.example", as_admin="alice") == (
        "mailwarden: domain not found: b.example"
    )
    staffed.ok("apikey", "revoke", own["id"], as_admin="alice")


@pytest.mark.parametrize("command", ["create", "list", "show", "revoke"])
def test_each_command_documents_itself_with_examples(command: str, staffed: Cli) -> None:
    help_text = staffed.ok("apikey", command, "--help").stdout
    assert "Examples" in help_text and f"mailwarden apikey {command}" in help_text.replace(
        "--as alice ", ""
    )
