"""On PostgreSQL a mailbox search of 3 characters or more finds its matches first (through the
trigram indexes of migration 0006) and sorts only those; it does not walk the address index
testing every row, which took 40-100 ms at 100,000 mailboxes (see bench/api.py). SQLite scans
the table once and sorts the matches."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, inspect

from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from tests.factories.world import World

OPERATOR = Actor.local_operator(Channel.SYSTEM)


def _page_query(connection: Connection, uow: UnitOfWork, search: str) -> tuple[str, Any]:
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "LIMIT" in statement and "mailboxes" in statement:
            captured.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        found = mailboxes.list_mailboxes(uow, OPERATOR, search=search, limit=50)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    assert [m.address for m in found.items] == ["user1@a.example", "user1@b.example"]
    [query] = captured
    return query


def _plan(connection: Connection, query: tuple[str, Any]) -> str:
    statement, parameters = query
    # Tiny test tables are cheapest to read whole; price that out to see the index choice.
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_the_trigram_indexes_exist_on_postgresql(backend: str, engine: Engine) -> None:
    indexes = {index["name"] for index in inspect(engine).get_indexes("mailboxes")}
    assert {"ix_mailboxes_address_trgm", "ix_mailboxes_name_trgm"} <= indexes


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_a_search_sorts_its_matches_instead_of_walking_the_address_index(
    backend: str, connection: Connection, uow: UnitOfWork, world: World
) -> None:
    plan = _plan(connection, _page_query(connection, uow, "user1"))
    assert "Sort Key: (((mailboxes.address)::text || ''::text))" in plan, plan
    assert "uq_mailboxes_address" not in plan, plan


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_a_two_character_search_keeps_the_ordered_walk(
    backend: str, connection: Connection, uow: UnitOfWork, world: World
) -> None:
    # Trigrams cannot look up two characters; for such common terms the walk stops early.
    statement, _ = _page_query(connection, uow, "r1")
    assert "ORDER BY mailboxes.address ASC" in statement, statement


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True, scope="session")
def test_on_sqlite_a_search_orders_so_that_no_index_walk_can_serve_it(
    backend: str, connection: Connection, uow: UnitOfWork, world: World
) -> None:
    # With the address index out of the running, SQLite reads the table once (about 12 ms at
    # 100,000 mailboxes) instead of one row lookup per index entry (about 200 ms for a rare
    # term): see bench/web.py. Which plan it picks depends on table statistics, so the order
    # term is what is checked.
    statement, _ = _page_query(connection, uow, "user1")
    assert "ORDER BY mailboxes.address || ? ASC" in statement, statement
    short, _ = _page_query(connection, uow, "us")
    assert "ORDER BY mailboxes.address ASC" in short, short
