"""Sorted keyset pages of every list: each allowed sort, both directions, every row exactly once.

The catalog gives several rows the same creation time, and others one microsecond apart, so a
tie breaker that is missing or a cursor that loses precision shows up as a duplicate or a gap.
Keys are spelled so that every database collation orders them as Python does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, update

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.schemas import AdminCreate
from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.models import AliasTarget
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.mailboxes.schemas import MailboxCreate
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)

# Ties (T three times, T + 2 s twice) and neighbours one microsecond apart.
T = datetime(2026, 3, 4, 5, 6, 7, 250_000, tzinfo=UTC)
STAMPS = [
    T,
    T,
    T + timedelta(microseconds=1),
    T,
    T + timedelta(seconds=2),
    T + timedelta(microseconds=2),
    T - timedelta(seconds=1),
    T + timedelta(seconds=2),
]

DOMAINS = [f"d{i:02}.example" for i in range(1, 9)]
INACTIVE_DOMAINS = {"d03.example", "d06.example"}
MAILBOXES = [f"m{i:02}@d01.example" for i in range(1, 8)] + [
    f"m{i:02}@d02.example" for i in range(8, 12)
]
INACTIVE_MAILBOXES = {"m02@d01.example", "m09@d02.example"}
REMOVED_MAILBOX = "m05@d01.example"
ALIAS_TARGETS = {
    "a01@d01.example": ["m01@d01.example"],
    "a02@d01.example": ["m01@d01.example", "m02@d01.example"],
    "a03@d01.example": ["m01@d01.example", "m02@d01.example", "m03@d01.example"],
    "a04@d02.example": ["m08@d02.example"],
    "a05@d01.example": ["m04@d01.example"],
    "a06@d01.example": ["m06@d01.example", "m07@d01.example"],
    "a07@d02.example": ["m10@d02.example", "m11@d02.example"],
}
INACTIVE_ALIAS = "a05@d01.example"
# One of its two rows is inactive: the alias still delivers, so it counts as active.
HALF_ACTIVE_ALIAS = "a06@d01.example"
# al01, al03 and al05 point to d02.example; the others to d01.example.
ALIAS_DOMAINS = {f"al{i:02}.example": DOMAINS[i % 2] for i in range(1, 7)}
INACTIVE_ALIAS_DOMAIN = "al05.example"
ADMINS = [f"adm{i:02}" for i in range(1, 7)]
SUPERADMINS = {"adm01", "adm04"}
INACTIVE_ADMIN = "adm05"


def _stamped(uow: UnitOfWork, model: Any, column: Any, keys: Sequence[str]) -> dict[str, datetime]:
    stamps = {key: STAMPS[index % len(STAMPS)] for index, key in enumerate(keys)}
    for key, stamp in stamps.items():
        uow.session.execute(update(model).where(column == key).values(created_at=stamp))
    return stamps


@dataclass(frozen=True)
class Catalog:
    created: dict[str, dict[str, datetime]]


@pytest.fixture
def catalog(make_uow: UowFactory) -> Catalog:
    with make_uow() as uow:
        for name in DOMAINS:
            domains.create(
                uow,
                OPERATOR,
                parse(DomainCreate, {"name": name, "active": name not in INACTIVE_DOMAINS}),
            )
        for address in MAILBOXES:
            mailboxes.create(
                uow, OPERATOR, parse(MailboxCreate, {"address": address}), password=PASSWORD
            )
        for address, targets in ALIAS_TARGETS.items():
            aliases.create(
                uow,
                OPERATOR,
                parse(
                    AliasCreate,
                    {"address": address, "targets": targets, "active": address != INACTIVE_ALIAS},
                ),
            )
        for name, target in ALIAS_DOMAINS.items():
            alias_domains.create(
                uow,
                OPERATOR,
                parse(
                    AliasDomainCreate,
                    {
                        "alias_domain": name,
                        "target_domain": target,
                        "active": name != INACTIVE_ALIAS_DOMAIN,
                    },
                ),
            )
        for username in ADMINS:
            superadmin = username in SUPERADMINS
            admins.create(
                uow,
                OPERATOR,
                parse(
                    AdminCreate,
                    {
                        "username": username,
                        "role": Role.SUPERADMIN if superadmin else Role.DOMAIN_ADMIN,
                        "domains": [] if superadmin else ["d01.example"],
                    },
                ),
                password=PASSWORD,
            )
        session = uow.session
        session.execute(
            update(Mailbox).where(Mailbox.address.in_(INACTIVE_MAILBOXES)).values(active=False)
        )
        session.execute(
            update(Mailbox).where(Mailbox.address == REMOVED_MAILBOX).values(deleted_at=T)
        )
        session.execute(
            update(AliasTarget)
            .where(
                AliasTarget.address == HALF_ACTIVE_ALIAS, AliasTarget.target == "m07@d01.example"
            )
            .values(active=False)
        )
        session.execute(update(Admin).where(Admin.username == INACTIVE_ADMIN).values(active=False))
        created = {
            "domains": _stamped(uow, Domain, Domain.name, DOMAINS),
            "mailboxes": _stamped(uow, Mailbox, Mailbox.address, MAILBOXES),
        }
        uow.finish()
    return Catalog(created=created)


Fetch = Callable[..., Page[Any]]


@dataclass(frozen=True)
class Listing:
    """One list service, its allowed sorts and how to read an item's key."""

    fetch: Fetch
    sorts: tuple[str, ...]
    key: Callable[[Any], str]
    keys: list[str]


