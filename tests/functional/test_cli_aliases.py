"""`mailwarden alias ...` and `mailwarden alias-domain ...` on every backend."""

from __future__ import annotations

from tests.functional.cli_helpers import Cli


def test_it_adds_lists_shows_edits_and_removes_an_alias(cli: Cli) -> None:
    cli.add_domain("example.org")
    created = cli.json(
        "alias",
        "add",
        "Sales@example.org",
        "bob@example.org",
        "alice@example.org",
        "team@partner.example",
    )
    assert created["address"] == "sales@example.org"
    assert created["targets"] == ["alice@example.org", "bob@example.org", "team@partner.example"]
    assert created["catch_all"] is False
    assert created["active"] is True
    text = cli.ok("alias", "add", "info@example.org", "alice@example.org").stdout
    assert "Added alias info@example.org -> alice@example.org." in text

    listed = cli.json("alias", "list")
    assert [(a["address"], a["targets"]) for a in listed] == [
        ("info@example.org", ["alice@example.org"]),
        ("sales@example.org", ["alice@example.org", "bob@example.org", "team@partner.example"]),
    ]
    assert [a["address"] for a in cli.json("alias", "list", "--search", "partner")] == [
        "sales@example.org"
    ]
    assert cli.json("alias", "show", "sales@example.org") == created

    edited = cli.json(
        "alias",
        "edit",
        "sales@example.org",
        "--add",
        "carol@example.org",
        "--remove",
        "bob@example.org",
        "--remove",
        "team@partner.example",
    )
    assert edited["targets"] == ["alice@example.org", "carol@example.org"]
    replaced = cli.json("alias", "edit", "sales@example.org", "--set", "desk@example.net")
    assert replaced["targets"] == ["desk@example.net"]
    disabled = cli.json("alias", "edit", "sales@example.org", "--inactive")
    assert disabled["active"] is False
    assert cli.json("alias", "show", "sales@example.org")["active"] is False

    plan = cli.ok("alias", "remove", "sales@example.org").stdout
    assert "remove alias sales@example.org" in plan
    line = cli.refused("alias", "show", "sales@example.org")
    assert line == "mailwarden: alias not found: sales@example.org"
    assert [a["address"] for a in cli.json("alias", "list")] == ["info@example.org"]


