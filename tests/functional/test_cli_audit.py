"""`mailwarden audit list`: every change is recorded, with who made it, and no secret."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from tests.functional.cli_helpers import OTHER_PASSWORD, PASSWORD, Cli, password_hash


def test_it_records_each_change_by_the_local_operator(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("alice@example.org")
    cli.ok("alias", "add", "info@example.org", "alice@example.org")
    cli.ok("mailbox", "edit", "alice@example.org", "--name", "Alice")
    cli.ok("mailbox", "passwd", "alice@example.org", "--password-stdin", input=OTHER_PASSWORD)
    cli.ok("alias", "remove", "info@example.org")

    entries = cli.json("audit", "list")
    assert [(e["action"], e["object_key"]) for e in entries] == [
        ("alias.delete", "info@example.org"),
        ("mailbox.password", "alice@example.org"),
        ("mailbox.update", "alice@example.org"),
        ("alias.create", "info@example.org"),
        ("mailbox.create", "alice@example.org"),
        ("domain.create", "example.org"),
    ]
    assert {(e["actor"], e["actor_role"], e["channel"]) for e in entries} == {
        ("local-operator", "superadmin", "cli")
    }
    assert all(e["domain"] == "example.org" for e in entries)
    update = entries[2]
    assert (update["before"]["name"], update["after"]["name"]) == ("", "Alice")

    ids = [e["id"] for e in entries]
    page = cli.ok("audit", "list", "--limit", "2", "--json")
    assert [e["id"] for e in cli.json("audit", "list", "--limit", "2")] == ids[:2]
    assert f"--before {ids[1]}" in page.stderr
    assert [e["id"] for e in cli.json("audit", "list", "--before", str(ids[1]))] == ids[2:]

    text = cli.ok("audit", "list", "--limit", "3").stdout
    assert "local-operator" in text and "alias.delete" in text and "mailbox.password" in text
    assert "domain.create" not in text


def test_it_names_the_admin_given_with_as(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_admin("carol", "domain-admin", "example.org")
    cli.ok("mailbox", "add", "bob@example.org", "--random-password", as_admin="carol")
    cli.ok("alias", "add", "sales@example.org", "bob@example.org", as_admin="carol")

    newest = cli.json("audit", "list", "--limit", "3")
    assert [(e["actor"], e["action"], e["object_key"]) for e in newest] == [
        ("carol", "alias.create", "sales@example.org"),
        ("carol", "mailbox.create", "bob@example.org"),
        ("local-operator", "admin.create", "carol"),
    ]
    assert newest[0]["actor_role"] == "domain-admin"
    assert [e["object_key"] for e in cli.json("audit", "list", "--actor", "carol")] == [
        "sales@example.org",
        "bob@example.org",
    ]
    assert "carol" in cli.ok("audit", "list", "--limit", "1").stdout


def test_secrets_never_reach_any_output(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org")
    outputs = [
        cli.ok(
            "admin",
            "add",
            "root",
            "--role",
            "superadmin",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    ]
    outputs.append(cli.ok("mailbox", "add", "a@example.org", "--password-stdin", input=PASSWORD))
    outputs.append(
        cli.ok("mailbox", "passwd", "a@example.org", "--password-stdin", input=OTHER_PASSWORD)
    )
    outputs.append(cli.ok("admin", "passwd", "root", "--password-stdin", input=OTHER_PASSWORD))
    outputs.append(cli.ok("mailbox", "passwd", "a@example.org", "--random-password", "--json"))
    generated = json.loads(outputs[-1].stdout)["password"]
    for args in [
        ("mailbox", "show", "a@example.org", "--json"),
        ("mailbox", "show", "a@example.org"),
        ("mailbox", "list", "--json"),
        ("mailbox", "list", "--all", "--json"),
        ("admin", "show", "root", "--json"),
        ("admin", "list", "--json"),
        ("audit", "list", "--json"),
        ("audit", "list"),
    ]:
        outputs.append(cli.ok(*args))
    text = "\n".join(result.stdout + result.stderr for result in outputs)

    mailbox_hash = password_hash(engine, "mailboxes", "address", "a@example.org")
    admin_hash = password_hash(engine, "admins", "username", "root")
    for secret in (mailbox_hash, admin_hash, PASSWORD, OTHER_PASSWORD):
        assert secret not in text
    assert "$5$" not in text and "$6$" not in text and "password_hash" not in text
    assert text.count(generated) == 1  # shown once, by the command that generated it

    entries = cli.json("audit", "list", "--action", "mailbox.password")
    assert len(entries) == 2
    assert all(e["after"]["password_scheme"] == "SHA256-CRYPT" for e in entries)
