"""Admins' second factor through the service: enrolment, login codes, replay, recovery codes,
disabling, resets, audit without secrets, and who may do what."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from sqlalchemy import Connection, text, update

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminUpdate
from mailwarden.audit import service as audit
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.twofactor import service as twofactor
from mailwarden.twofactor.models import TotpEnrolment
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)
RECOVERY_SHAPE = r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}"


# --- helpers ---------------------------------------------------------------------------------


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


@dataclasses.dataclass(frozen=True)
class Enrolled:
    secret: str
    # The code that confirmed the enrolment (used up).
    first_code: str
    recovery_codes: list[str]


def enrol(make_uow: UowFactory, actor: Actor) -> Enrolled:
    enrolment = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, actor))
    code = pyotp.TOTP(enrolment.secret).now()
    codes = run(make_uow, lambda uow: twofactor.confirm_enrolment(uow, actor, code))
    return Enrolled(enrolment.secret, code, codes)


def next_code(secret: str) -> str:
    """The code of the next time step: still inside the accepted window, and not used yet."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def forget_used_steps(make_uow: UowFactory, admin_id: int | None) -> None:
    """Time travel: pretend no code was used yet, so that the current codes count again."""
    run(
        make_uow,
        lambda uow: uow.session.execute(
            update(TotpEnrolment).where(TotpEnrolment.admin_id == admin_id).values(last_used_step=0)
        ),
    )


def verify(make_uow: UowFactory, actor: Actor, code: str) -> bool:
    assert actor.admin_id is not None
    admin_id = actor.admin_id
    result: bool = run(make_uow, lambda uow: twofactor.verify(uow, admin_id, code))
    return result


def state(connection: Connection) -> dict[str, list[tuple[str, ...]]]:
    """Every row the second factor and the audit log hold, as text."""
    return {
        table: sorted(
            tuple(str(value) for value in row)
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        )
        for table in ("totp_enrolments", "recovery_codes", "audit_log")
    }


def entries_json(make_uow: UowFactory, world: World) -> str:
    with make_uow() as uow:
        entries = audit.list_entries(uow, world.superadmin, limit=500).items
    return json.dumps([entry.model_dump(mode="json") for entry in entries])


def actions(make_uow: UowFactory, world: World, username: str) -> list[tuple[str, str]]:
    """(action, actor) of the entries about admin `username`, oldest first."""
    with make_uow() as uow:
        entries = audit.list_entries(
            uow, world.superadmin, object_type="admin", object_key=username, limit=500
        ).items
    return [(entry.action, entry.actor) for entry in reversed(entries)]


# --- enrolment -------------------------------------------------------------------------------


def test_it_enrols_with_a_code_from_the_returned_secret(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = world.domain_admin
    enrolment = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, actor, issuer="Mail Co"))
    totp = pyotp.parse_uri(enrolment.otpauth_uri)
    assert isinstance(totp, pyotp.TOTP)
    assert (totp.secret, totp.name, totp.issuer) == (enrolment.secret, "alice", "Mail Co")
    assert enrolment.qr_svg.startswith("<svg") and enrolment.qr_svg.endswith("</svg>")
    with make_uow() as uow:
        pending = twofactor.status(uow, actor)
        assert not twofactor.is_enrolled(uow, actor.admin_id or 0)
    assert (pending.enrolled, pending.confirmed_at, pending.recovery_codes_left) == (
        False,
        None,
        0,
    )

    codes = run(
        make_uow,
        lambda uow: twofactor.confirm_enrolment(uow, actor, pyotp.TOTP(enrolment.secret).now()),
    )

    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(RECOVERY_SHAPE, code) for code in codes)
    with make_uow() as uow:
        enrolled = twofactor.status(uow, actor)
        assert twofactor.is_enrolled(uow, actor.admin_id or 0)
    assert (enrolled.enrolled, enrolled.recovery_codes_left) == (True, 10)
    assert enrolled.confirmed_at is not None
    stored = {
        row.code_hash
        for row in connection.execute(
            text("SELECT code_hash FROM recovery_codes WHERE admin_id = :id"),
            {"id": actor.admin_id},
        )
    }
    assert stored == {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert actions(make_uow, world, "alice")[-2:] == [
        ("admin.2fa-begin", "alice"),
        ("admin.2fa-enable", "alice"),
    ]


def test_a_wrong_code_does_not_confirm_the_enrolment(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    enrolment = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, actor))
    totp = pyotp.TOTP(enrolment.secret)
    valid = {totp.at(time.time() + offset) for offset in (-60, -30, 0, 30, 60)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)
    for attempt in (wrong, "not a code", ""):
        with make_uow() as uow, pytest.raises(ValidationError) as info:
            twofactor.confirm_enrolment(uow, actor, attempt)
        assert (info.value.field, info.value.rule) == ("code", "totp")
    with make_uow() as uow:
        assert not twofactor.status(uow, actor).enrolled


