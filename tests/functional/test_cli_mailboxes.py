"""`mailwarden mailbox ...` against a real database on every backend."""

from __future__ import annotations

import json
import re

from sqlalchemy import Engine

from mailwarden.kernel.passwords import verify_password
from tests.functional.cli_helpers import OTHER_PASSWORD, PASSWORD, Cli, password_hash

GIB = 1024**3
MIB = 1024**2
SHOWN_ONCE = re.compile(r"Password for (\S+) \(shown once\): (\S+)")


def _hash(engine: Engine, address: str) -> str:
    return password_hash(engine, "mailboxes", "address", address)


def _read_outputs(cli: Cli, address: str) -> str:
    """Everything the CLI shows about mailboxes and the audit log, as text and as JSON."""
    return "\n".join(
        cli.ok(*args).stdout
        for args in [
            ("mailbox", "show", address, "--json"),
            ("mailbox", "show", address),
            ("mailbox", "list", "--json"),
            ("mailbox", "list"),
            ("audit", "list", "--json"),
            ("audit", "list"),
        ]
    )


def test_it_adds_a_mailbox_with_a_password_from_stdin(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org")
    result = cli.ok(
        "mailbox",
        "add",
        "Alice@Example.org",
        "--name",
        "Alice Liddell",
        "--quota",
        "1G",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert "Added mailbox alice@example.org." in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    shown = cli.json("mailbox", "show", "alice@example.org")
    assert shown["address"] == "alice@example.org"
    assert shown["name"] == "Alice Liddell"
    assert shown["quota_bytes"] == GIB
    assert shown["active"] is True

    stored = _hash(engine, "alice@example.org")
    assert stored.startswith("{SHA256-CRYPT}")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(OTHER_PASSWORD, stored)

    outputs = _read_outputs(cli, "alice@example.org")
    assert stored not in outputs
    assert stored.removeprefix("{SHA256-CRYPT}") not in outputs
    assert PASSWORD not in outputs


def test_it_reads_exactly_one_line_from_stdin(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org")
    cli.ok(
        "mailbox",
        "add",
        "a@example.org",
        "--password-stdin",
        input="first line secret\nsecond line\n",
    )
    cli.ok("mailbox", "add", "b@example.org", "--password-stdin", input="windows  secret \r\n")
    cli.ok("mailbox", "add", "c@example.org", "--password-stdin", input="no newline at all")
    assert verify_password("first line secret", _hash(engine, "a@example.org"))
    assert verify_password("windows  secret ", _hash(engine, "b@example.org"))
    assert verify_password("no newline at all", _hash(engine, "c@example.org"))


def test_it_prints_a_random_password_once_and_it_works(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org", "--mailbox-quota", "512M", "--quota", "10G")

    text = cli.ok("mailbox", "add", "bob@example.org", "--random-password").stdout
    matches = SHOWN_ONCE.findall(text)
    assert len(matches) == 1, text
    address, password = matches[0]
    assert address == "bob@example.org"
    assert text.count(password) == 1
    assert verify_password(password, _hash(engine, "bob@example.org"))

    created = cli.json("mailbox", "add", "carl@example.org", "--random-password")
    assert created["address"] == "carl@example.org"
    assert created["quota_bytes"] == 512 * MIB
    json_password = created["password"]
    stored = _hash(engine, "carl@example.org")
    assert verify_password(json_password, stored)
    assert stored not in str(created)

    outputs = _read_outputs(cli, "carl@example.org")
    assert json_password not in outputs
    assert password not in outputs
    assert stored not in outputs
    assert _hash(engine, "bob@example.org") not in outputs


def test_it_changes_a_password_with_passwd(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("alice@example.org")
    before = cli.audit_ids()

    result = cli.ok(
        "mailbox", "passwd", "alice@example.org", "--password-stdin", input=OTHER_PASSWORD + "\n"
    )
    assert "Password of alice@example.org changed." in result.stdout
    stored = _hash(engine, "alice@example.org")
    assert verify_password(OTHER_PASSWORD, stored)
    assert not verify_password(PASSWORD, stored)

    generated = cli.json(
        "mailbox", "passwd", "alice@example.org", "--random-password", "--scheme", "sha512-crypt"
    )
    assert generated["address"] == "alice@example.org"
    assert generated["password_scheme"] == "SHA512-CRYPT"
    stored = _hash(engine, "alice@example.org")
    assert stored.startswith("{SHA512-CRYPT}")
    assert verify_password(generated["password"], stored)
    assert not verify_password(OTHER_PASSWORD, stored)

    entries = [e for e in cli.audit() if e["id"] not in before]
    assert [e["action"] for e in entries] == ["mailbox.password", "mailbox.password"]
    assert all(e["object_key"] == "alice@example.org" for e in entries)
    outputs = _read_outputs(cli, "alice@example.org")
    assert stored not in outputs
    assert generated["password"] not in outputs
    assert OTHER_PASSWORD not in outputs


def test_it_lists_mailboxes_by_domain_and_search(cli: Cli) -> None:
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_mailbox("alice@a.example", "--name", "Alice Smith")
    cli.add_mailbox("bob@a.example", "--name", "Bob Jones")
    cli.add_mailbox("smithy@b.example", "--name", "Forge")
    cli.add_mailbox("carol@b.example", "--name", "Carol Smith")

    def addresses(*args: str) -> list[str]:
        return [m["address"] for m in cli.json("mailbox", "list", *args)]

    assert addresses() == [
        "alice@a.example",
        "bob@a.example",
        "carol@b.example",
        "smithy@b.example",
    ]
    assert addresses("--domain", "a.example") == ["alice@a.example", "bob@a.example"]
    assert addresses("--search", "SMITH") == [
        "alice@a.example",
        "carol@b.example",
        "smithy@b.example",
    ]
    assert addresses("--search", "bob@") == ["bob@a.example"]
    assert addresses("--domain", "b.example", "--search", "smith") == [
        "carol@b.example",
        "smithy@b.example",
    ]
    assert addresses("--search", "nobody") == []
    assert "No mailboxes." in cli.ok("mailbox", "list", "--search", "nobody").stdout

    first = cli.json("mailbox", "list", "--domain", "a.example")[0]
    assert set(first) >= {"address", "name", "quota_bytes", "active"}
    assert (first["name"], first["quota_bytes"], first["active"]) == ("Alice Smith", 0, True)


def test_it_pages_mailbox_listings(cli: Cli) -> None:
    cli.add_domain("a.example")
    for number in range(1, 6):
        cli.add_mailbox(f"user{number}@a.example")

    first = cli.ok("mailbox", "list", "--limit", "2")
    rows = [line for line in first.stdout.splitlines() if "@a.example" in line]
    assert len(rows) == 2, first.stdout
    assert "user1@a.example" in rows[0] and "user2@a.example" in rows[1]
    assert "more" in first.stderr and "--after user2@a.example" in first.stderr

    second = cli.ok("mailbox", "list", "--limit", "2", "--after", "user2@a.example", "--json")
    assert [m["address"] for m in json.loads(second.stdout)] == [
        "user3@a.example",
        "user4@a.example",
    ]
    assert "--after user4@a.example" in second.stderr

    last = cli.ok("mailbox", "list", "--limit", "2", "--after", "user4@a.example", "--json")
    assert [m["address"] for m in json.loads(last.stdout)] == ["user5@a.example"]
    assert last.stderr == ""

    everything = [f"user{number}@a.example" for number in range(1, 6)]
    assert [m["address"] for m in cli.json("mailbox", "list", "--all")] == everything
    walked = cli.ok("mailbox", "list", "--all", "--limit", "2", "--json")
    assert [m["address"] for m in json.loads(walked.stdout)] == everything
    assert walked.stderr == ""


def test_it_edits_and_removes_a_mailbox(cli: Cli) -> None:
    cli.add_domain("example.org", "--quota", "10G", "--mailbox-quota", "1G")
    cli.add_mailbox("alice@example.org")

    edited = cli.json(
        "mailbox", "edit", "alice@example.org", "--name", "Alice", "--quota", "2G", "--inactive"
    )
    assert (edited["name"], edited["quota_bytes"], edited["active"]) == ("Alice", 2 * GIB, False)
    assert cli.json("mailbox", "show", "alice@example.org")["quota_bytes"] == 2 * GIB

    plan = cli.ok("mailbox", "edit", "alice@example.org", "--active").stdout
    assert "change mailbox alice@example.org" in plan and "active" in plan

    plan = cli.ok("mailbox", "remove", "alice@example.org").stdout
    assert "remove mailbox alice@example.org" in plan
    assert cli.json("mailbox", "list") == []
    # Removal is deferred (tests/functional/test_cli_mailbox_removal.py): still shown.
    assert cli.json("mailbox", "show", "alice@example.org")["removed_at"] is not None


def test_dry_runs_of_mailbox_changes_change_nothing(cli: Cli, engine: Engine) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("alice@example.org", "--name", "Alice")
    stored = _hash(engine, "alice@example.org")
    listed = cli.json("mailbox", "list")
    before = cli.audit_ids()

    plan = cli.ok("mailbox", "add", "bob@example.org", "--random-password", "--dry-run").stdout
    assert "Dry run" in plan and "create mailbox bob@example.org" in plan
    assert "shown once" not in plan
    plan = cli.ok(
        "mailbox",
        "add",
        "carl@example.org",
        "--password-stdin",
        "--dry-run",
        input=PASSWORD + "\n",
    ).stdout
    assert "create mailbox carl@example.org" in plan

    plan = cli.ok("mailbox", "edit", "alice@example.org", "--name", "Changed", "--dry-run").stdout
    assert "change mailbox alice@example.org" in plan and '"Alice" -> "Changed"' in plan

    plan = cli.ok(
        "mailbox",
        "passwd",
        "alice@example.org",
        "--password-stdin",
        "--dry-run",
        input=OTHER_PASSWORD + "\n",
    ).stdout
    assert "Dry run" in plan and "alice@example.org" in plan
    plan_json = cli.json("mailbox", "passwd", "alice@example.org", "--random-password", "--dry-run")
    assert plan_json["dry_run"] is True and "password" not in plan_json
    assert [c["key"] for c in plan_json["plan"]] == ["alice@example.org"]

    plan = cli.ok("mailbox", "remove", "alice@example.org", "--dry-run").stdout
    assert "Dry run" in plan and "remove mailbox alice@example.org" in plan

    assert cli.json("mailbox", "list") == listed
    assert cli.json("mailbox", "show", "alice@example.org")["name"] == "Alice"
    assert _hash(engine, "alice@example.org") == stored
    assert verify_password(PASSWORD, stored)
    assert cli.audit_ids() == before


def test_it_refuses_invalid_addresses_and_unknown_objects(cli: Cli) -> None:
    cli.add_domain("example.org")
    state = cli.state()
    for address, rule in [
        ("bad@@example.org", "at_sign"),
        ("noat", "at_sign"),
        ("a b@example.org", "whitespace"),
    ]:
        line = cli.refused("mailbox", "add", address, "--password-stdin", input=PASSWORD + "\n")
        assert line.startswith("mailwarden: address: ") and line.endswith(f"[{rule}]"), line
    line = cli.refused("mailbox", "add", "a@nope.example", "--password-stdin", input=PASSWORD)
    assert line == "mailwarden: domain not found: nope.example"
    expected = "mailwarden: mailbox not found: ghost@example.org"
    assert cli.refused("mailbox", "show", "ghost@example.org") == expected
    assert cli.refused("mailbox", "edit", "ghost@example.org", "--name", "x") == expected
    assert cli.refused("mailbox", "passwd", "ghost@example.org", "--random-password") == expected
    assert cli.refused("mailbox", "remove", "ghost@example.org") == expected
    assert cli.state() == state


def test_it_refuses_duplicates_and_addresses_taken_by_an_alias(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("alice@example.org")
    cli.ok("alias", "add", "info@example.org", "alice@example.org")
    state = cli.state()

    line = cli.refused(
        "mailbox", "add", "ALICE@example.org", "--password-stdin", input=OTHER_PASSWORD + "\n"
    )
    assert line == "mailwarden: address: mailbox alice@example.org exists already [exists]"
    line = cli.refused("mailbox", "add", "info@example.org", "--random-password")
    assert line.startswith("mailwarden: address: ") and line.endswith("[is_alias]"), line
    assert cli.state() == state  # the hash included


def test_it_refuses_weak_or_empty_passwords_and_unknown_schemes(cli: Cli) -> None:
    cli.add_domain("example.org")
    cli.add_mailbox("alice@example.org")
    state = cli.state()

    for password, rule in [
        ("short", "too_short"),
        ("", "required"),
        ("{SHA512-CRYPT}$6$abc", "looks_like_hash"),
    ]:
        line = cli.refused(
            "mailbox", "add", "bob@example.org", "--password-stdin", input=password + "\n"
        )
        assert line.startswith("mailwarden: password: ") and line.endswith(f"[{rule}]"), line
        line = cli.refused(
            "mailbox", "passwd", "alice@example.org", "--password-stdin", input=password + "\n"
        )
        assert line.startswith("mailwarden: password: ") and line.endswith(f"[{rule}]"), line
    line = cli.refused("mailbox", "add", "bob@example.org", "--password-stdin")  # empty stdin
    assert line.endswith("[required]"), line

    line = cli.refused("mailbox", "add", "bob@example.org", "--random-password", "--scheme", "MD4")
    assert line == "mailwarden: scheme: unknown password scheme [unknown_scheme]"
    line = cli.refused(
        "mailbox", "passwd", "alice@example.org", "--random-password", "--scheme", "SSHA512"
    )
    assert line.startswith("mailwarden: scheme: ") and line.endswith("[scheme_not_writable]")
    assert cli.state() == state  # the hash included


def test_it_enforces_the_limits_of_the_domain(cli: Cli) -> None:
    cli.add_domain("small.example", "--max-mailboxes", "2")
    cli.add_domain("quota.example", "--quota", "1G", "--mailbox-quota", "256M")
    cli.add_mailbox("a@small.example")
    cli.add_mailbox("b@small.example")
    cli.add_mailbox("a@quota.example", "--quota", "512M")
    state = cli.state()

    line = cli.refused("mailbox", "add", "c@small.example", "--random-password")
    assert line == (
        "mailwarden: address: domain small.example has reached its limit of 2 mailboxes "
        "[max_mailboxes]"
    )
    line = cli.refused("mailbox", "add", "b@quota.example", "--quota", "2G", "--random-password")
    assert line.startswith("mailwarden: quota_bytes: ") and line.endswith("[exceeds_domain_quota]")
    line = cli.refused("mailbox", "add", "b@quota.example", "--quota", "0", "--random-password")
    assert line.endswith("[unlimited_in_limited_domain]"), line
    line = cli.refused("mailbox", "add", "b@quota.example", "--quota", "768M", "--random-password")
    assert line.startswith("mailwarden: quota_bytes: ") and line.endswith(
        "[domain_quota_exhausted]"
    )
    line = cli.refused("mailbox", "edit", "a@quota.example", "--quota", "2G")
    assert line.endswith("[exceeds_domain_quota]"), line
    line = cli.refused("domain", "edit", "small.example", "--max-mailboxes", "1")
    assert line.startswith("mailwarden: max_mailboxes: ") and line.endswith("[below_usage]")
    assert cli.state() == state


def test_a_used_up_domain_quota_is_reported_as_nothing_left(cli: Cli) -> None:
    """free == 0 must not be described as "unlimited" (format_size(0) means unlimited)."""
    cli.add_domain("quota.example", "--quota", "1G", "--mailbox-quota", "512M")
    cli.add_mailbox("a@quota.example")
    cli.add_mailbox("b@quota.example")
    line = cli.refused("mailbox", "add", "c@quota.example", "--random-password")
    assert line.endswith("[domain_quota_exhausted]"), line
    assert "unlimited" not in line, line


def test_a_refused_listing_prints_nothing_on_stdout(cli: Cli) -> None:
    """A program reading `--all --json` must not get a half-written array when exit is 1."""
    cli.add_domain("example.org")
    expected = "mailwarden: domain not found: nope.example"
    assert cli.refused("mailbox", "list", "--domain", "nope.example", "--json") == expected
    assert cli.refused("mailbox", "list", "--domain", "nope.example", "--all", "--json") == expected
