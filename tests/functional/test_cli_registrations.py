"""`mailwarden registration ...` and the registration options of `mailwarden domain`, on every
backend. Visitors' requests arrive through the service (the portal's page is not the CLI)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationSubmit
from mailwarden.settings import Settings
from tests.functional.cli_helpers import Cli, password_hash

CHOSEN = "a visitor's own passphrase"


@pytest.fixture
def staffed(cli: Cli) -> Cli:
    """a.example and b.example, both open; alice administers a.example, bob b.example."""
    cli.add_domain("a.example", "--registration")
    cli.add_domain("b.example", "--registration", "--registration-limit", "5")
    cli.add_admin("alice", "domain-admin", "a.example")
    cli.add_admin("bob", "domain-admin", "b.example")
    return cli


def submit(engine: Engine, address: str, name: str = "New Person") -> None:
    data = parse(RegistrationSubmit, {"address": address, "name": name, "password": CHOSEN})
    settings = Settings(password_scheme="SHA256-CRYPT")
    with UnitOfWork(Session(engine), settings) as uow:
        registrations.submit(uow, data, client_address="203.0.113.9")
        uow.finish()


def ids_by_address(cli: Cli, *args: str) -> dict[str, int]:
    listed = cli.json("registration", "list", "--status", "all", *args)
    return {request["address"]: request["id"] for request in listed}


def test_domain_options_open_and_close_registration(staffed: Cli) -> None:
    shown = staffed.json("domain", "show", "b.example")
    assert (shown["registration_open"], shown["registration_pending_limit"]) == (True, 5)
    text = staffed.ok("domain", "show", "a.example").stdout
    assert "registration  open (moderated; at most 20 requests waiting)" in text

    closed = staffed.json("domain", "edit", "a.example", "--no-registration", as_admin="alice")
    assert closed["registration_open"] is False
    assert "registration  closed" in staffed.ok("domain", "show", "a.example").stdout
    line = staffed.refused(
        "domain", "edit", "a.example", "--registration-limit", "500", as_admin="alice"
    )
    assert line == "mailwarden: not permitted: system:domain:administer"
    unlimited = staffed.json("domain", "edit", "a.example", "--registration-limit", "0")
    assert unlimited["registration_pending_limit"] == 0
    staffed.usage_error("domain", "edit", "a.example", "--registration-limit", "many")
    refused = staffed.refused("domain", "edit", "a.example", "--registration-limit", "-1")
    assert refused.startswith("mailwarden: registration_pending_limit: ")


def test_a_domain_admin_lists_and_decides_its_own_requests(staffed: Cli, engine: Engine) -> None:
    submit(engine, "new@a.example")
    submit(engine, "other@a.example", name="Other One")
    submit(engine, "far@b.example")
    ids = ids_by_address(staffed)

    listed = staffed.json("registration", "list", as_admin="alice")
    assert [(r["address"], r["status"], r["client_address"]) for r in listed] == [
        ("new@a.example", "pending", "203.0.113.9"),
        ("other@a.example", "pending", "203.0.113.9"),
    ]
    assert all("password" not in key for request in listed for key in request)
    table = staffed.ok("registration", "list", as_admin="alice").stdout
    assert "new@a.example" in table and "Other One" in table and "far@b.example" not in table
    page = staffed.ok("registration", "list", "--limit", "1", as_admin="alice")
    assert "(more: continue with --after ~" in page.stderr

    before = staffed.state()
    plan = staffed.ok("registration", "approve", str(ids["new@a.example"]), "--dry-run").stdout
    assert "Dry run" in plan
    assert "create mailbox new@a.example" in plan and "change registration new@a.example" in plan
    assert staffed.state() == before

    done = staffed.ok("registration", "approve", str(ids["new@a.example"]), as_admin="alice")
    assert done.stdout.strip() == (
        f"Approved request {ids['new@a.example']}: added mailbox new@a.example."
    )
    stored = password_hash(engine, "mailboxes", "address", "new@a.example")
    assert verify_password(CHOSEN, stored)
    assert staffed.json("mailbox", "show", "new@a.example")["name"] == "New Person"

    rejected = staffed.json(
        "registration", "reject", str(ids["other@a.example"]), "--reason", "spam", as_admin="alice"
    )
    assert (rejected["status"], rejected["reason"], rejected["decided_by"]) == (
        "rejected",
        "spam",
        "alice",
    )
    shown = staffed.ok("registration", "show", str(ids["other@a.example"])).stdout
    assert "rejected" in shown and "spam" in shown and "by alice" in shown

    statuses = staffed.json("registration", "list", "--status", "all", as_admin="alice")
    assert [(r["address"], r["status"]) for r in statuses] == [
        ("new@a.example", "approved"),
        ("other@a.example", "rejected"),
    ]
    assert staffed.json("registration", "list", as_admin="alice") == []
    line = staffed.refused("registration", "approve", str(ids["other@a.example"]))
    assert line.endswith("[decided]"), line

    actions = [
        entry["action"] for entry in staffed.audit() if entry["object_type"] == "registration"
    ]
    assert sorted(actions) == [
        "registration.approve",
        "registration.reject",
        "registration.submit",
        "registration.submit",
        "registration.submit",
    ]


def test_a_domain_admin_cannot_reach_another_domains_requests(staffed: Cli, engine: Engine) -> None:
    submit(engine, "far@b.example")
    far = ids_by_address(staffed)["far@b.example"]
    before = staffed.state()
    for command in ("show", "approve", "reject"):
        line = staffed.refused("registration", command, str(far), as_admin="alice")
        assert line == f"mailwarden: registration not found: {far}"
    line = staffed.refused("registration", "list", "--domain", "b.example", as_admin="alice")
    assert line == "mailwarden: domain not found: b.example"
    assert staffed.json("registration", "list", as_admin="alice") == []
    assert staffed.state() == before
    assert [r["address"] for r in staffed.json("registration", "list", as_admin="bob")] == [
        "far@b.example"
    ]


def test_it_refuses_an_unknown_status(staffed: Cli) -> None:
    line = staffed.refused("registration", "list", "--status", "everything")
    assert line.startswith("mailwarden: status: ") and line.endswith("[unknown_status]")
    staffed.usage_error("registration", "approve", "twelve")