def test_it_adds_a_catch_all_alias(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("postmaster@example.org")
    created = cli.json("alias", "add", "@example.org", "postmaster@example.org")
    assert created["address"] == "@example.org"
    assert created["catch_all"] is True
    assert created["targets"] == ["postmaster@example.org"]
    assert cli.json("alias", "show", "@example.org") == created
    assert "(catch-all)" in cli.ok("alias", "list").stdout
    line = cli.refused("alias", "add", "@example.org", "other@example.org")
    assert line.startswith("mailwarden: address: ") and line.endswith("[exists]"), line
    cli.ok("alias", "remove", "@example.org")
    assert cli.json("alias", "list") == []


def test_it_pages_alias_listings(cli: Cli) -> None:
    cli.add_domain("example.org")
    for name in ("a1", "a2", "a3"):
        cli.ok("alias", "add", f"{name}@example.org", "x@example.net", "y@example.net")
    page = cli.ok("alias", "list", "--limit", "2")
    rows = [line for line in page.stdout.splitlines() if "@example.org" in line]
    assert len(rows) == 2, page.stdout
    assert "--after a2@example.org" in page.stderr
    rest = cli.json("alias", "list", "--after", "a2@example.org")
    assert [a["address"] for a in rest] == ["a3@example.org"]
    everything = cli.json("alias", "list", "--all", "--limit", "1")
    assert [a["address"] for a in everything] == [
        "a1@example.org",
        "a2@example.org",
        "a3@example.org",
    ]
    assert all(a["targets"] == ["x@example.net", "y@example.net"] for a in everything)


def test_dry_runs_of_alias_changes_change_nothing(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.ok("alias", "add", "info@example.org", "alice@example.org")
    listed = cli.json("alias", "list")
    before = cli.audit_ids()

    plan = cli.ok("alias", "add", "sales@example.org", "bob@example.org", "--dry-run").stdout
    assert "Dry run" in plan and "create alias sales@example.org" in plan
    plan = cli.ok("alias", "add", "@example.org", "bob@example.org", "--dry-run").stdout
    assert "create alias @example.org" in plan
    plan = cli.ok(
        "alias", "edit", "info@example.org", "--add", "bob@example.org", "--dry-run"
    ).stdout
    assert "change alias info@example.org" in plan and "bob@example.org" in plan
    as_json = cli.json("alias", "remove", "info@example.org", "--dry-run")
    assert as_json["dry_run"] is True
    assert [(c["change"], c["key"]) for c in as_json["plan"]] == [("delete", "info@example.org")]

    assert cli.json("alias", "list") == listed
    assert cli.json("alias", "show", "info@example.org")["targets"] == ["alice@example.org"]
    assert cli.refused("alias", "show", "sales@example.org").endswith(
        "not found: sales@example.org"
    )
    assert cli.audit_ids() == before


def test_it_refuses_bad_aliases(cli: Cli) -> None:
    cli.add_domain("example.org", "--max-aliases", "1")
    cli.add_mailbox("alice@example.org")
    cli.ok("alias", "add", "info@example.org", "alice@example.org")
    state = cli.state()

    def rule_of(*args: str) -> str:
        line = cli.refused("alias", *args)
        assert line.endswith("]"), line
        return line.rsplit("[", 1)[1].rstrip("]")

    assert rule_of("add", "self@example.org", "self@example.org") == "self_loop"
    assert rule_of("add", "alice@example.org", "bob@example.org") == "is_mailbox"
    assert rule_of("add", "info@example.org", "bob@example.org") == "exists"
    assert rule_of("add", "sales@example.org", "bob@example.org") == "max_aliases"
    assert rule_of("add", "bad@@example.org", "bob@example.org") == "at_sign"
    assert rule_of("add", "sales@example.org", "not an address") == "whitespace"
    assert rule_of("edit", "info@example.org", "--remove", "alice@example.org") == "required"
    assert rule_of("edit", "info@example.org", "--remove", "ghost@example.org") == "not_a_target"
    assert rule_of("edit", "info@example.org", "--set", "x@example.org", "--add", "y@x.org") == (
        "exclusive"
    )
    line = cli.refused("alias", "add", "x@nope.example", "alice@example.org")
    assert line == "mailwarden: domain not found: nope.example"
    expected = "mailwarden: alias not found: ghost@example.org"
    assert cli.refused("alias", "show", "ghost@example.org") == expected
    assert cli.refused("alias", "edit", "ghost@example.org", "--add", "a@example.org") == expected
    assert cli.refused("alias", "remove", "ghost@example.org") == expected
    assert cli.state() == state


def test_it_adds_lists_and_removes_alias_domains(cli: Cli) -> None:
    cli.add_domain("example.org")
    created = cli.json("alias-domain", "add", "example.net", "example.org")
    assert (created["alias_domain"], created["target_domain"]) == ("example.net", "example.org")
    assert created["active"] is True
    text = cli.ok("alias-domain", "add", "bücher.example", "example.org").stdout
    assert "Added alias domain bücher.example -> example.org." in text

    listed = cli.json("alias-domain", "list")
    assert [(a["alias_domain"], a["target_domain"]) for a in listed] == [
        ("example.net", "example.org"),
        ("xn--bcher-kva.example", "example.org"),
    ]
    assert cli.json("alias-domain", "list", "--target", "example.org") == listed
    assert cli.json("domain", "show", "example.org")["alias_domains"] == [
        "example.net",
        "xn--bcher-kva.example",
    ]

    plan = cli.ok("alias-domain", "remove", "xn--bcher-kva.example").stdout
    assert "remove alias domain xn--bcher-kva.example" in plan
    assert [a["alias_domain"] for a in cli.json("alias-domain", "list")] == ["example.net"]


def test_it_refuses_bad_alias_domains(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_domain("example.com")
    cli.ok("alias-domain", "add", "example.net", "example.org")
    state = cli.state()

    line = cli.refused("alias-domain", "add", "example.com", "example.org")
    assert line == "mailwarden: alias_domain: domain example.com exists already [exists]"
    line = cli.refused("alias-domain", "add", "example.net", "example.com")
    assert line.startswith("mailwarden: alias_domain: ") and line.endswith("[is_alias_domain]")
    line = cli.refused("alias-domain", "add", "example.org", "example.org")
    assert line.startswith("mailwarden: alias_domain: ") and line.endswith("[self_loop]")
    line = cli.refused("alias-domain", "add", "new.example", "nope.example")
    assert line == "mailwarden: domain not found: nope.example"
    line = cli.refused("domain", "add", "example.net")
    assert line.startswith("mailwarden: name: ") and line.endswith("[is_alias_domain]")
    line = cli.refused("alias-domain", "remove", "nope.example")
    assert line == "mailwarden: alias domain not found: nope.example"
    assert cli.state() == state


def test_dry_runs_of_alias_domain_changes_change_nothing(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.ok("alias-domain", "add", "example.net", "example.org")
    listed = cli.json("alias-domain", "list")
    before = cli.audit_ids()

    plan = cli.ok("alias-domain", "add", "example.info", "example.org", "--dry-run").stdout
    assert "Dry run" in plan and "create alias domain example.info" in plan
    plan = cli.ok("alias-domain", "remove", "example.net", "--dry-run").stdout
    assert "Dry run" in plan and "remove alias domain example.net" in plan

    assert cli.json("alias-domain", "list") == listed
    assert cli.audit_ids() == before
