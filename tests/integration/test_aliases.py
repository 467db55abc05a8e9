"""Aliases through the service: targets, loops, limits, edits, lists and their audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, text

from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate, AliasUpdate
from mailwarden.audit import service as audit
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    ValidationError,
)
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)


def create(uow: UnitOfWork, actor: Actor, address: str, targets: list[str]) -> Any:
    return aliases.create(uow, actor, parse(AliasCreate, {"address": address, "targets": targets}))


def update(uow: UnitOfWork, actor: Actor, address: str, **changes: Any) -> Any:
    return aliases.update(uow, actor, address, parse(AliasUpdate, changes))


def rows_of(connection: Connection, address: str) -> list[tuple[str, bool]]:
    """The stored rows of one alias: (target, active), one row per target."""
    result = connection.execute(
        text("SELECT target, active FROM aliases WHERE address = :a ORDER BY target"),
        {"a": address},
    )
    return [(target, bool(active)) for target, active in result]


def audit_count(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


def entries_for(uow: UnitOfWork, address: str) -> list[AuditEntryPublic]:
    """Audit entries of one alias, oldest first."""
    page = audit.list_entries(uow, OPERATOR, object_type="alias", object_key=address)
    return list(reversed(page.items))


def test_it_creates_an_alias_with_one_row_per_target(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    targets = ["user1@a.example", "postmaster@a.example", "someone@elsewhere.example"]
    with make_uow() as uow:
        alias = create(uow, world.domain_admin, "team@a.example", targets)
        uow.finish()
    assert alias.address == "team@a.example"
    assert alias.domain == "a.example"
    assert alias.targets == sorted(targets)
    assert (alias.catch_all, alias.active) == (False, True)
    count = connection.execute(
        text("SELECT COUNT(*) FROM aliases WHERE address = 'team@a.example'")
    ).scalar_one()
    assert count == 3
    with make_uow() as uow:
        assert aliases.get(uow, world.domain_admin, "Team@A.example") == alias


def test_it_collapses_duplicate_targets(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        alias = create(
            uow,
            world.superadmin,
            "dup@a.example",
            ["user1@a.example", "USER1@a.example", "user1@A.EXAMPLE.", "user1@a.example"],
        )
        uow.finish()
    assert alias.targets == ["user1@a.example"]
    assert rows_of(connection, "dup@a.example") == [("user1@a.example", True)]


@pytest.mark.parametrize(
    ("address", "targets", "field"),
    [
        ("loop@a.example", ["loop@a.example"], "targets[0]"),
        ("loop@a.example", ["user1@a.example", "LOOP@a.example"], "targets[1]"),
        ("Loop@A.Example", ["loop@a.example."], "targets[0]"),
    ],
)
def test_it_refuses_a_self_loop(
    address: str,
    targets: list[str],
    field: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, address, targets)
    assert (info.value.field, info.value.rule) == (field, "self_loop")
    assert rows_of(connection, "loop@a.example") == []


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("|/usr/bin/procmail", "pipe_target"),
        ('"|/bin/sh -c id"', "pipe_target"),
        ("/var/mail/root", "file_target"),
        ("./mbox", "file_target"),
        (":include:/etc/aliases.list", "include_target"),
        (":INCLUDE:/etc/aliases.list", "include_target"),
        ("root", "unqualified_target"),
        ("user1%a.example", "routing_character"),
    ],
)
def test_it_refuses_non_address_targets(
    target: str, rule: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = audit_count(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, "bad@a.example", ["user1@a.example", target])
    assert (info.value.field, info.value.rule) == ("targets[1]", rule)
    assert rows_of(connection, "bad@a.example") == []
    assert audit_count(connection) == before


def test_it_creates_a_catch_all(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        alias = create(uow, world.domain_admin, "@A.example", ["user1@a.example"])
        uow.finish()
    assert (alias.address, alias.domain, alias.catch_all) == ("@a.example", "a.example", True)
    with make_uow() as uow:
        page = aliases.list_aliases(uow, world.domain_admin, domain="a.example")
    assert [a.address for a in page.items if a.catch_all] == ["@a.example"]


def test_it_accepts_plus_addressed_targets(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        alias = create(
            uow, world.domain_admin, "lists@a.example", ["user1+lists@a.example", "x+y@b.example"]
        )
        uow.finish()
    assert alias.targets == ["user1+lists@a.example", "x+y@b.example"]
    assert len(rows_of(connection, "lists@a.example")) == 2


def test_it_refuses_plus_in_the_alias_address(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, "user1+x@a.example", ["user1@a.example"])
    assert (info.value.field, info.value.rule) == ("address", "invalid_character")


def test_it_refuses_an_alias_on_a_mailbox_address(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as info:
        create(uow, world.domain_admin, "User1@a.example", ["postmaster@a.example"])
    assert (info.value.field, info.value.rule) == ("address", "is_mailbox")
    assert rows_of(connection, "user1@a.example") == []


def test_it_refuses_a_mailbox_on_an_alias_address(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as info:
        mailboxes.create(
            uow,
            world.domain_admin,
            parse(MailboxCreate, {"address": "INFO@a.example"}),
            password=PASSWORD,
        )
    assert (info.value.field, info.value.rule) == ("address", "is_alias")


def test_it_refuses_a_duplicate_alias(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as info:
        create(uow, world.domain_admin, "info@a.example", ["postmaster@a.example"])
    assert (info.value.field, info.value.rule) == ("address", "exists")


def test_it_enforces_max_aliases(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    # a.example allows 5 aliases and has info@ already; a multi-target alias counts once.
    with make_uow() as uow:
        for name in ("one", "two", "three"):
            create(uow, world.domain_admin, f"{name}@a.example", ["user1@a.example"])
        create(uow, world.domain_admin, "@a.example", ["user1@a.example", "postmaster@a.example"])
        uow.finish()
    with make_uow() as uow:
        assert domains.show(uow, world.domain_admin, "a.example").aliases == 5
    before = audit_count(connection)
    with make_uow() as uow, pytest.raises(LimitExceeded) as info:
        create(uow, world.domain_admin, "six@a.example", ["user1@a.example"])
    assert (info.value.field, info.value.rule) == ("address", "max_aliases")
    assert rows_of(connection, "six@a.example") == []
    assert audit_count(connection) == before
    # b.example has no limit.
    with make_uow() as uow:
        create(uow, world.superadmin, "six@b.example", ["user1@b.example"])


def test_it_refuses_an_alias_in_an_unknown_domain(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(NotFound) as info:
        create(uow, world.superadmin, "x@unknown.example", ["user1@a.example"])
    assert (info.value.kind, info.value.key) == ("domain", "unknown.example")


def test_it_replaces_adds_and_removes_targets(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = world.domain_admin
    with make_uow() as uow:
        alias = update(uow, actor, "info@a.example", set_targets=["a@x.example", "b@x.example"])
        uow.finish()
    assert alias.targets == ["a@x.example", "b@x.example"]
    assert [t for t, _ in rows_of(connection, "info@a.example")] == ["a@x.example", "b@x.example"]
    with make_uow() as uow:
        alias = update(
            uow,
            actor,
            "info@a.example",
            add_targets=["C@x.example"],
            remove_targets=["A@X.example"],
        )
        uow.finish()
    assert alias.targets == ["b@x.example", "c@x.example"]
    assert [t for t, _ in rows_of(connection, "info@a.example")] == ["b@x.example", "c@x.example"]
    with make_uow() as uow:
        alias = update(uow, actor, "info@a.example", active=False)
        uow.finish()
    assert alias.active is False
    assert rows_of(connection, "info@a.example") == [
        ("b@x.example", False),
        ("c@x.example", False),
    ]


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"remove_targets": ["user1@a.example"]}, "targets", "required"),
        ({"set_targets": []}, "targets", "required"),
        (
            {"set_targets": ["a@x.example"], "add_targets": ["b@x.example"]},
            "set_targets",
            "exclusive",
        ),
        ({"remove_targets": ["nobody@a.example"]}, "remove_targets", "not_a_target"),
        ({"add_targets": ["ok@x.example", "info@a.example"]}, "add_targets[1]", "self_loop"),
        ({"set_targets": ["|cat"]}, "set_targets[0]", "pipe_target"),
        ({"add_targets": ["root"]}, "add_targets[0]", "unqualified_target"),
    ],
    ids=["remove-last", "set-empty", "set-and-add", "remove-unknown", "self-loop", "pipe", "bare"],
)
def test_it_refuses_bad_edits(
    changes: dict[str, Any],
    field: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    before = audit_count(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        update(uow, world.domain_admin, "info@a.example", **changes)
    assert (info.value.field, info.value.rule) == (field, rule)
    assert rows_of(connection, "info@a.example") == [("user1@a.example", True)]
    assert audit_count(connection) == before


def test_it_removes_an_alias(world: World, make_uow: UowFactory, connection: Connection) -> None:
    with make_uow() as uow:
        aliases.remove(uow, world.domain_admin, "Info@a.example")
        uow.finish()
    assert rows_of(connection, "info@a.example") == []
    with make_uow() as uow:
        with pytest.raises(NotFound):
            aliases.get(uow, world.domain_admin, "info@a.example")
        with pytest.raises(NotFound):
            aliases.remove(uow, world.domain_admin, "info@a.example")
    # Its sibling in the other domain is untouched.
    assert rows_of(connection, "info@b.example") == [("user1@b.example", True)]


def test_it_pages_through_aliases(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        for number in range(1, 8):
            create(uow, world.superadmin, f"list{number}@b.example", ["user1@b.example"])
        uow.finish()
    seen: list[str] = []
    cursors: list[str | None] = []
    after: str | None = None
    with make_uow() as uow:
        for _ in range(4):
            page = aliases.list_aliases(
                uow, world.outsider, domain="b.example", limit=3, after=after
            )
            seen += [alias.address for alias in page.items]
            cursors.append(page.next_cursor)
            if page.next_cursor is None:
                break
            assert len(page.items) == 3
            after = page.next_cursor
    # info@b.example plus seven new ones: 3 + 3 + 2.
    assert len(cursors) == 3
    assert cursors[-1] is None
    assert sorted(seen) == sorted(["info@b.example"] + [f"list{n}@b.example" for n in range(1, 8)])
    assert len(set(seen)) == len(seen)


def test_it_searches_addresses_and_targets(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "sales@a.example", ["boss@x.example"])
        create(uow, world.superadmin, "Support@a.example", ["desk@x.example"])
        uow.finish()
    with make_uow() as uow:
        by_address = aliases.list_aliases(uow, world.domain_admin, search="SUPP")
        by_target = aliases.list_aliases(uow, world.domain_admin, search="boss@")
        nothing = aliases.list_aliases(uow, world.domain_admin, search="%")
        with pytest.raises(ValidationError) as info:
            aliases.list_aliases(uow, world.domain_admin, search="x" * 255)
    assert [a.address for a in by_address.items] == ["support@a.example"]
    assert [a.address for a in by_target.items] == ["sales@a.example"]
    assert nothing.items == []
    assert (info.value.field, info.value.rule) == ("search", "too_long")


def test_it_caps_the_number_of_targets(
    world: World, make_uow: UowFactory, settings: Settings
) -> None:
    capped = settings.model_copy(update={"max_alias_targets": 3})
    targets = [f"t{n}@x.example" for n in range(4)]
    with make_uow() as uow:
        uow.settings = capped
        with pytest.raises(ValidationError) as info:
            create(uow, world.superadmin, "many@a.example", targets)
        assert (info.value.field, info.value.rule) == ("targets", "too_many_targets")
        # Duplicates do not count against the cap.
        create(uow, world.superadmin, "many@a.example", targets[:3] + targets[:3])
        with pytest.raises(ValidationError) as info:
            update(uow, world.superadmin, "many@a.example", add_targets=[targets[3]])
        assert (info.value.field, info.value.rule) == ("targets", "too_many_targets")
        with pytest.raises(ValidationError) as info:
            update(uow, world.superadmin, "many@a.example", set_targets=targets)
        assert (info.value.field, info.value.rule) == ("set_targets", "too_many_targets")


def test_it_audits_create_update_and_delete(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    with make_uow() as uow:
        create(uow, actor, "audit@a.example", ["user1@a.example"])
        update(uow, actor, "audit@a.example", add_targets=["x@y.example"])
        update(uow, actor, "audit@a.example", add_targets=["x@y.example"])  # no change
        aliases.remove(uow, actor, "audit@a.example")
        uow.finish()
    with make_uow() as uow:
        entries = entries_for(uow, "audit@a.example")
    assert [e.action for e in entries] == ["alias.create", "alias.update", "alias.delete"]
    assert {(e.actor, e.domain, e.object_type) for e in entries} == {
        ("alice", "a.example", "alias")
    }
    created, updated, deleted = entries
    one = {"address": "audit@a.example", "targets": ["user1@a.example"], "active": True}
    two = {
        "address": "audit@a.example",
        "targets": ["user1@a.example", "x@y.example"],
        "active": True,
    }
    assert (created.before, created.after) == (None, one)
    assert (updated.before, updated.after) == (one, two)
    assert (deleted.before, deleted.after) == (two, None)


def test_it_handles_idn_domains(world: World, make_uow: UowFactory, connection: Connection) -> None:
    with make_uow() as uow:
        domains.create(uow, world.superadmin, parse(DomainCreate, {"name": "Bücher.example"}))
        alias = create(uow, world.superadmin, "kontakt@bücher.example", ["user1@a.example"])
        catch_all = create(uow, world.superadmin, "@xn--bcher-kva.example", ["user1@a.example"])
        uow.finish()
    assert alias.address == "kontakt@xn--bcher-kva.example"
    assert alias.domain == "xn--bcher-kva.example"
    assert catch_all.address == "@xn--bcher-kva.example"
    assert len(rows_of(connection, "kontakt@xn--bcher-kva.example")) == 1
    with make_uow() as uow:
        assert aliases.get(uow, world.superadmin, "Kontakt@BÜCHER.example") == alias
        assert aliases.get(uow, world.superadmin, "kontakt@xn--bcher-kva.example") == alias
        page = aliases.list_aliases(uow, world.superadmin, domain="bücher.example")
        with pytest.raises(Conflict) as info:
            create(uow, world.superadmin, "KONTAKT@xn--bcher-kva.example", ["user1@b.example"])
    assert sorted(a.address for a in page.items) == [
        "@xn--bcher-kva.example",
        "kontakt@xn--bcher-kva.example",
    ]
    assert (info.value.field, info.value.rule) == ("address", "exists")