def test_a_new_enrolment_replaces_a_pending_secret(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    first = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, actor))
    second = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, actor))
    assert first.secret != second.secret
    with make_uow() as uow, pytest.raises(ValidationError):
        twofactor.confirm_enrolment(uow, actor, pyotp.TOTP(first.secret).now())
    run(
        make_uow,
        lambda uow: twofactor.confirm_enrolment(uow, actor, pyotp.TOTP(second.secret).now()),
    )


def test_enrolment_is_refused_while_a_confirmed_one_exists(
    world: World, make_uow: UowFactory
) -> None:
    enrol(make_uow, world.domain_admin)
    with make_uow() as uow, pytest.raises(Conflict) as info:
        twofactor.begin_enrolment(uow, world.domain_admin)
    assert info.value.rule == "enrolled"


def test_confirming_needs_a_begun_enrolment(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as info:
        twofactor.confirm_enrolment(uow, world.domain_admin, "123456")
    assert info.value.rule == "not_started"


# --- the login code --------------------------------------------------------------------------


def test_a_totp_code_is_accepted_once(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    enrolled = enrol(make_uow, actor)
    # The code that confirmed the enrolment is used up already.
    assert not verify(make_uow, actor, enrolled.first_code)
    fresh = next_code(enrolled.secret)
    assert verify(make_uow, actor, f"{fresh[:3]} {fresh[3:]}")
    assert not verify(make_uow, actor, fresh)


def test_a_recovery_code_works_once(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    enrolled = enrol(make_uow, actor)
    first, second = enrolled.recovery_codes[:2]
    assert verify(make_uow, actor, first)
    assert not verify(make_uow, actor, first)
    # Typed the way people type: upper case, no dash, spaces.
    assert verify(make_uow, actor, f" {second.replace('-', '').upper()} ")
    assert not verify(make_uow, actor, second)
    with make_uow() as uow:
        assert twofactor.status(uow, actor).recovery_codes_left == 8
    used = [entry for entry in actions(make_uow, world, "alice") if entry[0].startswith("admin.r")]
    assert used == [("admin.recovery-code-used", "alice")] * 2


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcde-1234", "x" * 10_000])
def test_verify_answers_false_for_malformed_codes(
    code: str, world: World, make_uow: UowFactory
) -> None:
    enrol(make_uow, world.domain_admin)
    assert verify(make_uow, world.domain_admin, code) is False


def test_verify_answers_false_without_an_enrolment(world: World, make_uow: UowFactory) -> None:
    enrolment = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, world.domain_admin))
    # Pending only: the login must not accept it yet.
    assert not verify(make_uow, world.domain_admin, pyotp.TOTP(enrolment.secret).now())
    assert not verify(make_uow, world.outsider, "123456")
    assert not run(make_uow, lambda uow: twofactor.verify(uow, 987_654, "123456"))


def test_verify_answers_false_for_an_inactive_admin(world: World, make_uow: UowFactory) -> None:
    enrolled = enrol(make_uow, world.domain_admin)
    run(
        make_uow,
        lambda uow: admins.update(uow, OPERATOR, "alice", parse(AdminUpdate, {"active": False})),
    )
    assert not verify(make_uow, world.domain_admin, enrolled.recovery_codes[0])


# --- recovery codes --------------------------------------------------------------------------


def test_regenerating_recovery_codes_needs_a_totp_code(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    enrolled = enrol(make_uow, actor)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        twofactor.regenerate_recovery_codes(uow, actor, enrolled.recovery_codes[0])
    assert (info.value.field, info.value.rule) == ("code", "totp")

    fresh = run(
        make_uow,
        lambda uow: twofactor.regenerate_recovery_codes(uow, actor, next_code(enrolled.secret)),
    )

    assert set(fresh).isdisjoint(enrolled.recovery_codes) and len(fresh) == 10
    assert not verify(make_uow, actor, enrolled.recovery_codes[0])
    assert verify(make_uow, actor, fresh[0])
    assert ("admin.2fa-recovery-codes", "alice") in actions(make_uow, world, "alice")


# --- disabling -------------------------------------------------------------------------------


def test_disabling_needs_the_password_and_a_code(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = world.domain_admin
    enrolled = enrol(make_uow, actor)
    before = state(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        twofactor.disable(uow, actor, password="wrong password", code=enrolled.recovery_codes[0])
    assert info.value.field == "password"
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        twofactor.disable(uow, actor, password=PASSWORD, code=enrolled.first_code)
    assert (info.value.field, info.value.rule) == ("code", "totp")
    assert state(connection) == before

    run(
        make_uow,
        lambda uow: twofactor.disable(
            uow, actor, password=PASSWORD, code=next_code(enrolled.secret)
        ),
    )

    with make_uow() as uow:
        status = twofactor.status(uow, actor)
    assert (status.enrolled, status.recovery_codes_left) == (False, 0)
    assert state(connection)["recovery_codes"] == []
    assert state(connection)["totp_enrolments"] == []
    assert actions(make_uow, world, "alice")[-1] == ("admin.2fa-disable", "alice")
    assert not verify(make_uow, actor, enrolled.recovery_codes[1])


def test_a_recovery_code_can_disable_the_second_factor(world: World, make_uow: UowFactory) -> None:
    enrolled = enrol(make_uow, world.superadmin)
    run(
        make_uow,
        lambda uow: twofactor.disable(
            uow, world.superadmin, password=PASSWORD, code=enrolled.recovery_codes[0]
        ),
    )
    with make_uow() as uow:
        assert not twofactor.is_enrolled(uow, world.superadmin.admin_id or 0)


def test_disabling_without_an_enrolment_is_a_conflict(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as info:
        twofactor.disable(uow, world.domain_admin, password=PASSWORD, code="123456")
    assert info.value.rule == "not_enrolled"


# --- secrets stay out of the audit log -------------------------------------------------------


def test_audit_entries_hold_no_secret_and_no_code(world: World, make_uow: UowFactory) -> None:
    actor = world.domain_admin
    enrolled = enrol(make_uow, actor)
    login_code = next_code(enrolled.secret)
    assert verify(make_uow, actor, login_code)
    assert verify(make_uow, actor, enrolled.recovery_codes[0])
    forget_used_steps(make_uow, actor.admin_id)
    regenerated = run(
        make_uow,
        lambda uow: twofactor.regenerate_recovery_codes(
            uow, actor, pyotp.TOTP(enrolled.secret).now()
        ),
    )
    forget_used_steps(make_uow, actor.admin_id)
    run(
        make_uow,
        lambda uow: twofactor.disable(
            uow, actor, password=PASSWORD, code=pyotp.TOTP(enrolled.secret).now()
        ),
    )

    logged = entries_json(make_uow, world)
    assert [action for action, _ in actions(make_uow, world, "alice")][-5:] == [
        "admin.2fa-begin",
        "admin.2fa-enable",
        "admin.recovery-code-used",
        "admin.2fa-recovery-codes",
        "admin.2fa-disable",
    ]
    forbidden = [enrolled.secret, enrolled.first_code, login_code, PASSWORD]
    for code in enrolled.recovery_codes + regenerated:
        compact = code.replace("-", "")
        forbidden += [code, compact, hashlib.sha256(compact.encode()).hexdigest()]
    assert [value for value in forbidden if value in logged] == []


# --- who may do what -------------------------------------------------------------------------


def test_an_admin_acts_on_its_own_second_factor_only(world: World, make_uow: UowFactory) -> None:
    alice = enrol(make_uow, world.domain_admin)
    bob = world.outsider
    with make_uow() as uow:
        assert not twofactor.status(uow, bob).enrolled
    with make_uow() as uow, pytest.raises(Conflict):
        twofactor.confirm_enrolment(uow, bob, next_code(alice.secret))
    with make_uow() as uow, pytest.raises(Conflict):
        twofactor.disable(uow, bob, password=PASSWORD, code=alice.recovery_codes[0])
    with make_uow() as uow, pytest.raises(Conflict):
        twofactor.regenerate_recovery_codes(uow, bob, next_code(alice.secret))
    run(make_uow, lambda uow: twofactor.begin_enrolment(uow, bob))
    with make_uow() as uow, pytest.raises(ValidationError):
        twofactor.confirm_enrolment(uow, bob, next_code(alice.secret))
    assert not verify(make_uow, bob, alice.recovery_codes[0])
    # Alice's codes are untouched by all of that.
    assert verify(make_uow, world.domain_admin, alice.recovery_codes[0])


@pytest.mark.parametrize(("persona", "target"), [("domain_admin", "bob"), ("outsider", "root")])
def test_a_domain_admin_cannot_reset_a_second_factor(
    persona: str, target: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    enrol(make_uow, world.outsider if target == "bob" else world.superadmin)
    before = state(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        twofactor.reset(uow, getattr(world, persona), target)
    assert state(connection) == before


def test_a_superadmin_resets_another_admins_second_factor(
    world: World, make_uow: UowFactory
) -> None:
    enrolled = enrol(make_uow, world.domain_admin)
    assert run(make_uow, lambda uow: twofactor.reset(uow, world.superadmin, "Alice")) is True
    assert run(make_uow, lambda uow: twofactor.reset(uow, world.superadmin, "alice")) is False
    with make_uow() as uow:
        assert not twofactor.status(uow, world.domain_admin).enrolled
    assert not verify(make_uow, world.domain_admin, enrolled.recovery_codes[0])
    assert actions(make_uow, world, "alice")[-1] == ("admin.2fa-reset", "root")
    with make_uow() as uow, pytest.raises(NotFound):
        twofactor.reset(uow, world.superadmin, "nobody")


def test_a_superadmin_cannot_reset_its_own_second_factor(
    world: World, make_uow: UowFactory
) -> None:
    enrol(make_uow, world.superadmin)
    with make_uow() as uow, pytest.raises(Conflict) as info:
        twofactor.reset(uow, world.superadmin, "root")
    assert info.value.rule == "self_reset"


def _own_changes(enrolled: Enrolled | None) -> list[Callable[[UnitOfWork, Actor], Any]]:
    """Every change an admin makes to its own second factor, with codes that would work."""
    secret = enrolled.secret if enrolled else pyotp.random_base32()
    recovery = enrolled.recovery_codes[0] if enrolled else "abcde-12345"
    return [
        lambda uow, actor: twofactor.begin_enrolment(uow, actor),
        lambda uow, actor: twofactor.confirm_enrolment(uow, actor, next_code(secret)),
        lambda uow, actor: twofactor.regenerate_recovery_codes(uow, actor, next_code(secret)),
        lambda uow, actor: twofactor.disable(uow, actor, password=PASSWORD, code=recovery),
    ]


def _attempt_all(
    make_uow: UowFactory, actor: Actor, changes: list[Callable[[UnitOfWork, Actor], Any]]
) -> list[bool]:
    """Whether each change was refused; one that is not is committed, to show in the tables."""
    refused = []
    for change in changes:
        with make_uow() as uow:
            try:
                change(uow, actor)
                uow.finish()
            except PermissionDenied:
                refused.append(True)
            else:
                refused.append(False)
    return refused


@pytest.mark.parametrize("enrolled_first", [False, True], ids=["pending", "enrolled"])
def test_a_read_only_actor_cannot_change_anything(
    enrolled_first: bool, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    if enrolled_first:
        enrolled: Enrolled | None = enrol(make_uow, world.superadmin)
    else:
        run(make_uow, lambda uow: twofactor.begin_enrolment(uow, world.superadmin))
        enrolled = None
    enrol(make_uow, world.outsider)
    actor = dataclasses.replace(world.superadmin, read_only=True)
    before = state(connection)
    changes = [
        *_own_changes(enrolled),
        lambda uow, actor: twofactor.reset(uow, actor, "bob"),
    ]
    assert _attempt_all(make_uow, actor, changes) == [True] * 5
    assert state(connection) == before
    with make_uow() as uow:
        assert twofactor.status(uow, actor).enrolled is enrolled_first


@pytest.mark.parametrize("enrolled_first", [False, True], ids=["pending", "enrolled"])
def test_an_api_key_cannot_change_its_admins_second_factor(
    enrolled_first: bool, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    """A key is not the password: enrolling through a stolen one would lock the owner out."""
    if enrolled_first:
        enrolled: Enrolled | None = enrol(make_uow, world.domain_admin)
    else:
        run(make_uow, lambda uow: twofactor.begin_enrolment(uow, world.domain_admin))
        enrolled = None
    actor = dataclasses.replace(world.domain_admin, api_key="abcdef123456")
    before = state(connection)
    assert _attempt_all(make_uow, actor, _own_changes(enrolled)) == [True] * 4
    assert state(connection) == before
    with make_uow() as uow:
        assert twofactor.status(uow, actor).enrolled is enrolled_first


@pytest.mark.parametrize(
    "actor",
    [
        pytest.param(OPERATOR, id="local-operator"),
        pytest.param(
            Actor(username="user1@a.example", role=Role.MAILBOX_USER, mailbox_id=1),
            id="mailbox-user",
        ),
    ],
)
def test_only_admin_accounts_have_a_second_factor(
    actor: Actor, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = state(connection)
    with make_uow() as uow:
        with pytest.raises(PermissionDenied):
            twofactor.status(uow, actor)
        with pytest.raises(PermissionDenied):
            twofactor.begin_enrolment(uow, actor)
    assert state(connection) == before


# --- required by the settings ----------------------------------------------------------------


def test_the_settings_say_which_roles_must_use_a_second_factor(
    world: World, make_uow: UowFactory, settings: Settings
) -> None:
    strict = settings.model_copy(update={"require_second_factor": ["superadmin"]})
    assert twofactor.is_required(strict, Role.SUPERADMIN)
    assert not twofactor.is_required(strict, Role.DOMAIN_ADMIN)
    assert not twofactor.is_required(settings, Role.SUPERADMIN)
    assert Settings(require_second_factor=["domain-admin"]).require_second_factor == [
        "domain-admin"
    ]
    with pytest.raises(ValueError, match="require_second_factor"):
        Settings(require_second_factor=["mailbox-user"])  # type: ignore[list-item]
    enrolled = enrol(make_uow, world.superadmin)
    with make_uow() as uow:
        uow.settings = strict
        assert twofactor.status(uow, world.superadmin).required
        assert not twofactor.status(uow, world.domain_admin).required
    # Disabling stays possible; `required` sends the admin back to enrolment.
    run(
        make_uow,
        lambda uow: twofactor.disable(
            uow, world.superadmin, password=PASSWORD, code=enrolled.recovery_codes[0]
        ),
    )
    with make_uow() as uow:
        uow.settings = strict
        status = twofactor.status(uow, world.superadmin)
    assert (status.enrolled, status.required) == (False, True)
