"""Forwarding through the service: target rules, keep-copy, audit, dry run, scope, follow-up."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, text

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate
from mailwarden.audit import service as audit
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.forwarding import service as forwards
from mailwarden.forwarding.schemas import ForwardPublic, ForwardSet
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from mailwarden.settings import Settings
from mailwarden.stack.sieve import sync
from mailwarden.stack.sieve.script import SIEVE_MAX_REDIRECTS
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.support.managesieve_server import closed_port

OPERATOR = Actor.local_operator(Channel.SYSTEM)
ADDRESS = "user1@a.example"
MAX_TARGETS = 3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The suite's settings with a small target limit, so the limit is cheap to reach."""
    return Settings(
        data_dir=tmp_path, password_scheme="SHA256-CRYPT", max_alias_targets=MAX_TARGETS
    )


def set_forward(uow: UnitOfWork, actor: Actor, targets: list[str], **fields: Any) -> Any:
    address = fields.pop("address", ADDRESS)
    values: dict[str, Any] = {"targets": targets} | fields
    return forwards.set_forward(uow, actor, address, parse(ForwardSet, values))


def stored(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT m.address, f.enabled, f.targets, f.keep_copy FROM forwards f "
            "JOIN mailboxes m ON m.id = f.mailbox_id ORDER BY m.address"
        )
    )
    # JSON comes back as text on some backends and decoded on others; compare decoded.
    return [
        (
            address,
            bool(enabled),
            json.loads(targets) if isinstance(targets, str) else targets,
            bool(keep),
        )
        for address, enabled, targets, keep in rows
    ]


def audit_rows(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


def entries(uow: UnitOfWork) -> list[AuditEntryPublic]:
    page = audit.list_entries(uow, OPERATOR, object_type="forward", object_key=ADDRESS)
    return list(reversed(page.items))


def test_it_sets_shows_and_disables_forwarding(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        assert forwards.get_forward(uow, world.domain_admin, ADDRESS) == ForwardPublic(
            address=ADDRESS, enabled=False, targets=[], keep_copy=True, updated_at=None
        )
    with make_uow() as uow:
        forward = set_forward(
            uow,
            world.domain_admin,
            ["Zed@Elsewhere.example", "alice+mail@b.example", "postmaster@a.example"],
            address="USER1@a.example",
        )
        uow.finish()
    # Normalized, in the order given; a new forwarding keeps a copy unless told otherwise.
    assert forward.address == ADDRESS
    assert forward.targets == [
        "zed@elsewhere.example",
        "alice+mail@b.example",
        "postmaster@a.example",
    ]
    assert (forward.enabled, forward.keep_copy) == (True, True)
    with make_uow() as uow:
        assert forwards.get_forward(uow, world.domain_admin, ADDRESS) == forward
    with make_uow() as uow:
        disabled = forwards.disable_forward(uow, world.domain_admin, ADDRESS)
        uow.finish()
    assert disabled.enabled is False
    assert disabled.targets == forward.targets


def test_keep_copy_is_kept_unless_given(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["a@elsewhere.example"], keep_copy=False)
        uow.finish()
    assert stored(connection) == [(ADDRESS, True, ["a@elsewhere.example"], False)]
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["b@elsewhere.example"])
        uow.finish()
    assert stored(connection) == [(ADDRESS, True, ["b@elsewhere.example"], False)]
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["b@elsewhere.example"], keep_copy=True)
        uow.finish()
    assert stored(connection) == [(ADDRESS, True, ["b@elsewhere.example"], True)]


