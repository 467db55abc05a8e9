"""`mailwarden domain ...` against a real database on every backend."""

from __future__ import annotations

from tests.functional.cli_helpers import Cli

GIB = 1024**3
MIB = 1024**2


def test_it_adds_lists_shows_and_edits_a_domain(cli: Cli) -> None:
    created = cli.json(
        "domain",
        "add",
        "example.org",
        "--description",
        "Main office",
        "--max-mailboxes",
        "10",
        "--max-aliases",
        "20",
        "--mailbox-quota",
        "512M",
        "--quota",
        "2G",
    )
    assert created["name"] == "example.org"
    assert created["description"] == "Main office"
    assert created["max_mailboxes"] == 10
    assert created["max_aliases"] == 20
    assert created["default_mailbox_quota_bytes"] == 512 * MIB
    assert created["quota_bytes"] == 2 * GIB
    assert created["active"] is True

    text = cli.ok("domain", "add", "example.net").stdout
    assert "Added domain example.net." in text

    listed = cli.json("domain", "list")
    assert isinstance(listed, list)
    assert [d["name"] for d in listed] == ["example.net", "example.org"]

    shown = cli.json("domain", "show", "example.org")
    assert shown["name"] == "example.org"
    assert shown["quota_bytes"] == 2 * GIB
    assert shown["mailbox_count"] == 0
    assert shown["alias_count"] == 0

    edited = cli.json(
        "domain",
        "edit",
        "example.org",
        "--description",
        "Head office",
        "--max-mailboxes",
        "0",
        "--quota",
        "0",
        "--mailbox-quota",
        "1G",
        "--inactive",
    )
    assert edited["description"] == "Head office"
    assert edited["max_mailboxes"] == 0
    assert edited["quota_bytes"] == 0
    assert edited["default_mailbox_quota_bytes"] == GIB
    assert edited["active"] is False
    assert cli.json("domain", "show", "example.org")["description"] == "Head office"

    plan = cli.ok("domain", "edit", "example.org", "--description", "HQ").stdout
    assert "example.org" in plan
    assert '"Head office" -> "HQ"' in plan


def test_it_accepts_byte_counts_and_binary_units(cli: Cli) -> None:
    in_bytes = cli.json(
        "domain", "add", "bytes.example", "--quota", "1073741824", "--mailbox-quota", "1048576"
    )
    assert (in_bytes["quota_bytes"], in_bytes["default_mailbox_quota_bytes"]) == (GIB, MIB)
    units = cli.json("domain", "add", "units.example", "--quota", "2G", "--mailbox-quota", "512M")
    assert (units["quota_bytes"], units["default_mailbox_quota_bytes"]) == (2 * GIB, 512 * MIB)
    unlimited = cli.json("domain", "add", "free.example", "--quota", "0")
    assert unlimited["quota_bytes"] == 0


def test_it_refuses_bad_sizes_naming_the_field(cli: Cli) -> None:
    state = cli.state()
    for option, field in [
        ("--quota", "quota_bytes"),
        ("--mailbox-quota", "default_mailbox_quota_bytes"),
    ]:
        for size, rule in [
            ("-1", "negative"),
            ("1X", "invalid_size"),
            ("nan", "not_finite"),
            ("99999999999P", "too_large"),
        ]:
            line = cli.refused("domain", "add", "sizes.example", option, size)
            assert line.startswith(f"mailwarden: {field}: "), line
            assert line.endswith(f"[{rule}]"), line
    cli.add_domain("sizes.example", "--mailbox-quota", "1G")
    line = cli.refused("domain", "edit", "sizes.example", "--quota", "1X")
    assert line.startswith("mailwarden: quota_bytes: ") and line.endswith("[invalid_size]")
    cli.add_mailbox("a@sizes.example")
    line = cli.refused("mailbox", "edit", "a@sizes.example", "--quota", "-1")
    assert line.startswith("mailwarden: quota: ") and line.endswith("[negative]"), line
    assert cli.json("mailbox", "show", "a@sizes.example")["quota_bytes"] == 1024**3
    assert [d["name"] for d in cli.json("domain", "list")] == ["sizes.example"]
    assert len(cli.state()["audit_log"]) == len(state["audit_log"]) + 2