LISTINGS = {
    "domains": Listing(domains.list_domains, domains.DOMAIN_SORTS, lambda d: d.name, DOMAINS),
    "mailboxes": Listing(
        mailboxes.list_mailboxes,
        mailboxes.MAILBOX_SORTS,
        lambda m: m.address,
        [a for a in MAILBOXES if a != REMOVED_MAILBOX],
    ),
    "aliases": Listing(
        aliases.list_aliases, aliases.ALIAS_SORTS, lambda a: a.address, list(ALIAS_TARGETS)
    ),
    "alias_domains": Listing(
        alias_domains.list_alias_domains,
        alias_domains.ALIAS_DOMAIN_SORTS,
        lambda a: a.alias_domain,
        list(ALIAS_DOMAINS),
    ),
    "admins": Listing(admins.list_admins, admins.ADMIN_SORTS, lambda a: a.username, ADMINS),
}


def walk(fetch: Callable[[str | None], Page[Any]], limit: int) -> list[Any]:
    """Every item, page by page, checking that each page is full but the last."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        page = fetch(cursor)
        items += page.items
        if page.next_cursor is None:
            assert len(page.items) <= limit
            return items
        assert len(page.items) == limit
        cursor = page.next_cursor
    raise AssertionError("the listing never ended")


def expected_order(keys: list[str], created: dict[str, datetime] | None, sort: str) -> list[str]:
    by_time = sort.lstrip("-") == "created_at"
    assert created is not None or not by_time
    ordered = sorted(keys, key=lambda k: (created[k], k) if by_time and created else (k,))
    return ordered[::-1] if sort.startswith("-") else ordered


def test_sorts_are_offered_in_both_directions() -> None:
    assert mailboxes.MAILBOX_SORTS == ("address", "-address", "created_at", "-created_at")
    assert domains.DOMAIN_SORTS == ("name", "-name", "created_at", "-created_at")
    assert aliases.ALIAS_SORTS == ("address", "-address")
    assert alias_domains.ALIAS_DOMAIN_SORTS == ("alias_domain", "-alias_domain")
    assert admins.ADMIN_SORTS == ("username", "-username")


@pytest.mark.parametrize("name", list(LISTINGS))
def test_every_sort_walks_every_row_once_in_order(
    uow: UnitOfWork, catalog: Catalog, name: str
) -> None:
    listing = LISTINGS[name]
    for sort in listing.sorts:
        for limit in (1, 3):
            items = walk(
                lambda cursor, sort=sort, limit=limit: listing.fetch(
                    uow, OPERATOR, sort=sort, limit=limit, after=cursor
                ),
                limit,
            )
            keys = [listing.key(item) for item in items]
            expected = expected_order(listing.keys, catalog.created.get(name), sort)
            assert keys == expected, (sort, limit)


@pytest.mark.parametrize("name", list(LISTINGS))
def test_the_default_order_is_the_natural_key_with_raw_key_cursors(
    uow: UnitOfWork, catalog: Catalog, name: str
) -> None:
    listing = LISTINGS[name]
    first = listing.fetch(uow, OPERATOR, limit=2)
    keys = sorted(listing.keys)
    assert [listing.key(item) for item in first.items] == keys[:2]
    # Natural-key cursors are the key itself: what `--after KEY` has always taken.
    assert first.next_cursor == keys[1]
    descending = listing.fetch(uow, OPERATOR, sort=listing.sorts[1], limit=2, after=keys[3])
    assert [listing.key(item) for item in descending.items] == [keys[2], keys[1]]


def test_creation_time_cursors_are_opaque_url_safe_and_keep_microseconds(
    uow: UnitOfWork, catalog: Catalog
) -> None:
    # Rows at T and T + 1 µs sit on either side of the first page's last row: a cursor that
    # dropped the microseconds would repeat or skip one of them.
    page = mailboxes.list_mailboxes(uow, OPERATOR, sort="created_at", limit=4)
    assert page.next_cursor is not None
    assert re.fullmatch(r"~[A-Za-z0-9_-]+", page.next_cursor)
    following = mailboxes.list_mailboxes(
        uow, OPERATOR, sort="created_at", limit=4, after=page.next_cursor
    )
    created = catalog.created["mailboxes"]
    assert [created[m.address] for m in page.items] == [
        T - timedelta(seconds=1),
        T,
        T,
        T,
    ]
    assert created[following.items[0].address] == T
    assert [m.created_at for m in following.items] == [created[m.address] for m in following.items]


def test_a_cursor_made_for_another_sort_is_refused(uow: UnitOfWork, catalog: Catalog) -> None:
    for made_for, used_for in [
        ("created_at", "-created_at"),
        ("-created_at", "created_at"),
        ("created_at", "address"),
        ("created_at", "-address"),
    ]:
        cursor = mailboxes.list_mailboxes(uow, OPERATOR, sort=made_for, limit=2).next_cursor
        assert cursor is not None
        with pytest.raises(ValidationError) as refused:
            mailboxes.list_mailboxes(uow, OPERATOR, sort=used_for, after=cursor)
        issue = refused.value.issues[0]
        assert (issue.field, issue.rule) == ("cursor", "invalid_cursor"), (made_for, used_for)


def test_an_opaque_cursor_is_refused_by_lists_of_natural_keys(
    uow: UnitOfWork, catalog: Catalog
) -> None:
    cursor = domains.list_domains(uow, OPERATOR, sort="-created_at", limit=2).next_cursor
    assert cursor is not None
    for listing in LISTINGS.values():
        with pytest.raises(ValidationError) as refused:
            listing.fetch(uow, OPERATOR, after=cursor)
        assert refused.value.issues[0].field == "cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        "m01@d01.example",  # a raw key: not a cursor of a creation-time sort
        "~",
        "~not base64!",
        "~e30",  # {}
        "~eyJzb3J0IjoiY3JlYXRlZF9hdCIsImFmdGVyIjpbMSwyXX0",  # after: [1, 2]
        # A naive moment: the cursor must say it is UTC.
        "~eyJzb3J0IjoiY3JlYXRlZF9hdCIsImFmdGVyIjpbIjIwMjYtMDMtMDRUMDU6MDY6MDciLCJ4Il19",
        "~eyJzb3J0IjoiY3JlYXRlZF9hdCIsImFmdGVyIjpbIjIwMjYtMDMtMDRUMDU6MDY6MDcrMDA6MDAiXX0",
        "~" + "A" * 4000,
    ],
)
def test_a_malformed_cursor_is_refused(uow: UnitOfWork, cursor: str) -> None:
    with pytest.raises(ValidationError) as refused:
        mailboxes.list_mailboxes(uow, OPERATOR, sort="created_at", after=cursor)
    assert (refused.value.issues[0].field, refused.value.issues[0].rule) == (
        "cursor",
        "invalid_cursor",
    )


def test_a_natural_key_cursor_that_is_no_key_is_refused_as_a_cursor(uow: UnitOfWork) -> None:
    for sort in ("name", "-name"):
        with pytest.raises(ValidationError) as refused:
            domains.list_domains(uow, OPERATOR, sort=sort, after="not a domain")
        issue = refused.value.issues[0]
        assert (issue.field, issue.rule) == ("cursor", "invalid_cursor"), sort


@pytest.mark.parametrize("name", list(LISTINGS))
def test_an_unknown_sort_is_refused_naming_the_allowed_ones(uow: UnitOfWork, name: str) -> None:
    listing = LISTINGS[name]
    for sort in ["password_hash", "", "-", "--" + listing.sorts[0], listing.sorts[0].upper(), "id"]:
        with pytest.raises(ValidationError) as refused:
            listing.fetch(uow, OPERATOR, sort=sort)
        issue = refused.value.issues[0]
        assert (issue.field, issue.rule) == ("sort", "unknown_sort"), sort
        assert issue.message.endswith(", ".join(listing.sorts))
    if "created_at" not in listing.sorts:
        with pytest.raises(ValidationError, match="unknown_sort"):
            listing.fetch(uow, OPERATOR, sort="-created_at")


def keys_of(
    fetch: Fetch, uow: UnitOfWork, actor: Actor, key: Callable[[Any], str], **kw: Any
) -> list[str]:
    return [key(item) for item in walk(lambda c: fetch(uow, actor, after=c, limit=2, **kw), 2)]


def test_domain_filters_keep_the_sort(uow: UnitOfWork, catalog: Catalog) -> None:
    created = catalog.created["domains"]
    inactive = keys_of(
        domains.list_domains, uow, OPERATOR, lambda d: d.name, active=False, sort="-created_at"
    )
    assert inactive == expected_order(sorted(INACTIVE_DOMAINS), created, "-created_at")
    found = keys_of(domains.list_domains, uow, OPERATOR, lambda d: d.name, search="0", sort="-name")
    assert found == sorted(DOMAINS, reverse=True)


def test_mailbox_filters_keep_the_sort(uow: UnitOfWork, catalog: Catalog) -> None:
    created = catalog.created["mailboxes"]

    def listed(**filters: Any) -> list[str]:
        return keys_of(mailboxes.list_mailboxes, uow, OPERATOR, lambda m: m.address, **filters)

    live = [a for a in MAILBOXES if a != REMOVED_MAILBOX]
    in_d02 = [a for a in live if a.endswith("@d02.example")]
    assert listed(domain="d02.example", sort="created_at") == expected_order(
        in_d02, created, "created_at"
    )
    assert listed(active=False, sort="-created_at") == expected_order(
        sorted(INACTIVE_MAILBOXES), created, "-created_at"
    )
    assert listed(search="m1", sort="-address") == ["m11@d02.example", "m10@d02.example"]
    assert listed(removed=True, sort="-created_at") == [REMOVED_MAILBOX]


def test_alias_filters_count_an_alias_active_while_any_of_its_rows_is(
    uow: UnitOfWork, catalog: Catalog
) -> None:
    def listed(**filters: Any) -> list[str]:
        return keys_of(aliases.list_aliases, uow, OPERATOR, lambda a: a.address, **filters)

    assert listed(active=False) == [INACTIVE_ALIAS]
    assert listed(active=True, sort="-address") == sorted(
        set(ALIAS_TARGETS) - {INACTIVE_ALIAS}, reverse=True
    )
    assert HALF_ACTIVE_ALIAS in listed(active=True)
    # The inactive row of the half-active alias matches the search: the alias is still active.
    assert listed(search="m07@", active=True) == [HALF_ACTIVE_ALIAS]
    assert listed(search="m07@", active=False) == []
    assert listed(domain="d02.example", sort="-address") == ["a07@d02.example", "a04@d02.example"]


def test_alias_domain_filters(uow: UnitOfWork, catalog: Catalog) -> None:
    def listed(**filters: Any) -> list[str]:
        return keys_of(
            alias_domains.list_alias_domains, uow, OPERATOR, lambda a: a.alias_domain, **filters
        )

    assert listed(active=False) == [INACTIVE_ALIAS_DOMAIN]
    assert listed(active=True, sort="-alias_domain") == sorted(
        set(ALIAS_DOMAINS) - {INACTIVE_ALIAS_DOMAIN}, reverse=True
    )
    assert listed(search="AL03") == ["al03.example"]
    # The search also finds alias domains by their target's name.
    assert listed(search="d02.ex", sort="-alias_domain") == [
        "al05.example",
        "al03.example",
        "al01.example",
    ]
    assert listed(search="d02.ex", active=False) == [INACTIVE_ALIAS_DOMAIN]
    assert listed(target_domain="d01.example", sort="-alias_domain") == sorted(
        (name for name, target in ALIAS_DOMAINS.items() if target == "d01.example"), reverse=True
    )


def test_admin_filters(uow: UnitOfWork, catalog: Catalog) -> None:
    def listed(**filters: Any) -> list[str]:
        return keys_of(admins.list_admins, uow, OPERATOR, lambda a: a.username, **filters)

    assert listed(active=False) == [INACTIVE_ADMIN]
    assert listed(role=Role.SUPERADMIN, sort="-username") == sorted(SUPERADMINS, reverse=True)
    assert listed(role=Role.DOMAIN_ADMIN, active=True) == sorted(
        set(ADMINS) - SUPERADMINS - {INACTIVE_ADMIN}
    )


def test_a_domain_admin_sees_only_its_domains_in_every_sort(
    make_uow: UowFactory, world: World
) -> None:
    """alice manages a.example; b.example's rows are created in between, at the same moments."""
    with make_uow() as uow:
        for index, address in enumerate(
            ["m1@a.example", "m1@b.example", "m2@b.example", "m2@a.example"]
        ):
            mailboxes.create(
                uow, OPERATOR, parse(MailboxCreate, {"address": address}), password=PASSWORD
            )
            uow.session.execute(
                update(Mailbox).where(Mailbox.address == address).values(created_at=STAMPS[index])
            )
        for name, target in [("xa.example", "a.example"), ("xb.example", "b.example")]:
            alias_domains.create(
                uow,
                OPERATOR,
                parse(AliasDomainCreate, {"alias_domain": name, "target_domain": target}),
            )
        uow.finish()
    alice = world.domain_admin
    with make_uow() as uow:
        for name, listing in LISTINGS.items():
            for sort in listing.sorts:
                items = walk(
                    lambda cursor, sort=sort, listing=listing: listing.fetch(
                        uow, alice, sort=sort, limit=1, after=cursor
                    ),
                    1,
                )
                assert items, (name, sort)
                if name == "domains":
                    assert {d.name for d in items} == {"a.example"}
                elif name == "admins":
                    assert [a.username for a in items] == ["alice"]
                elif name == "alias_domains":
                    assert {a.target_domain for a in items} == {"a.example"}, sort
                else:
                    assert {item.domain for item in items} == {"a.example"}, (name, sort)
        everything = walk(
            lambda c: mailboxes.list_mailboxes(uow, alice, sort="-created_at", limit=1, after=c), 1
        )
        assert [m.address for m in everything] == [
            m.address
            for m in mailboxes.list_mailboxes(
                uow, OPERATOR, domain="a.example", sort="-created_at", limit=50
            ).items
        ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_every_sort_is_served_by_an_index_on_postgresql(
    backend: str, connection: Connection, uow: UnitOfWork, catalog: Catalog
) -> None:
    """With sorting priced out, a plan still sorts only if no index gives the order."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "LIMIT" in statement:
            statements.append((statement, parameters))

    connection.exec_driver_sql("SET LOCAL enable_sort = off")
    for name, listing in LISTINGS.items():
        for sort in listing.sorts:
            first = listing.fetch(uow, OPERATOR, sort=sort, limit=2)
            filtered = {"domain": "d01.example"} if name == "mailboxes" else {}
            for after in (None, first.next_cursor):
                statements.clear()
                event.listen(connection, "before_cursor_execute", capture)
                try:
                    listing.fetch(uow, OPERATOR, sort=sort, limit=2, after=after, **filtered)
                finally:
                    event.remove(connection, "before_cursor_execute", capture)
                statement, parameters = statements[-1]
                plan = "\n".join(
                    row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)
                )
                assert "Sort" not in plan, f"{name} {sort} after={after}:\n{plan}"
                assert "Index" in plan, f"{name} {sort} after={after}:\n{plan}"
