"""`mailwarden mailbox app-password ...` on every backend."""

from __future__ import annotations

import re

import pytest

from mailwarden.kernel.passwords import verify_password
from tests.functional.cli_helpers import Cli, password_hash

APP_PASSWORD = re.compile(r"[a-z2-7]{8}-[a-z2-7]{26}")
ADDRESS = "alice@a.example"


@pytest.fixture
def mailbox(cli: Cli) -> Cli:
    """alice@a.example and bob@b.example; carol administers a.example only."""
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_mailbox(ADDRESS)
    cli.add_mailbox("bob@b.example")
    cli.add_admin("carol", "domain-admin", "a.example")
    return cli


def test_add_prints_the_password_once_and_stores_only_its_hash(mailbox: Cli) -> None:
    result = mailbox.ok("mailbox", "app-password", "add", ADDRESS, "--name", "phone")
    [password] = APP_PASSWORD.findall(result.stdout)
    public_id = password.split("-")[0]
    lines = result.stdout.splitlines()
    assert lines[0] == f"App password {public_id} (phone) for {ADDRESS}:"
    assert lines[1] == password
    assert "shown only this once" in lines[2]
    stored = password_hash(mailbox.engine, "app_passwords", "public_id", public_id)
    assert stored.startswith("{SHA256-CRYPT}") and verify_password(password, stored)

    outputs = [
        mailbox.ok("mailbox", "app-password", "list", ADDRESS).stdout,
        mailbox.ok("mailbox", "app-password", "list", ADDRESS, "--json").stdout,
        mailbox.ok("audit", "list", "--json").stdout,
    ]
    assert all(password not in output and stored not in output for output in outputs)
    assert public_id in outputs[0] and "phone" in outputs[0]


def test_add_json_then_list_then_revoke_by_name_and_by_id(mailbox: Cli) -> None:
    phone = mailbox.json("mailbox", "app-password", "add", ADDRESS, "--name", "phone", "--json")
    laptop = mailbox.json("mailbox", "app-password", "add", ADDRESS, "--name", "laptop", "--json")
    assert APP_PASSWORD.fullmatch(phone["password"])
    assert phone["password"].startswith(phone["id"] + "-")
    assert (phone["address"], phone["name"]) == (ADDRESS, "phone")

    listed = mailbox.json("mailbox", "app-password", "list", ADDRESS, "--json")
    assert [(item["name"], item["id"]) for item in listed] == [
        ("laptop", laptop["id"]),
        ("phone", phone["id"]),
    ]
    assert all("password" not in item for item in listed)
    first_page = mailbox.ok("mailbox", "app-password", "list", ADDRESS, "--limit", "1")
    assert "laptop" in first_page.stdout and "--after laptop" in first_page.stderr

    mailbox.ok("mailbox", "app-password", "revoke", ADDRESS, "phone")
    mailbox.ok("mailbox", "app-password", "revoke", ADDRESS, laptop["id"])
    assert mailbox.json("mailbox", "app-password", "list", ADDRESS, "--json") == []
    actions = [entry["action"] for entry in mailbox.audit()]
    assert actions.count("app_password.create") == 2
    assert actions.count("app_password.revoke") == 2


def test_dry_runs_change_nothing_and_show_no_password(mailbox: Cli) -> None:
    mailbox.ok("mailbox", "app-password", "add", ADDRESS, "--name", "phone")
    before = mailbox.state()
    added = mailbox.ok("mailbox", "app-password", "add", ADDRESS, "--name", "tablet", "--dry-run")
    revoked = mailbox.ok("mailbox", "app-password", "revoke", ADDRESS, "phone", "--dry-run")
    assert mailbox.state() == before
    assert "tablet" in added.stdout and not APP_PASSWORD.search(added.stdout)
    assert "phone" in revoked.stdout


def test_refusals_name_the_rule(mailbox: Cli) -> None:
    mailbox.ok("mailbox", "app-password", "add", ADDRESS, "--name", "phone")
    duplicate = mailbox.refused("mailbox", "app-password", "add", ADDRESS, "--name", "phone")
    assert duplicate.startswith("mailwarden: name: ") and duplicate.endswith("[duplicate]")
    blank = mailbox.refused("mailbox", "app-password", "add", ADDRESS, "--name", " ")
    assert blank.endswith("[required]")
    missing = mailbox.refused("mailbox", "app-password", "revoke", ADDRESS, "tablet")
    assert missing == "mailwarden: app_password not found: tablet"
    nobody = mailbox.refused("mailbox", "app-password", "list", "nobody@a.example")
    assert nobody == "mailwarden: mailbox not found: nobody@a.example"
    mailbox.usage_error("mailbox", "app-password", "add", ADDRESS)


def test_a_domain_admin_acts_on_its_own_domain_only(mailbox: Cli) -> None:
    created = mailbox.json(
        "mailbox", "app-password", "add", ADDRESS, "--name", "phone", "--json", as_admin="carol"
    )
    assert created["name"] == "phone"
    foreign = mailbox.refused(
        "mailbox", "app-password", "add", "bob@b.example", "--name", "phone", as_admin="carol"
    )
    assert foreign == "mailwarden: mailbox not found: bob@b.example"
    created_by = [e["actor"] for e in mailbox.audit() if e["action"] == "app_password.create"]
    assert created_by == ["carol"]
