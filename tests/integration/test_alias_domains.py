"""Alias domains through the service: one name space with domains, cascades and audit."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate, AliasDomainPublic
from mailwarden.audit import service as audit
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import Conflict, NotFound, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from tests.conftest import UowFactory
from tests.factories.world import World


def create(uow: UnitOfWork, actor: Actor, name: str, target: str) -> AliasDomainPublic:
    data = parse(AliasDomainCreate, {"alias_domain": name, "target_domain": target})
    return alias_domains.create(uow, actor, data)


def stored_names(connection: Connection) -> list[str]:
    return sorted(connection.execute(text("SELECT name FROM alias_domains")).scalars())


def same(left: AliasDomainPublic, right: AliasDomainPublic) -> bool:
    """Equal but for created_at (MariaDB's DATETIME keeps whole seconds only)."""
    return left.model_dump(exclude={"created_at"}) == right.model_dump(exclude={"created_at"})


def audit_count(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


def test_it_creates_lists_gets_and_removes(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        created = create(uow, world.superadmin, "Alias-A.example.", "A.example")
        create(uow, world.superadmin, "other-a.example", "a.example")
        create(uow, world.superadmin, "alias-b.example", "b.example")
        uow.finish()
    assert (created.alias_domain, created.target_domain, created.active) == (
        "alias-a.example",
        "a.example",
        True,
    )
    with make_uow() as uow:
        everything = alias_domains.list_alias_domains(uow, world.superadmin)
        for_a = alias_domains.list_alias_domains(uow, world.superadmin, target_domain="a.example")
        first = alias_domains.list_alias_domains(uow, world.superadmin, limit=1)
        second = alias_domains.list_alias_domains(
            uow, world.superadmin, limit=1, after=first.next_cursor
        )
        fetched = alias_domains.get(uow, world.domain_admin, "ALIAS-a.example")
    assert sorted(a.alias_domain for a in everything.items) == [
        "alias-a.example",
        "alias-b.example",
        "other-a.example",
    ]
    assert sorted(a.alias_domain for a in for_a.items) == ["alias-a.example", "other-a.example"]
    assert first.next_cursor is not None
    assert first.items[0].alias_domain != second.items[0].alias_domain
    assert same(fetched, created)
    with make_uow() as uow:
        alias_domains.remove(uow, world.superadmin, "alias-a.example")
        uow.finish()
    assert stored_names(connection) == ["alias-b.example", "other-a.example"]
    with make_uow() as uow, pytest.raises(NotFound) as info:
        alias_domains.get(uow, world.superadmin, "alias-a.example")
    assert (info.value.kind, info.value.key) == ("alias domain", "alias-a.example")


def test_it_creates_an_idn_alias_domain(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        created = create(uow, world.superadmin, "bücher.example", "a.example")
        uow.finish()
    assert created.alias_domain == "xn--bcher-kva.example"
    with make_uow() as uow:
        assert same(alias_domains.get(uow, world.superadmin, "BÜCHER.example"), created)
        with pytest.raises(Conflict) as info:
            create(uow, world.superadmin, "xn--bcher-kva.example", "b.example")
    assert (info.value.field, info.value.rule) == ("alias_domain", "is_alias_domain")


def test_it_refuses_an_alias_domain_equal_to_its_target(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, "A.example.", "a.example")
    assert (info.value.field, info.value.rule) == ("alias_domain", "self_loop")
    assert stored_names(connection) == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [("b.example", "exists"), ("B.Example.", "exists"), ("taken.example", "is_alias_domain")],
)
def test_it_refuses_a_name_already_taken(
    name: str, rule: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "taken.example", "b.example")
        uow.finish()
    before = audit_count(connection)
    with make_uow() as uow, pytest.raises(Conflict) as info:
        create(uow, world.superadmin, name, "a.example")
    assert (info.value.field, info.value.rule) == ("alias_domain", rule)
    assert stored_names(connection) == ["taken.example"]
    assert audit_count(connection) == before


@pytest.mark.parametrize("name", ["taken.example", "TAKEN.example.", "taken.example."])
def test_a_domain_cannot_take_an_alias_domain_name(
    name: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "taken.example", "a.example")
        uow.finish()
    with make_uow() as uow, pytest.raises(Conflict) as info:
        domains.create(uow, world.superadmin, parse(DomainCreate, {"name": name}))
    assert (info.value.field, info.value.rule) == ("name", "is_alias_domain")
    count = connection.execute(
        text("SELECT COUNT(*) FROM domains WHERE name = 'taken.example'")
    ).scalar_one()
    assert count == 0


def test_it_refuses_a_missing_target(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow, pytest.raises(NotFound) as info:
        create(uow, world.superadmin, "alias.example", "missing.example")
    assert (info.value.kind, info.value.key) == ("domain", "missing.example")
    assert stored_names(connection) == []


def test_an_alias_domain_cannot_be_a_target(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "alias-a.example", "a.example")
        uow.finish()
    with make_uow() as uow, pytest.raises(NotFound) as info:
        create(uow, world.superadmin, "chain.example", "alias-a.example")
    assert (info.value.kind, info.value.key) == ("domain", "alias-a.example")


def test_removing_a_missing_alias_domain_is_not_found(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(NotFound) as info:
        alias_domains.remove(uow, world.superadmin, "nothing.example")
    assert (info.value.kind, info.value.key) == ("alias domain", "nothing.example")


def test_removing_the_target_needs_cascade_and_then_takes_its_alias_domains(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "alias-b.example", "b.example")
        create(uow, world.superadmin, "other-b.example", "b.example")
        create(uow, world.superadmin, "alias-a.example", "a.example")
        uow.finish()
    with make_uow() as uow, pytest.raises(Conflict) as info:
        domains.remove(uow, world.superadmin, "b.example")
    assert (info.value.field, info.value.rule) == ("domain", "not_empty")
    assert len(stored_names(connection)) == 3
    with make_uow() as uow:
        domains.remove(uow, world.superadmin, "b.example", cascade=True)
        uow.finish()
    assert stored_names(connection) == ["alias-a.example"]
    with make_uow() as uow:
        page = alias_domains.list_alias_domains(uow, world.superadmin)
        entry = audit.list_entries(uow, world.superadmin, action="domain.delete").items[0]
    assert [a.alias_domain for a in page.items] == ["alias-a.example"]
    assert entry.before is not None
    assert sorted(entry.before["alias_domains"]) == ["alias-b.example", "other-b.example"]
    # The freed names can be used again.
    with make_uow() as uow:
        domains.create(uow, world.superadmin, parse(DomainCreate, {"name": "alias-b.example"}))
        uow.finish()


def test_it_audits_create_and_remove(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "alias-a.example", "a.example")
        alias_domains.remove(uow, world.superadmin, "alias-a.example")
        uow.finish()
    with make_uow() as uow:
        entries = audit.list_entries(
            uow, world.superadmin, object_type="alias_domain", object_key="alias-a.example"
        ).items
        seen_by_domain_admin = audit.list_entries(
            uow, world.domain_admin, object_type="alias_domain"
        ).items
    created, removed = reversed(entries)
    snapshot = {"alias_domain": "alias-a.example", "target_domain": "a.example", "active": True}
    assert (created.action, created.before, created.after) == (
        "alias_domain.create",
        None,
        snapshot,
    )
    assert (removed.action, removed.before, removed.after) == (
        "alias_domain.delete",
        snapshot,
        None,
    )
    assert {(e.actor, e.domain) for e in entries} == {("root", "a.example")}
    assert [e.id for e in seen_by_domain_admin] == [e.id for e in entries]
