"""Vacation auto-replies through the service: rules, audit, dry run, scope, and the follow-up.

The ManageSieve upload itself is proven against a real Dovecot in test_managesieve.py; here the
server is either not configured (store-only) or a closed port (the follow-up fails).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, text

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate
from mailwarden.audit import service as audit
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from mailwarden.settings import Settings
from mailwarden.vacation import service as vacations
from mailwarden.vacation.schemas import VacationPublic, VacationSet, decode_body, parse_date
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.support.managesieve_server import closed_port

OPERATOR = Actor.local_operator(Channel.SYSTEM)
ADDRESS = "user1@a.example"
SUBJECT = "Away until July"
BODY = "I am away.\nBack on 15 July.\n"


def set_vacation(uow: UnitOfWork, actor: Actor, address: str = ADDRESS, **fields: Any) -> Any:
    values: dict[str, Any] = {"subject": SUBJECT, "body": BODY} | fields
    return vacations.set_vacation(uow, actor, address, parse(VacationSet, values))


def stored(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT m.address, v.enabled, v.subject, v.body, v.starts_on, v.ends_on, "
            "v.interval_days FROM vacations v JOIN mailboxes m ON m.id = v.mailbox_id "
            "ORDER BY m.address"
        )
    )
    return [tuple(row) for row in rows]


def audit_rows(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


def entries(uow: UnitOfWork, address: str = ADDRESS) -> list[AuditEntryPublic]:
    page = audit.list_entries(uow, OPERATOR, object_type="vacation", object_key=address)
    return list(reversed(page.items))


# --- setting, showing, disabling ---------------------------------------------------------------


def test_it_sets_shows_and_disables_an_auto_reply(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        assert vacations.get_vacation(uow, world.domain_admin, ADDRESS) == VacationPublic(
            address=ADDRESS,
            enabled=False,
            subject=None,
            body=None,
            starts_on=None,
            ends_on=None,
            interval_days=None,
            updated_at=None,
        )
    with make_uow() as uow:
        created = set_vacation(
            uow,
            world.domain_admin,
            "User1@A.example",
            starts_on=date(2025, 7, 1),
            ends_on=date(2025, 7, 14),
            interval_days=3,
        )
        uow.finish()
    assert (created.address, created.enabled, created.subject, created.body) == (
        ADDRESS,
        True,
        SUBJECT,
        BODY,
    )
    assert (created.starts_on, created.ends_on, created.interval_days) == (
        date(2025, 7, 1),
        date(2025, 7, 14),
        3,
    )
    with make_uow() as uow:
        assert vacations.get_vacation(uow, world.domain_admin, ADDRESS) == created
    with make_uow() as uow:
        disabled = vacations.disable_vacation(uow, world.domain_admin, ADDRESS)
        uow.finish()
    # The text is kept for the next time.
    assert disabled.enabled is False
    assert (disabled.subject, disabled.body, disabled.interval_days) == (SUBJECT, BODY, 3)
    with make_uow() as uow:
        assert vacations.get_vacation(uow, world.superadmin, ADDRESS).enabled is False


def test_setting_again_replaces_the_whole_auto_reply(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin, starts_on=date(2025, 7, 1), ends_on=date(2025, 7, 9))
        vacations.disable_vacation(uow, world.domain_admin, ADDRESS)
        set_vacation(uow, world.domain_admin, subject="Back soon", body="Soon.")
        uow.finish()
    # Omitted dates are open ends now, the default interval is RFC 5230's 7 days.
    assert stored(connection) == [(ADDRESS, True, "Back soon", "Soon.", None, None, 7)]


def test_it_normalizes_line_ends_and_keeps_everything_else(
    world: World, make_uow: UowFactory
) -> None:
    body = 'Line one\r\nline "two"\rline three\n.\n${x}\n\ttabbed \\ text\n'
    with make_uow() as uow:
        vacation = set_vacation(uow, world.domain_admin, body=body)
        uow.finish()
    assert vacation.body == 'Line one\nline "two"\nline three\n.\n${x}\n\ttabbed \\ text\n'


def test_it_accepts_the_limits_exactly(world: World, make_uow: UowFactory) -> None:
    subject = "ä" * 255
    # 60 KiB of UTF-8 in two-byte characters.
    body = "é" * (30 * 1024)
    with make_uow() as uow:
        vacation = set_vacation(
            uow,
            world.domain_admin,
            subject=subject,
            body=body,
            interval_days=365,
            starts_on=date(2025, 7, 1),
            ends_on=date(2025, 7, 1),
        )
        uow.finish()
    assert (vacation.subject, vacation.body, vacation.interval_days) == (subject, body, 365)
    with make_uow() as uow:
        assert set_vacation(uow, world.domain_admin, interval_days=1).interval_days == 1


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"subject": ""}, "subject", "required"),
        ({"subject": " \t "}, "subject", "required"),
        ({"subject": "x" * 256}, "subject", "too_long"),
        ({"subject": "Away\r\nBcc: victim@elsewhere.example"}, "subject", "control_character"),
        ({"subject": "Away\nX-Injected: yes"}, "subject", "control_character"),
        ({"subject": "bell \x07"}, "subject", "control_character"),
        ({"subject": "escape \x1b[31m red"}, "subject", "control_character"),
        ({"subject": "line\u2028separator"}, "subject", "control_character"),
        ({"subject": "lone \ud800 surrogate"}, "subject", "control_character"),
        ({"body": ""}, "body", "required"),
        ({"body": "\n \r\n\t"}, "body", "required"),
        ({"body": "NUL \x00 inside"}, "body", "control_character"),
        ({"body": "escape \x1b[2J"}, "body", "control_character"),
        ({"body": "form\x0cfeed"}, "body", "control_character"),
        ({"body": "lone \udfff surrogate"}, "body", "control_character"),
        ({"body": "x" * (60 * 1024 + 1)}, "body", "too_long"),
        ({"body": "é" * (30 * 1024) + "x"}, "body", "too_long"),
        (
            {"starts_on": date(2025, 7, 2), "ends_on": date(2025, 7, 1)},
            "ends_on",
            "before_start",
        ),
        ({"interval_days": 0}, "interval_days", "out_of_range"),
        ({"interval_days": -1}, "interval_days", "out_of_range"),
        ({"interval_days": 366}, "interval_days", "out_of_range"),
        ({"starts_on": "2025-07-01"}, "starts_on", "date_type"),
        ({"interval_days": True}, "interval_days", "int_type"),
        ({"enabled": False}, "enabled", "extra_forbidden"),
    ],
)
def test_it_refuses_bad_input_and_changes_nothing(
    fields: dict[str, Any],
    field: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin, subject="Before", body="Before.")
        uow.finish()
    before, audit_before = stored(connection), audit_rows(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as raised:
        set_vacation(uow, world.domain_admin, **fields)
    assert (raised.value.field, raised.value.rule) == (field, rule)
    assert field in str(raised.value) and rule in str(raised.value)
    assert stored(connection) == before
    assert audit_rows(connection) == audit_before


def test_it_reports_every_broken_rule_at_once(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as raised:
        set_vacation(
            uow,
            world.domain_admin,
            subject="a\nb",
            body="",
            starts_on=date(2025, 2, 1),
            ends_on=date(2025, 1, 1),
            interval_days=0,
        )
    assert [(issue.field, issue.rule) for issue in raised.value.issues] == [
        ("subject", "control_character"),
        ("body", "required"),
        ("ends_on", "before_start"),
        ("interval_days", "out_of_range"),
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-07-01", True),
        ("2024-02-29", True),
        ("2025-02-29", False),
        ("2025-13-01", False),
        ("2025-7-1", False),
        ("20250701", False),
        ("2025-W27-1", False),
        ("2025-07-01T10:00", False),
        (" 2025-07-01", False),
        ("2025-07-01\n", False),
        ("\u0662\u0660\u0662\u0665-07-01", False),
        ("", False),
    ],
)
def test_dates_are_exactly_iso_calendar_days(value: str, ok: bool) -> None:
    if ok:
        assert parse_date(value, "starts_on") == date.fromisoformat(value)
        return
    with pytest.raises(ValidationError) as raised:
        parse_date(value, "starts_on")
    assert (raised.value.field, raised.value.rule) == ("starts_on", "invalid_date")


def test_a_body_must_be_utf8_text() -> None:
    assert decode_body("Grüße\n".encode()) == "Grüße\n"
    assert decode_body(b"\xef\xbb\xbfwith a byte-order mark") == "with a byte-order mark"
    with pytest.raises(ValidationError) as raised:
        decode_body("Grüße".encode("latin-1"))
    assert (raised.value.field, raised.value.rule) == ("body", "not_utf8")


# --- audit and dry run --------------------------------------------------------------------------


def test_audit_holds_the_subject_and_the_bodys_length_and_hash(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin, starts_on=date(2025, 7, 1))
        set_vacation(uow, world.domain_admin, body="Other text.", starts_on=date(2025, 7, 1))
        vacations.disable_vacation(uow, world.domain_admin, ADDRESS)
        uow.finish()
    with make_uow() as uow:
        created, changed, disabled = entries(uow)
    assert (created.action, created.actor, created.domain) == (
        "vacation.create",
        "alice",
        "a.example",
    )
    assert created.after == {
        "enabled": True,
        "subject": SUBJECT,
        "body_chars": len(BODY),
        "body_sha256": hashlib.sha256(BODY.encode()).hexdigest(),
        "starts_on": "2025-07-01",
        "ends_on": None,
        "interval_days": 7,
    }
    assert changed.action == "vacation.update"
    assert changed.after is not None and changed.before == created.after
    assert changed.after["body_sha256"] == hashlib.sha256(b"Other text.").hexdigest()
    assert (disabled.before or {})["enabled"] is True
    assert (disabled.after or {})["enabled"] is False
    for entry in (created, changed, disabled):
        assert "body" not in (entry.before or {}) and "body" not in (entry.after or {})


def test_unchanged_settings_and_a_second_disable_write_no_entry(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin)
        set_vacation(uow, world.domain_admin)
        vacations.disable_vacation(uow, world.domain_admin, ADDRESS)
        vacations.disable_vacation(uow, world.domain_admin, ADDRESS)
        vacations.disable_vacation(uow, world.domain_admin, "postmaster@a.example")
        uow.finish()
    with make_uow() as uow:
        assert [entry.action for entry in entries(uow)] == ["vacation.create", "vacation.update"]
        assert entries(uow, "postmaster@a.example") == []


def test_a_dry_run_returns_the_plan_and_changes_nothing(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    audit_before = audit_rows(connection)
    with make_uow(dry_run=True) as uow:
        vacation = set_vacation(uow, world.domain_admin)
        plan = uow.finish()
    assert vacation.enabled is True
    assert [(c.kind, c.object_type, c.key) for c in plan] == [
        (ChangeKind.CREATE, "vacation", ADDRESS)
    ]
    assert plan[0].changes["subject"] == SUBJECT
    assert stored(connection) == []
    assert audit_rows(connection) == audit_before
    # Nothing was queued to run either: a dry run never touches a host.
    assert uow.follow_up_failures == []


# --- who may ------------------------------------------------------------------------------------


def test_another_domains_admin_finds_no_such_mailbox(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin)
        uow.finish()
    before = stored(connection)
    calls = [
        lambda uow: vacations.get_vacation(uow, world.outsider, ADDRESS),
        lambda uow: set_vacation(uow, world.outsider, subject="Hijacked"),
        lambda uow: vacations.disable_vacation(uow, world.outsider, ADDRESS),
        lambda uow: vacations.apply_script(uow, world.outsider, ADDRESS),
    ]
    for call in calls:
        with make_uow() as uow, pytest.raises(NotFound) as raised:
            call(uow)
        assert str(raised.value) == f"mailbox not found: {ADDRESS}"
    assert stored(connection) == before


def test_a_read_only_actor_reads_but_changes_nothing(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    reader = dataclasses.replace(world.domain_admin, read_only=True)
    with make_uow() as uow:
        assert vacations.get_vacation(uow, reader, ADDRESS).enabled is False
    for call in (
        lambda uow: set_vacation(uow, reader),
        lambda uow: vacations.disable_vacation(uow, reader, ADDRESS),
        lambda uow: vacations.apply_script(uow, reader, ADDRESS),
    ):
        with make_uow() as uow, pytest.raises(PermissionDenied):
            call(uow)
    assert stored(connection) == []


def test_domain_admin_cannot_set_a_superadmins_auto_reply(
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
    for call in (
        lambda uow: set_vacation(uow, world.domain_admin, "Boss@A.example"),
        lambda uow: vacations.disable_vacation(uow, world.domain_admin, "boss@a.example"),
    ):
        with make_uow() as uow, pytest.raises(PermissionDenied):
            call(uow)
    assert stored(connection) == []
    with make_uow() as uow:
        assert set_vacation(uow, world.superadmin, "boss@a.example").enabled is True


def test_a_removed_mailbox_has_no_auto_reply(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin)
        uow.finish()
    connection.execute(
        text("UPDATE mailboxes SET deleted_at = CURRENT_TIMESTAMP WHERE address = :a"),
        {"a": ADDRESS},
    )
    for call in (
        lambda uow: vacations.get_vacation(uow, world.superadmin, ADDRESS),
        lambda uow: set_vacation(uow, world.superadmin),
        lambda uow: vacations.disable_vacation(uow, world.superadmin, ADDRESS),
    ):
        with make_uow() as uow, pytest.raises(NotFound):
            call(uow)


def test_an_unknown_mailbox_is_not_found(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(NotFound):
        set_vacation(uow, world.superadmin, "nobody@a.example")
    with make_uow() as uow, pytest.raises(ValidationError) as raised:
        set_vacation(uow, world.superadmin, "not an address")
    assert raised.value.field == "address"


# --- after commit -------------------------------------------------------------------------------


def test_store_only_mode_applies_nothing_and_fails_nothing(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        set_vacation(uow, world.domain_admin)
        uow.finish()
    assert uow.follow_up_failures == []
    assert len(stored(connection)) == 1
    with make_uow() as uow, pytest.raises(Conflict) as raised:
        vacations.apply_script(uow, world.domain_admin, ADDRESS)
    assert (raised.value.field, raised.value.rule) == ("managesieve_host", "not_configured")


@pytest.fixture
def unreachable(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        password_scheme="SHA256-CRYPT",
        managesieve_host="127.0.0.1",
        managesieve_port=closed_port(),
        sieve_master_password=SecretStr("never shown anywhere"),
    )


def test_an_unreachable_server_leaves_the_change_stored_and_reports_it(
    world: World, make_uow: UowFactory, connection: Connection, unreachable: Settings
) -> None:
    with make_uow() as uow:
        uow.settings = unreachable
        set_vacation(uow, world.domain_admin)
        uow.finish()
    assert [(row[0], row[1]) for row in stored(connection)] == [(ADDRESS, True)]
    [failure] = uow.follow_up_failures
    assert failure.what == f"the Sieve script of {ADDRESS} was not applied"
    assert "connection refused" in failure.reason
    assert "never shown anywhere" not in str(failure)
    with make_uow() as uow:
        uow.settings = unreachable
        status = vacations.apply_script(uow, world.domain_admin, ADDRESS)
        uow.finish()
    assert status.vacation_enabled and not status.forward_enabled
    assert status.script is not None and "vacation :days 7" in status.script
    assert len(uow.follow_up_failures) == 1