def test_it_treats_the_unicode_and_ace_spellings_as_one_domain(cli: Cli) -> None:
    created = cli.json("domain", "add", "bücher.example")
    assert created["name"] == "xn--bcher-kva.example"

    line = cli.refused("domain", "add", "xn--bcher-kva.example")
    assert line == "mailwarden: name: domain xn--bcher-kva.example exists already [exists]"
    assert cli.refused("domain", "add", "BÜCHER.example").endswith("[exists]")

    by_unicode = cli.json("domain", "show", "bücher.example")
    by_ace = cli.json("domain", "show", "xn--bcher-kva.example")
    assert by_unicode == by_ace
    assert by_ace["name_unicode"] == "bücher.example"
    assert [d["name"] for d in cli.json("domain", "list")] == ["xn--bcher-kva.example"]
    assert "bücher.example" in cli.ok("domain", "list").stdout

    cli.add_mailbox("leser@bücher.example")
    mailbox = cli.json("mailbox", "show", "leser@xn--bcher-kva.example")
    assert mailbox["address"] == "leser@xn--bcher-kva.example"
    assert cli.json("mailbox", "list", "--domain", "xn--bcher-kva.example") == cli.json(
        "mailbox", "list", "--domain", "bücher.example"
    )

    cli.ok("domain", "edit", "xn--bcher-kva.example", "--description", "Books")
    assert cli.json("domain", "show", "bücher.example")["description"] == "Books"


def test_it_refuses_invalid_domain_names(cli: Cli) -> None:
    state = cli.state()
    for name, rule in [
        ("exa mple.org", "whitespace"),
        ("example", "single_label"),
        ("foo..example", "empty_label"),
    ]:
        line = cli.refused("domain", "add", name)
        assert line.startswith("mailwarden: name: "), line
        assert line.endswith(f"[{rule}]"), line
    assert cli.state() == state


def test_it_refuses_a_duplicate_and_changes_nothing(cli: Cli) -> None:
    cli.add_domain("example.org", "--description", "first")
    state = cli.state()
    line = cli.refused("domain", "add", "EXAMPLE.org", "--description", "second")
    assert line == "mailwarden: name: domain example.org exists already [exists]"
    assert cli.json("domain", "show", "example.org")["description"] == "first"
    assert cli.state() == state


def test_it_refuses_unknown_domains(cli: Cli) -> None:
    state = cli.state()
    expected = "mailwarden: domain not found: nope.example"
    assert cli.refused("domain", "show", "nope.example") == expected
    assert cli.refused("domain", "edit", "nope.example", "--description", "x") == expected
    assert cli.refused("domain", "remove", "nope.example") == expected
    assert cli.state() == state


def test_it_removes_a_domain_and_needs_cascade_for_a_non_empty_one(cli: Cli) -> None:
    cli.add_domain("empty.example")
    cli.add_domain("full.example")
    cli.add_mailbox("u@full.example")
    cli.ok("alias", "add", "info@full.example", "u@full.example")

    plan = cli.ok("domain", "remove", "empty.example").stdout
    assert "remove domain empty.example" in plan
    assert cli.refused("domain", "show", "empty.example").endswith("not found: empty.example")

    state = cli.state()
    line = cli.refused("domain", "remove", "full.example")
    assert line.startswith("mailwarden: domain: ") and line.endswith("[not_empty]"), line
    assert cli.state() == state

    cli.ok("domain", "remove", "full.example", "--cascade")
    # The domain stays, inactive, until `maintenance purge` has purged its mailboxes.
    assert [(d["name"], d["active"]) for d in cli.json("domain", "list")] == [
        ("full.example", False)
    ]
    assert cli.json("mailbox", "list") == []
    assert [m["address"] for m in cli.json("mailbox", "list", "--removed")] == ["u@full.example"]
    assert cli.json("alias", "list") == []


def test_dry_runs_of_domain_changes_change_nothing(cli: Cli) -> None:
    cli.add_domain("example.org", "--description", "kept")
    cli.add_mailbox("u@example.org")
    before = cli.audit_ids()

    plan = cli.ok("domain", "add", "example.net", "--dry-run").stdout
    assert "Dry run" in plan and "create domain example.net" in plan
    as_json = cli.json("domain", "add", "bücher.example", "--dry-run")
    assert as_json["dry_run"] is True
    assert [(c["change"], c["key"]) for c in as_json["plan"]] == [
        ("create", "xn--bcher-kva.example")
    ]

    plan = cli.ok(
        "domain",
        "edit",
        "example.org",
        "--description",
        "changed",
        "--max-mailboxes",
        "5",
        "--dry-run",
    ).stdout
    assert "change domain example.org" in plan
    assert '"kept" -> "changed"' in plan

    plan = cli.ok("domain", "remove", "example.org", "--cascade", "--dry-run").stdout
    assert "remove domain example.org" in plan

    assert [d["name"] for d in cli.json("domain", "list")] == ["example.org"]
    shown = cli.json("domain", "show", "example.org")
    assert (shown["description"], shown["max_mailboxes"], shown["mailbox_count"]) == ("kept", 0, 1)
    assert cli.refused("domain", "show", "example.net").endswith("not found: example.net")
    assert cli.audit_ids() == before
