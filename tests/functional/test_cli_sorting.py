"""`--sort` and the `--active/--inactive` filters of the list commands, on every backend."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from mailwarden.alias_domains.models import AliasDomain
from mailwarden.mailboxes.models import Mailbox
from tests.functional.cli_helpers import Cli

T = datetime(2026, 3, 4, 5, 6, 7, 250_000, tzinfo=UTC)
# Two mailboxes share a creation time, a third is one microsecond later.
CREATED = {
    "m1@a.example": T + timedelta(microseconds=1),
    "m2@a.example": T,
    "m3@a.example": T - timedelta(seconds=5),
    "m4@a.example": T,
}
NEWEST_FIRST = ["m1@a.example", "m4@a.example", "m2@a.example", "m3@a.example"]


def _mailboxes(cli: Cli, engine: Engine) -> None:
    cli.add_domain("a.example")
    for address in CREATED:
        cli.add_mailbox(address)
    with engine.begin() as connection:
        for address, created in CREATED.items():
            connection.execute(
                update(Mailbox).where(Mailbox.address == address).values(created_at=created)
            )


def test_mailbox_list_pages_by_creation_time_with_the_cursor_it_prints(
    cli: Cli, engine: Engine
) -> None:
    _mailboxes(cli, engine)
    first = cli.ok("mailbox", "list", "--sort", "-created_at", "--limit", "2", "--json")
    hint = re.search(r"\(more: continue with (--sort=-created_at) --after (\S+)\)", first.stderr)
    assert hint is not None, first.stderr
    rest = cli.json("mailbox", "list", hint.group(1), "--after", hint.group(2), "--limit", "2")
    walked = [m["address"] for m in cli.json("mailbox", "list", "--sort=-created_at", "--all")]
    assert walked == NEWEST_FIRST
    assert [m["address"] for m in rest] == NEWEST_FIRST[2:]
    paged = cli.json("mailbox", "list", "--sort", "created_at", "--limit", "1", "--all")
    assert [m["address"] for m in paged] == NEWEST_FIRST[::-1]
    # A natural-key sort still takes and prints the key itself.
    descending = cli.ok("mailbox", "list", "--sort", "-address", "--limit", "1", "--json")
    assert "--sort=-address --after m4@a.example" in descending.stderr
    after_key = cli.json("mailbox", "list", "--sort", "-address", "--after", "m3@a.example")
    assert [m["address"] for m in after_key] == ["m2@a.example", "m1@a.example"]


def test_a_wrong_sort_or_a_cursor_of_another_sort_is_refused(cli: Cli, engine: Engine) -> None:
    _mailboxes(cli, engine)
    assert cli.refused("domain", "list", "--sort", "description") == (
        "mailwarden: sort: unknown sort; use one of: name, -name, created_at, -created_at "
        "[unknown_sort]"
    )
    first = cli.ok("mailbox", "list", "--sort", "created_at", "--limit", "1", "--json")
    cursor = first.stderr.split("--after ")[1].rstrip(")\n")
    refusal = cli.refused("mailbox", "list", "--sort", "-created_at", "--after", cursor)
    assert refusal.startswith("mailwarden: cursor: ") and refusal.endswith("[invalid_cursor]")
    assert "address, -address, created_at, -created_at" in " ".join(
        cli.ok("mailbox", "list", "--help").stdout.split()
    )


def test_list_commands_filter_on_active_and_role(cli: Cli, engine: Engine) -> None:
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_mailbox("m1@a.example")
    cli.ok("alias", "add", "on@a.example", "m1@a.example")
    cli.ok("alias", "add", "off@a.example", "m1@a.example", "--inactive")
    cli.ok("alias-domain", "add", "x.example", "a.example")
    cli.ok("alias-domain", "add", "y.example", "b.example")
    with engine.begin() as connection:
        # No command disables an alias domain yet.
        connection.execute(
            update(AliasDomain).where(AliasDomain.name == "y.example").values(active=False)
        )
    cli.add_admin("root", "superadmin")
    cli.add_admin("carol", "domain-admin", "a.example")
    cli.add_admin("dave", "domain-admin", "b.example")
    cli.ok("admin", "edit", "dave", "--inactive")

    assert [a["address"] for a in cli.json("alias", "list", "--inactive")] == ["off@a.example"]
    assert [a["address"] for a in cli.json("alias", "list", "--active", "--sort", "-address")] == [
        "on@a.example"
    ]
    assert [d["alias_domain"] for d in cli.json("alias-domain", "list", "--inactive")] == [
        "y.example"
    ]
    by_target = cli.json("alias-domain", "list", "--search", "a.exa", "--sort", "-alias_domain")
    assert [d["alias_domain"] for d in by_target] == ["x.example"]
    admins = cli.json("admin", "list", "--role", "domain-admin", "--sort", "-username")
    assert [a["username"] for a in admins] == ["dave", "carol"]
    assert [
        a["username"] for a in cli.json("admin", "list", "--active", "--role", "domain-admin")
    ] == ["carol"]
