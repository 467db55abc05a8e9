"""Mailbox users (the portal's actors): their own mailbox and nothing else, in the core.

Also the logins of the console and portal: throttling, audit entries of failures, hash upgrade,
sessions (renewal, idle timeout, logout) and the setup link.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mailwarden.aliases import service as aliases
from mailwarden.audit import service as audit
from mailwarden.domains import service as domains
from mailwarden.forwarding import service as forwards
from mailwarden.forwarding.schemas import ForwardSet
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from mailwarden.kernel.passwords import scheme_of
from mailwarden.kernel.schemas import parse
from mailwarden.logins import service as logins
from mailwarden.logins.service import LoginRefused
from mailwarden.mailboxes import selfservice
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.setup import service as setup
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import VacationSet
from mailwarden.websessions import service as websessions
from mailwarden.websessions.models import WebSession
from mailwarden.websessions.service import SessionKind
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)


def user(make_uow: UowFactory, address: str = "user1@a.example") -> Actor:
    with make_uow() as uow:
        actor = selfservice.authenticate(uow, address, PASSWORD)
        uow.finish()
    return actor


def test_it_logs_a_mailbox_user_in_as_its_own_mailbox(world: World, make_uow: UowFactory) -> None:
    actor = user(make_uow)
    assert actor.role is Role.MAILBOX_USER
    assert actor.username == "user1@a.example"
    with make_uow() as uow:
        own = selfservice.get_own(uow, actor)
    assert own.address == "user1@a.example"


def test_it_upgrades_the_stored_hash_at_login(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        mailboxes.set_password(uow, OPERATOR, "user1@a.example", PASSWORD, scheme="SHA512-CRYPT")
        uow.finish()
    user(make_uow)
    with make_uow() as uow:
        stored = uow.session.scalar(
            select(Mailbox.password_hash).where(Mailbox.address == "user1@a.example")
        )
    assert stored is not None
    assert scheme_of(stored) == uow.settings.password_scheme


@pytest.mark.parametrize(
    ("address", "password"),
    [
        ("user1@a.example", "wrong password"),
        ("nobody@a.example", PASSWORD),
        ("not an address", PASSWORD),
    ],
)
def test_it_refuses_wrong_logins_alike(
    world: World, make_uow: UowFactory, address: str, password: str
) -> None:
    with make_uow() as uow, pytest.raises(PermissionDenied) as refused:
        selfservice.authenticate(uow, address, password)
    assert refused.value.reason == "wrong address or password"


def test_it_refuses_a_deactivated_mailbox(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        mailboxes.remove(uow, OPERATOR, "user1@a.example")
        uow.finish()
    with make_uow() as uow, pytest.raises(PermissionDenied):
        selfservice.authenticate(uow, "user1@a.example", PASSWORD)


def test_a_mailbox_user_changes_its_own_vacation_and_forwarding(
    world: World, make_uow: UowFactory
) -> None:
    actor = user(make_uow)
    with make_uow() as uow:
        data = parse(VacationSet, {"subject": "Away", "body": "Back on Monday."})
        vacation.set_vacation(uow, actor, "user1@a.example", data)
        forwards.set_forward(
            uow, actor, "user1@a.example", parse(ForwardSet, {"targets": ["me@elsewhere.test"]})
        )
        uow.finish()
    with make_uow() as uow:
        assert vacation.get_vacation(uow, actor, "user1@a.example").enabled
        assert forwards.get_forward(uow, actor, "user1@a.example").targets == ["me@elsewhere.test"]
        entry = audit.list_entries(uow, OPERATOR, limit=1).items[0]
    assert entry.actor == "user1@a.example"
    assert entry.actor_role == "mailbox-user"


OTHER_MAILBOX_OPERATIONS: dict[str, Any] = {
    "vacation read": lambda uow, a: vacation.get_vacation(uow, a, "postmaster@a.example"),
    "vacation set": lambda uow, a: vacation.set_vacation(
        uow, a, "postmaster@a.example", parse(VacationSet, {"subject": "x", "body": "y"})
    ),
    "forward read": lambda uow, a: forwards.get_forward(uow, a, "user1@b.example"),
    "forward set": lambda uow, a: forwards.set_forward(
        uow, a, "postmaster@a.example", parse(ForwardSet, {"targets": ["x@y.test"]})
    ),
    "mailbox read": lambda uow, a: mailboxes.get(uow, a, "user1@a.example"),
    "mailbox password": lambda uow, a: mailboxes.set_password(
        uow, a, "user1@a.example", "another long password"
    ),
    "mailbox list": lambda uow, a: mailboxes.list_mailboxes(uow, a),
    "alias list": lambda uow, a: aliases.list_aliases(uow, a),
    "alias read": lambda uow, a: aliases.get(uow, a, "info@a.example"),
    "domain list": lambda uow, a: domains.list_domains(uow, a),
    "domain read": lambda uow, a: domains.show(uow, a, "a.example"),
    "audit": lambda uow, a: audit.list_entries(uow, a),
    "delivering to another": lambda uow, a: aliases.delivering_to(uow, a, "user1@b.example"),
}


@pytest.mark.parametrize("operation", OTHER_MAILBOX_OPERATIONS)
def test_a_mailbox_user_reaches_nothing_but_its_own_mailbox(
    world: World, make_uow: UowFactory, operation: str
) -> None:
    actor = user(make_uow)
    with make_uow() as uow, pytest.raises((PermissionDenied, NotFound)):
        OTHER_MAILBOX_OPERATIONS[operation](uow, actor)


def test_it_lists_the_aliases_that_deliver_to_the_user(world: World, make_uow: UowFactory) -> None:
    actor = user(make_uow)
    with make_uow() as uow:
        page = aliases.delivering_to(uow, actor, "user1@a.example")
    assert page.items == ["info@a.example"]


def test_the_own_password_change_needs_the_current_one(world: World, make_uow: UowFactory) -> None:
    actor = user(make_uow)
    with make_uow() as uow, pytest.raises(ValidationError) as refused:
        selfservice.change_own_password(uow, actor, current="wrong", new="a new long password")
    assert refused.value.field == "current_password"
    with make_uow() as uow:
        selfservice.change_own_password(uow, actor, current=PASSWORD, new="a new long password")
        uow.finish()
    with make_uow() as uow:
        assert selfservice.authenticate(uow, "user1@a.example", "a new long password")


def test_failed_logins_are_counted_audited_and_then_throttled(
    world: World, make_uow: UowFactory
) -> None:
    limit = make_uow().settings.auth_failures_per_account
    hostile = "<script>alert(1)</script>\x00@a.example"
    for _ in range(limit):
        with make_uow() as uow:
            with pytest.raises(LoginRefused):
                logins.admin_login(uow, hostile, "nope", client_address="192.0.2.7")
            uow.finish()
    with make_uow() as uow:
        with pytest.raises(RateLimited):
            logins.admin_login(uow, hostile, "nope", client_address="192.0.2.7")
        uow.finish()
    with make_uow() as uow:
        entries = [
            (entry.actor, entry.after)
            for entry in uow.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "admin.login-failed")
                .order_by(AuditEntry.id)
            )
        ]
    assert len(entries) == limit + 1
    # Stored without control characters, as typed otherwise (escaping is the page's job).
    assert entries[0][0] == "<script>alert(1)</script>\ufffd@a.example"
    assert entries[-1][1] == {"reason": "throttled"}


def test_a_good_login_clears_the_account_counter_and_is_audited(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        with pytest.raises(LoginRefused):
            logins.admin_login(uow, "alice", "nope", client_address=None)
        uow.finish()
    with make_uow() as uow:
        result = logins.admin_login(uow, "alice", PASSWORD, client_address=None)
        uow.finish()
    assert result.actor.username == "alice" and not result.second_factor_due
    with make_uow() as uow:
        actions = uow.session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "alice").order_by(AuditEntry.id)
        ).all()
    assert actions[-2:] == ["admin.login-failed", "admin.login"]


def test_sessions_renew_expire_and_end(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        admin_id = uow.session.scalar(select(WebSession.id).limit(1))
        assert admin_id is None
        alice = logins.admin_login(uow, "alice", PASSWORD, client_address=None)
        opened = websessions.start(uow, SessionKind.ADMIN, alice.admin_id)
        uow.finish()
    with make_uow() as uow:
        row = websessions.resolve(uow, opened.token, SessionKind.ADMIN)
        assert row is not None
        # A portal cookie is not a console session, and the other way round.
        assert websessions.resolve(uow, opened.token, SessionKind.MAILBOX) is None
        renewed = websessions.renew(uow, row, second_factor_pending=False)
        uow.finish()
    assert renewed.token != opened.token and renewed.csrf_token != opened.csrf_token
    with make_uow() as uow:
        assert websessions.resolve(uow, opened.token, SessionKind.ADMIN) is None
        row = websessions.resolve(uow, renewed.token, SessionKind.ADMIN)
        assert row is not None
        idle = timedelta(minutes=uow.settings.session_idle_minutes, seconds=1)
        row.last_seen_at = row.last_seen_at - idle
        uow.finish()
    with make_uow() as uow:
        assert websessions.resolve(uow, renewed.token, SessionKind.ADMIN) is None
        again = websessions.start(uow, SessionKind.ADMIN, alice.admin_id)
        websessions.end(uow, again.token)
        assert websessions.resolve(uow, again.token, SessionKind.ADMIN) is None


def test_the_setup_link_works_once_and_only_without_admins(make_uow: UowFactory) -> None:
    with make_uow() as uow:
        token = setup.issue_link_token(uow)
        uow.finish()
    assert token is not None
    with make_uow() as uow, pytest.raises(PermissionDenied):
        setup.complete(uow, "forged", username="first", password=PASSWORD)
    with make_uow() as uow:
        done = setup.complete(
            uow, token, username="first", password=PASSWORD, first_domain="first.example"
        )
        uow.finish()
    assert done.admin.role is Role.SUPERADMIN and done.domain is not None
    with make_uow() as uow:
        assert setup.issue_link_token(uow) is None
        with pytest.raises(Conflict):
            setup.complete(uow, token, username="second", password=PASSWORD)


def test_a_password_set_by_an_admin_ends_the_sessions_of_its_owner(
    world: World, make_uow: UowFactory
) -> None:
    from mailwarden.admins import service as admins

    with make_uow() as uow:
        alice = logins.admin_login(uow, "alice", PASSWORD, client_address=None)
        console = websessions.start(uow, SessionKind.ADMIN, alice.admin_id)
        mailbox = selfservice.authenticate(uow, "user1@a.example", PASSWORD)
        assert mailbox.mailbox_id is not None
        portal = websessions.start(uow, SessionKind.MAILBOX, mailbox.mailbox_id)
        uow.finish()
    with make_uow() as uow:
        admins.set_password(uow, OPERATOR, "alice", "a brand new password")
        mailboxes.set_password(uow, OPERATOR, "user1@a.example", "a brand new password")
        uow.finish()
    with make_uow() as uow:
        assert websessions.resolve(uow, console.token, SessionKind.ADMIN) is None
        assert websessions.resolve(uow, portal.token, SessionKind.MAILBOX) is None
