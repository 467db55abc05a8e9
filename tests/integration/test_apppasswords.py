"""App passwords through the service: the password text, rules, limit, audit, scope, revoke.

That Dovecot and Postfix accept them is proven in tests/e2e/test_app_passwords.py; the passdb
query on every backend in test_dovecot_queries.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords import tokens
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.passwords import Scheme, scheme_of, verify_password
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.stack.dovecot import sessions
from tests.conftest import UowFactory
from tests.factories.world import World

OPERATOR = Actor.local_operator(Channel.SYSTEM)
ADDRESS = "user1@a.example"


def create(uow: UnitOfWork, actor: Actor, name: str, address: str = ADDRESS) -> Any:
    return apppasswords.create(uow, actor, address, AppPasswordCreate(name=name))


def mailbox_user(uow: UnitOfWork, address: str) -> Actor:
    """The owner of `address`, as the portal builds it after a login."""
    mailbox_id, domain_id = uow.session.execute(
        text("SELECT id, domain_id FROM mailboxes WHERE address = :a"), {"a": address}
    ).one()
    return Actor(
        username=address,
        role=Role.MAILBOX_USER,
        domain_ids=frozenset({domain_id}),
        channel=Channel.WEB,
        mailbox_id=mailbox_id,
    )


def stored(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT m.address, a.name, a.public_id, a.password_hash FROM app_passwords a "
            "JOIN mailboxes m ON m.id = a.mailbox_id ORDER BY m.address, a.name"
        )
    )
    return [tuple(row) for row in rows]


def test_create_shows_the_password_once_and_stores_its_hash(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        created = create(uow, world.domain_admin, "phone")
        uow.finish()
    assert tokens.PUBLIC_ID.fullmatch(created.id)
    public_id, separator, secret = created.password.partition("-")
    assert (public_id, separator) == (created.id, "-")
    # 128 random bits, in characters that pass unquoted through IMAP LOGIN and SASL PLAIN.
    assert len(secret) == 26 and secret.isalnum() and secret == secret.lower()
    assert (created.address, created.name) == (ADDRESS, "phone")
    [(address, name, stored_id, stored_hash)] = stored(connection)
    assert (address, name, stored_id) == (ADDRESS, "phone", created.id)
    # The configured scheme (the suite's settings), verified over the whole text.
    assert scheme_of(stored_hash) == Scheme.SHA256_CRYPT
    assert verify_password(created.password, stored_hash)
    assert not verify_password(secret, stored_hash)


def test_every_password_and_id_is_new(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        made = [create(uow, OPERATOR, f"device {n}") for n in range(5)]
    assert len({item.id for item in made}) == len({item.password for item in made}) == 5


def test_audit_names_the_password_but_never_holds_it(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        created = create(uow, world.domain_admin, "phone")
        apppasswords.revoke(uow, world.domain_admin, ADDRESS, "phone")
        uow.finish()
    # Through the model: `before` is a reserved word in MariaDB.
    rows = connection.execute(
        select(
            AuditEntry.action,
            AuditEntry.object_type,
            AuditEntry.object_key,
            AuditEntry.domain,
            AuditEntry.actor,
            AuditEntry.before,
            AuditEntry.after,
        )
        .where(AuditEntry.object_type == "app_password")
        .order_by(AuditEntry.id)
    ).all()
    assert [row[:5] for row in rows] == [
        ("app_password.create", "app_password", ADDRESS, "a.example", "alice"),
        ("app_password.revoke", "app_password", ADDRESS, "a.example", "alice"),
    ]
    snapshot = {"name": "phone", "id": created.id}
    assert [rows[0][6], rows[1][5]] == [snapshot, snapshot]
    everything = " ".join(str(value) for row in rows for value in row)
    assert created.password.split("-")[1] not in everything and "{SHA" not in everything


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 101, "too_long"),
        ("tab\there", "control_character"),
        ("nul\x00", "control_character"),
    ],
)
def test_names_are_checked(
    name: str, rule: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, OPERATOR, name)
    assert (info.value.field, info.value.rule) == ("name", rule)
    assert stored(connection) == []


def test_a_name_is_unique_per_mailbox_only(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        create(uow, OPERATOR, "x" * 100)
        create(uow, OPERATOR, "phone")
        create(uow, OPERATOR, "phone", address="postmaster@a.example")
        with pytest.raises(Conflict) as info:
            create(uow, OPERATOR, "phone")
    assert (info.value.field, info.value.rule) == ("name", "duplicate")


def test_a_mailbox_has_at_most_fifty(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        for n in range(apppasswords.MAX_PER_MAILBOX):
            create(uow, OPERATOR, f"device {n:02}")
        with pytest.raises(LimitExceeded) as info:
            create(uow, OPERATOR, "one too many")
        # Another mailbox has its own allowance; a revoked one frees a place.
        create(uow, OPERATOR, "phone", address="postmaster@a.example")
        apppasswords.revoke(uow, OPERATOR, ADDRESS, "device 00")
        create(uow, OPERATOR, "one too many")
    assert (info.value.field, info.value.rule) == ("name", "too_many_app_passwords")


def test_list_pages_by_name_without_secrets(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        for name in ("tablet", "laptop", "phone"):
            create(uow, OPERATOR, name)
        create(uow, OPERATOR, "watch", address="postmaster@a.example")
        first = apppasswords.list_app_passwords(uow, world.domain_admin, ADDRESS, limit=2)
        rest = apppasswords.list_app_passwords(
            uow, world.domain_admin, ADDRESS, limit=2, after=first.next_cursor
        )
    assert [item.name for item in first.items] == ["laptop", "phone"]
    assert first.next_cursor == "phone"
    assert ([item.name for item in rest.items], rest.next_cursor) == (["tablet"], None)
    assert all("password" not in item.model_dump() for item in first.items + rest.items)


def test_list_refuses_a_limit_out_of_range(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apppasswords.list_app_passwords(uow, OPERATOR, ADDRESS, limit=0)
    assert info.value.field == "limit"


def test_revoke_by_name_then_by_id(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        phone = create(uow, OPERATOR, "phone")
        laptop = create(uow, OPERATOR, "laptop")
        apppasswords.revoke(uow, OPERATOR, ADDRESS, "phone")
        assert [row[1] for row in stored(connection)] == ["laptop"]
        apppasswords.revoke(uow, OPERATOR, ADDRESS, laptop.id)
        assert stored(connection) == []
        for gone in ("phone", phone.id, "never-was"):
            with pytest.raises(NotFound) as info:
                apppasswords.revoke(uow, OPERATOR, ADDRESS, gone)
            assert (info.value.kind, info.value.key) == ("app_password", gone)


def test_revoke_cannot_reach_another_mailboxs_password(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        other = create(uow, OPERATOR, "phone", address="postmaster@a.example")
        with pytest.raises(NotFound):
            apppasswords.revoke(uow, OPERATOR, ADDRESS, other.id)
        assert len(apppasswords.list_app_passwords(uow, OPERATOR, other.address).items) == 1


def test_revoke_ends_the_mailbox_sessions_after_commit(
    world: World, make_uow: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[str] = []
    monkeypatch.setattr(sessions, "end_sessions", lambda settings, mask: ended.append(mask))
    with make_uow(dry_run=True) as uow:
        create(uow, OPERATOR, "phone")
        apppasswords.revoke(uow, OPERATOR, ADDRESS, "phone")
        uow.finish()
    assert ended == []
    with make_uow() as uow:
        create(uow, OPERATOR, "phone")
        apppasswords.revoke(uow, OPERATOR, "User1@A.example", "phone")
        uow.finish()
    assert ended == [ADDRESS]


def test_a_mailbox_user_manages_its_own_app_passwords_only(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        owner = mailbox_user(uow, ADDRESS)
        created = create(uow, owner, "phone")
        assert [i.id for i in apppasswords.list_app_passwords(uow, owner, ADDRESS).items] == [
            created.id
        ]
        apppasswords.revoke(uow, owner, ADDRESS, "phone")
        for call in (
            lambda: create(uow, owner, "phone", address="postmaster@a.example"),
            lambda: apppasswords.list_app_passwords(uow, owner, "postmaster@a.example"),
            lambda: apppasswords.revoke(uow, owner, "postmaster@a.example", "phone"),
        ):
            with pytest.raises(PermissionDenied):
                call()
        # Another domain's mailbox is not even there for it.
        with pytest.raises(NotFound):
            create(uow, owner, "phone", address="user1@b.example")


def test_a_removed_mailbox_has_no_app_passwords_to_manage(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        create(uow, OPERATOR, "phone")
        mailboxes.remove(uow, OPERATOR, ADDRESS)
        for call in (
            lambda: create(uow, OPERATOR, "laptop"),
            lambda: apppasswords.list_app_passwords(uow, OPERATOR, ADDRESS),
            lambda: apppasswords.revoke(uow, OPERATOR, ADDRESS, "phone"),
        ):
            with pytest.raises(NotFound):
                call()


def test_input_schema_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        parse(AppPasswordCreate, {"name": "phone", "password_hash": "{PLAIN}x"})
    assert (info.value.field, info.value.rule) == ("password_hash", "extra_forbidden")


def test_a_name_shaped_like_an_id_is_refused(world: World, make_uow: UowFactory) -> None:
    # revoke() takes a name or an id; such a name could stand for another app password.
    with make_uow() as uow, pytest.raises(ValidationError) as refused:
        apppasswords.create(
            uow, OPERATOR, "user1@a.example", parse(AppPasswordCreate, {"name": "abcdefgh"})
        )
    assert refused.value.rule == "looks_like_id"