@pytest.mark.parametrize(
    ("targets", "field", "rule"),
    [
        ([], "targets", "required"),
        (["a@x.example"] * (MAX_TARGETS + 1), "targets", "too_many_targets"),
        (["a@x.example", "A@X.example"], "targets[1]", "duplicate"),
        (["user1@a.example"], "targets[0]", "self_target"),
        (["ok@x.example", "User1@A.Example"], "targets[1]", "self_target"),
        (["|/usr/bin/evil"], "targets[0]", "pipe_target"),
        (['" |evil"'], "targets[0]", "pipe_target"),
        (["/var/mail/root"], "targets[0]", "file_target"),
        ([":include:/etc/passwd"], "targets[0]", "include_target"),
        (["root"], "targets[0]", "unqualified_target"),
        (["a@b@c.example"], "targets[0]", "at_sign"),
        (["a b@c.example"], "targets[0]", "whitespace"),
        (["a@c.example\nredirect"], "targets[0]", "whitespace"),
        (['a"b@c.example'], "targets[0]", "invalid_character"),
        (["a\\b@c.example"], "targets[0]", "invalid_character"),
        (["user%other@c.example"], "targets[0]", "routing_character"),
        (["a@[127.0.0.1]"], "targets[0]", "domain_literal"),
        (["a@localhost"], "targets[0]", "reserved_name"),
        ([""], "targets[0]", "required"),
    ],
)
def test_it_refuses_bad_targets_and_changes_nothing(
    targets: list[str],
    field: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["before@elsewhere.example"])
        uow.finish()
    before, audit_before = stored(connection), audit_rows(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as raised:
        set_forward(uow, world.domain_admin, targets)
    assert (raised.value.field, raised.value.rule) == (field, rule)
    assert stored(connection) == before
    assert audit_rows(connection) == audit_before


def test_it_reports_every_bad_target_at_once(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as raised:
        set_forward(uow, world.domain_admin, ["ok@x.example", "|cmd", "ok@x.example"])
    assert [(i.field, i.rule) for i in raised.value.issues] == [
        ("targets[1]", "pipe_target"),
        ("targets[2]", "duplicate"),
    ]


def test_it_accepts_exactly_the_target_limit(world: World, make_uow: UowFactory) -> None:
    targets = [f"t{n}@x.example" for n in range(MAX_TARGETS)]
    with make_uow() as uow:
        assert set_forward(uow, world.domain_admin, targets).targets == targets


def test_it_never_stores_more_targets_than_sieve_runs(
    world: World, make_uow: UowFactory, tmp_path: Path
) -> None:
    targets = [f"t{n}@x.example" for n in range(SIEVE_MAX_REDIRECTS + 1)]
    with make_uow() as uow:
        uow.settings = Settings(data_dir=tmp_path, max_alias_targets=200)
        assert set_forward(uow, world.domain_admin, targets[:-1]).targets == targets[:-1]
        with pytest.raises(ValidationError) as raised:
            set_forward(uow, world.domain_admin, targets)
    assert (raised.value.field, raised.value.rule) == ("targets", "too_many_targets")
    assert "at most 4 (the Sieve server runs at most 4 redirects per message)" in str(raised.value)


def test_every_change_is_audited_and_a_no_op_is_not(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["a@x.example"])
        set_forward(uow, world.domain_admin, ["a@x.example"])
        set_forward(uow, world.domain_admin, ["a@x.example", "b@x.example"], keep_copy=False)
        forwards.disable_forward(uow, world.domain_admin, ADDRESS)
        forwards.disable_forward(uow, world.domain_admin, ADDRESS)
        uow.finish()
    with make_uow() as uow:
        created, changed, disabled = entries(uow)
    assert (created.action, created.actor, created.domain) == (
        "forward.create",
        "alice",
        "a.example",
    )
    assert created.after == {"enabled": True, "targets": ["a@x.example"], "keep_copy": True}
    assert changed.before == created.after
    assert changed.after == {
        "enabled": True,
        "targets": ["a@x.example", "b@x.example"],
        "keep_copy": False,
    }
    assert disabled.action == "forward.update"
    assert (disabled.after or {})["enabled"] is False


def test_a_dry_run_returns_the_plan_and_changes_nothing(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    audit_before = audit_rows(connection)
    with make_uow(dry_run=True) as uow:
        set_forward(uow, world.domain_admin, ["a@x.example"])
        plan = uow.finish()
    assert [(c.kind, c.object_type, c.key, c.changes) for c in plan] == [
        (
            ChangeKind.CREATE,
            "forward",
            ADDRESS,
            {"enabled": True, "targets": ["a@x.example"], "keep_copy": True},
        )
    ]
    assert stored(connection) == []
    assert audit_rows(connection) == audit_before


def test_another_domains_admin_finds_no_such_mailbox(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["a@x.example"])
        uow.finish()
    before = stored(connection)
    for call in (
        lambda uow: forwards.get_forward(uow, world.outsider, ADDRESS),
        lambda uow: set_forward(uow, world.outsider, ["attacker@b.example"]),
        lambda uow: forwards.disable_forward(uow, world.outsider, ADDRESS),
    ):
        with make_uow() as uow, pytest.raises(NotFound):
            call(uow)
    assert stored(connection) == before


def test_a_read_only_actor_reads_but_changes_nothing(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    reader = dataclasses.replace(world.domain_admin, read_only=True)
    with make_uow() as uow:
        assert forwards.get_forward(uow, reader, ADDRESS).enabled is False
    for call in (
        lambda uow: set_forward(uow, reader, ["a@x.example"]),
        lambda uow: forwards.disable_forward(uow, reader, ADDRESS),
    ):
        with make_uow() as uow, pytest.raises(PermissionDenied):
            call(uow)
    assert stored(connection) == []


def test_domain_admin_cannot_forward_a_superadmins_mail(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        admins.create(
            uow,
            OPERATOR,
            parse(AdminCreate, {"username": "boss@a.example", "role": Role.SUPERADMIN}),
            password=PASSWORD,
        )
        mailboxes.create(
            uow, OPERATOR, parse(MailboxCreate, {"address": "boss@a.example"}), password=PASSWORD
        )
        uow.finish()
    with make_uow() as uow, pytest.raises(PermissionDenied):
        set_forward(uow, world.domain_admin, ["alice@elsewhere.example"], address="boss@a.example")
    assert stored(connection) == []


def test_a_removed_mailbox_has_no_forwarding(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    connection.execute(
        text("UPDATE mailboxes SET deleted_at = CURRENT_TIMESTAMP WHERE address = :a"),
        {"a": ADDRESS},
    )
    for call in (
        lambda uow: forwards.get_forward(uow, world.superadmin, ADDRESS),
        lambda uow: set_forward(uow, world.superadmin, ["a@x.example"]),
        lambda uow: forwards.disable_forward(uow, world.superadmin, ADDRESS),
    ):
        with make_uow() as uow, pytest.raises(NotFound):
            call(uow)


def test_the_script_follows_the_stored_rows(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        set_forward(uow, world.domain_admin, ["a@x.example", "b@x.example"], keep_copy=False)
        uow.finish()
    with make_uow() as uow:
        mailbox_id = uow.session.execute(
            text("SELECT id FROM mailboxes WHERE address = :a"), {"a": ADDRESS}
        ).scalar_one()
        script = sync.script_for_mailbox(uow.session, mailbox_id)
    assert script is not None
    assert 'redirect "a@x.example";\r\nredirect "b@x.example";\r\n' in script
    assert "require" not in script
    with make_uow() as uow:
        forwards.disable_forward(uow, world.domain_admin, ADDRESS)
        uow.finish()
        assert sync.script_for_mailbox(uow.session, mailbox_id) is None


def test_an_unreachable_server_leaves_the_change_stored_and_reports_it(
    world: World, make_uow: UowFactory, connection: Connection, tmp_path: Path
) -> None:
    with make_uow() as uow:
        uow.settings = Settings(
            data_dir=tmp_path,
            managesieve_host="127.0.0.1",
            managesieve_port=closed_port(),
            sieve_master_password=SecretStr("never shown anywhere"),
        )
        set_forward(uow, world.domain_admin, ["a@x.example"])
        uow.finish()
    assert stored(connection) == [(ADDRESS, True, ["a@x.example"], True)]
    [failure] = uow.follow_up_failures
    assert "connection refused" in failure.reason
    assert "never shown anywhere" not in str(failure)
