"""Quota usage as Dovecot counts it: quota_clone writes table quota_usage through dict-sql.

The rows are inserted by the tests here, standing in for Dovecot (the e2e suite proves that
Dovecot writes them); mailwarden only reads them, with one outer join per query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, event

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import QuotaUsage
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

operator = Actor.local_operator()
MIB = 1024**2


def report(make_uow: UowFactory, usage: dict[str, tuple[int, int]]) -> None:
    """Write usage rows the way Dovecot's quota_clone does: keyed by the user name."""
    with make_uow() as uow:
        uow.session.add_all(
            QuotaUsage(username=username, bytes=size, messages=count)
            for username, (size, count) in usage.items()
        )
        uow.finish()


@pytest.fixture
def statements(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement the test's connection runs, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def test_get_shows_the_usage_dovecot_reported(make_uow: UowFactory, world: World) -> None:
    report(make_uow, {"user1@a.example": (int(1.5 * MIB), 42)})
    with make_uow() as uow:
        mailbox = mailboxes.get(uow, operator, "user1@a.example")
    assert (mailbox.quota_used_bytes, mailbox.quota_used_messages) == (int(1.5 * MIB), 42)


def test_usage_is_none_until_dovecot_reports(make_uow: UowFactory, world: World) -> None:
    with make_uow() as uow:
        mailbox = mailboxes.get(uow, operator, "user1@a.example")
        data = parse(MailboxCreate, {"address": "fresh@b.example"})
        created = mailboxes.create(uow, operator, data, password=PASSWORD)
    assert (mailbox.quota_used_bytes, mailbox.quota_used_messages) == (None, None)
    assert (created.quota_used_bytes, created.quota_used_messages) == (None, None)


def test_an_empty_mailbox_reports_zero_not_none(make_uow: UowFactory, world: World) -> None:
    report(make_uow, {"user1@a.example": (0, 0)})
    with make_uow() as uow:
        mailbox = mailboxes.get(uow, operator, "user1@a.example")
    assert (mailbox.quota_used_bytes, mailbox.quota_used_messages) == (0, 0)


def test_list_fills_usage_per_mailbox_in_one_query(
    make_uow: UowFactory, world: World, statements: list[str]
) -> None:
    report(
        make_uow,
        {
            "user1@a.example": (10, 1),
            "user1@b.example": (20, 2),
            # A row without a mailbox (written before a purge) changes nothing.
            "gone@a.example": (30, 3),
        },
    )
    statements.clear()
    with make_uow() as uow:
        listed = mailboxes.list_mailboxes(uow, operator).items
    usage = {m.address: (m.quota_used_bytes, m.quota_used_messages) for m in listed}
    assert usage == {
        "postmaster@a.example": (None, None),
        "user1@a.example": (10, 1),
        "user1@b.example": (20, 2),
    }
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects
    assert "quota_usage" in selects[0] and "LEFT OUTER JOIN" in selects[0].upper()


def test_get_reads_mailbox_and_usage_in_one_query(
    make_uow: UowFactory, world: World, statements: list[str]
) -> None:
    report(make_uow, {"user1@a.example": (10, 1)})
    statements.clear()
    with make_uow() as uow:
        mailboxes.get(uow, operator, "user1@a.example")
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "quota_usage" in selects[0], selects


def test_edits_removed_and_listed_removed_mailboxes_keep_their_usage(
    make_uow: UowFactory, world: World
) -> None:
    report(make_uow, {"user1@a.example": (10, 1)})
    with make_uow() as uow:
        edited = mailboxes.update(uow, operator, "user1@a.example", MailboxUpdate(name="U"))
        password = mailboxes.set_password(uow, operator, "user1@a.example", "a new secret")
        removed = mailboxes.remove(uow, operator, "user1@a.example")
        listed = mailboxes.list_mailboxes(uow, operator, removed=True).items
        uow.finish()
    for mailbox in (edited, password, removed, *listed):
        assert (mailbox.quota_used_bytes, mailbox.quota_used_messages) == (10, 1)


def test_a_domain_admin_sees_usage_only_of_its_own_mailboxes(
    make_uow: UowFactory, world: World
) -> None:
    report(make_uow, {"user1@a.example": (10, 1), "user1@b.example": (20, 2)})
    with make_uow() as uow:
        listed = mailboxes.list_mailboxes(uow, world.domain_admin).items
    assert {m.address: m.quota_used_bytes for m in listed} == {
        "postmaster@a.example": None,
        "user1@a.example": 10,
    }
