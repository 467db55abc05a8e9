"""Moderated registration through the service: the visitor's request, the queue, the decision.

A visitor must not learn which domains exist (a closed domain answers like an unknown one);
an approval creates the mailbox through the mailbox service, with every rule of a new mailbox
and the password the visitor chose; decisions stay inside the moderator's domains; no audit
entry or answer ever carries the password or its hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, text

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate
from mailwarden.audit import service as audit
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainUpdate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import (
    RegistrationPublic,
    RegistrationReceipt,
    RegistrationStatus,
    RegistrationSubmit,
)
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)
CHOSEN = "my own fine passphrase"
CLIENT = "198.51.100.7"


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


def submit(
    make_uow: UowFactory,
    address: str,
    *,
    password: str = CHOSEN,
    name: str = "New Person",
    contact: str = "",
) -> RegistrationReceipt:
    data = parse(
        RegistrationSubmit,
        {"address": address, "name": name, "password": password, "contact": contact},
    )
    return run(make_uow, lambda uow: registrations.submit(uow, data, client_address=CLIENT))


def set_domain(make_uow: UowFactory, actor: Actor, name: str, **changes: Any) -> None:
    run(make_uow, lambda uow: domains.update(uow, actor, name, parse(DomainUpdate, changes)))


def pending(make_uow: UowFactory, actor: Actor, domain: str | None = None) -> list[str]:
    with make_uow() as uow:
        page = registrations.list_requests(uow, actor, domain=domain, limit=500)
    return [request.address for request in page.items]


def request_id(make_uow: UowFactory, address: str) -> int:
    with make_uow() as uow:
        page = registrations.list_requests(uow, OPERATOR, status=None, limit=500)
    return next(request.id for request in page.items if request.address == address)


@pytest.fixture
def open_a(world: World, make_uow: UowFactory) -> None:
    """a.example takes requests; its domain admin opens it (its own call to make)."""
    set_domain(make_uow, world.domain_admin, "a.example", registration_open=True)


@pytest.fixture
def open_b(world: World, make_uow: UowFactory) -> None:
    set_domain(make_uow, world.outsider, "b.example", registration_open=True)


def stored_hash(connection: Connection, table: str, address: str) -> str:
    return str(
        connection.execute(
            text(f"SELECT password_hash FROM {table} WHERE address = :address"),
            {"address": address},
        ).scalar_one()
    )


def request_count(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM registration_requests")).scalar_one()


# --- what a visitor may ask for --------------------------------------------------------------


def test_a_closed_domain_answers_exactly_like_an_unknown_one(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    run(
        make_uow,
        lambda uow: (
            domains.create(
                uow,
                OPERATOR,
                parse(DomainCreate, {"name": "relay.example", "backup_mx": True}),
            ),
            domains.create(
                uow,
                OPERATOR,
                parse(
                    DomainCreate,
                    {"name": "off.example", "active": False, "registration_open": True},
                ),
            ),
            domains.create(
                uow,
                OPERATOR,
                parse(
                    DomainCreate,
                    {"name": "relay-open.example", "backup_mx": True, "registration_open": True},
                ),
            ),
        ),
    )
    answers = set()
    for address in (
        "new@a.example",  # exists, closed
        "new@nowhere.example",  # unknown
        "new@off.example",  # open but inactive
        "new@relay.example",  # relayed elsewhere
        "new@relay-open.example",  # relayed, though marked open
    ):
        with pytest.raises(ValidationError) as caught:
            submit(make_uow, address)
        assert type(caught.value) is ValidationError
        answers.add((caught.value.field, caught.value.rule, caught.value.issues[0].message))
    assert answers == {
        ("address", "registration-closed", "registration is not open for this domain")
    }
    assert request_count(connection) == 0


def test_a_removed_domain_answers_like_an_unknown_one(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    run(make_uow, lambda uow: domains.remove(uow, OPERATOR, "a.example", cascade=True))
    with pytest.raises(ValidationError) as caught:
        submit(make_uow, "new@a.example")
    assert caught.value.rule == "registration-closed"


def test_an_open_domain_takes_a_request(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    receipt = submit(make_uow, "New.Person@A.example", contact="me+mail@elsewhere.example")
    assert receipt == RegistrationReceipt(
        address="new.person@a.example",
        status=RegistrationStatus.PENDING,
        created_at=receipt.created_at,
    )
    with make_uow() as uow:
        [request] = registrations.list_requests(uow, world.domain_admin).items
        assert registrations.get(uow, world.domain_admin, request.id) == request
    assert request == RegistrationPublic(
        id=request.id,
        address="new.person@a.example",
        domain="a.example",
        name="New Person",
        contact="me+mail@elsewhere.example",
        status=RegistrationStatus.PENDING,
        client_address=CLIENT,
        created_at=request.created_at,
        decided_at=None,
        decided_by=None,
        reason="",
    )
    # Hashed at once, under the configured scheme; the password itself is nowhere.
    hashed = stored_hash(connection, "registration_requests", "new.person@a.example")
    assert hashed.startswith("{SHA256-CRYPT}") and verify_password(CHOSEN, hashed)
    assert "password_hash" not in RegistrationPublic.model_fields
    assert "password" not in RegistrationReceipt.model_fields


@pytest.mark.parametrize(
    ("field", "values", "rule"),
    [
        ("password", {"password": "short"}, "too_short"),
        ("name", {"name": "Evil\nHeader"}, "control_character"),
        ("contact", {"contact": "not an address"}, "whitespace"),
        ("address", {"address": "a@b@a.example"}, "at_sign"),
    ],
)
def test_a_request_follows_the_input_rules(
    field: str,
    values: dict[str, str],
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
    open_a: None,
) -> None:
    fields = {"address": "new@a.example", "name": "N", "password": CHOSEN} | values
    data = parse(RegistrationSubmit, fields)
    with make_uow() as uow, pytest.raises(ValidationError) as caught:
        registrations.submit(uow, data, client_address=None)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert request_count(connection) == 0


def test_the_registration_schema_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        parse(
            RegistrationSubmit,
            {"address": "x@a.example", "name": "", "password": CHOSEN, "password_hash": "{X}"},
        )
    assert (caught.value.field, caught.value.rule) == ("password_hash", "extra_forbidden")


@pytest.mark.parametrize(
    "address",
    [
        "user1@a.example",  # a mailbox
        "USER1@a.example",  # the same, spelled otherwise
        "info@a.example",  # an alias
        "postmaster@a.example",  # protected (RFC 2142) as well as taken
        "abuse@a.example",  # protected, though free
        "alice@a.example",  # free, but see the fixture below: an admin's username
    ],
)
def test_a_taken_address_is_unavailable(
    address: str, world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    run(
        make_uow,
        lambda uow: admins.create(
            uow,
            OPERATOR,
            parse(AdminCreate, {"username": "alice@a.example", "role": Role.SUPERADMIN}),
            password=PASSWORD,
        ),
    )
    with pytest.raises(Conflict) as caught:
        submit(make_uow, address)
    assert (caught.value.field, caught.value.rule) == ("address", "unavailable")
    assert request_count(connection) == 0


def test_a_second_request_for_a_pending_address_is_refused(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    with pytest.raises(Conflict) as caught:
        submit(make_uow, "NEW@a.example", password="another passphrase")
    assert (caught.value.field, caught.value.rule) == ("address", "unavailable")
    assert request_count(connection) == 1


def test_a_rejected_address_may_be_asked_for_again(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    run(
        make_uow,
        lambda uow: registrations.reject(
            uow, world.domain_admin, request_id(make_uow, "new@a.example")
        ),
    )
    submit(make_uow, "new@a.example")
    assert pending(make_uow, world.domain_admin) == ["new@a.example"]


def test_the_pending_limit_holds_requests_back(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    set_domain(make_uow, world.superadmin, "a.example", registration_pending_limit=2)
    submit(make_uow, "one@a.example")
    submit(make_uow, "two@a.example")
    with pytest.raises(LimitExceeded) as caught:
        submit(make_uow, "three@a.example")
    assert (caught.value.field, caught.value.rule) == ("address", "limit")
    assert request_count(connection) == 2
    # A decision frees a place in the queue.
    run(
        make_uow,
        lambda uow: registrations.reject(
            uow, world.domain_admin, request_id(make_uow, "one@a.example")
        ),
    )
    submit(make_uow, "three@a.example")
    assert pending(make_uow, world.domain_admin) == ["two@a.example", "three@a.example"]


def test_a_pending_limit_of_zero_means_unlimited(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    set_domain(make_uow, world.superadmin, "a.example", registration_pending_limit=0)
    for index in range(25):
        submit(make_uow, f"person{index}@a.example")
    assert len(pending(make_uow, world.domain_admin)) == 25


def test_the_limit_of_one_domain_leaves_the_others_alone(
    world: World, make_uow: UowFactory, open_a: None, open_b: None
) -> None:
    set_domain(make_uow, world.superadmin, "a.example", registration_pending_limit=1)
    submit(make_uow, "one@a.example")
    submit(make_uow, "one@b.example")
    assert pending(make_uow, world.superadmin) == ["one@a.example", "one@b.example"]


# --- the domain's settings -------------------------------------------------------------------


def test_a_domain_admin_opens_registration_but_cannot_raise_its_limit(
    world: World, make_uow: UowFactory
) -> None:
    set_domain(make_uow, world.domain_admin, "a.example", registration_open=True)
    with make_uow() as uow, pytest.raises(PermissionDenied) as caught:
        domains.update(
            uow,
            world.domain_admin,
            "a.example",
            parse(DomainUpdate, {"registration_pending_limit": 1000}),
        )
    assert caught.value.permission == Permission.DOMAIN_ADMINISTER
    with make_uow() as uow:
        domain = domains.show(uow, world.domain_admin, "a.example").domain
    assert (domain.registration_open, domain.registration_pending_limit) == (True, 20)


def test_new_domains_are_closed_with_a_limit_of_twenty(make_uow: UowFactory) -> None:
    created = run(
        make_uow,
        lambda uow: domains.create(uow, OPERATOR, parse(DomainCreate, {"name": "n.example"})),
    )
    assert (created.registration_open, created.registration_pending_limit) == (False, 20)
    with pytest.raises(ValidationError) as caught:
        parse(DomainUpdate, {"registration_pending_limit": -1})
    assert caught.value.field == "registration_pending_limit"


# --- decisions -------------------------------------------------------------------------------


def test_approval_creates_a_mailbox_with_the_chosen_password(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    submit(make_uow, "new@a.example", name="New Person")
    ident = request_id(make_uow, "new@a.example")
    mailbox = run(make_uow, lambda uow: registrations.approve(uow, world.domain_admin, ident))
    assert (mailbox.address, mailbox.name, mailbox.active) == ("new@a.example", "New Person", True)
    # The domain's default quota, as for any new mailbox.
    assert mailbox.quota_bytes == 1024**3
    assert verify_password(CHOSEN, stored_hash(connection, "mailboxes", "new@a.example"))
    with make_uow() as uow:
        decided = registrations.get(uow, world.domain_admin, ident)
        assert mailboxes.get(uow, world.domain_admin, "new@a.example").address == "new@a.example"
    assert decided.status is RegistrationStatus.APPROVED
    assert decided.decided_by == "alice" and decided.decided_at is not None
    # No stale copy of the credential stays in the queue.
    assert stored_hash(connection, "registration_requests", "new@a.example") == ""
    assert pending(make_uow, world.domain_admin) == []


def test_approval_respects_max_mailboxes(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    # a.example allows 5 mailboxes and has 2.
    for index in range(4):
        submit(make_uow, f"person{index}@a.example")
    for index in range(3):
        ident = request_id(make_uow, f"person{index}@a.example")
        run(
            make_uow, lambda uow, ident=ident: registrations.approve(uow, world.domain_admin, ident)
        )
    last = request_id(make_uow, "person3@a.example")
    with make_uow() as uow, pytest.raises(LimitExceeded) as caught:
        registrations.approve(uow, world.domain_admin, last)
    assert caught.value.rule == "max_mailboxes"
    with make_uow() as uow:
        assert registrations.get(uow, world.domain_admin, last).status is RegistrationStatus.PENDING
        assert domains.mailbox_count(uow, domains.get(uow, OPERATOR, "a.example")) == 5


def test_approval_of_an_address_taken_meanwhile_is_refused(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    run(
        make_uow,
        lambda uow: mailboxes.create(
            uow, OPERATOR, parse(MailboxCreate, {"address": "new@a.example"}), password=PASSWORD
        ),
    )
    ident = request_id(make_uow, "new@a.example")
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        registrations.approve(uow, world.domain_admin, ident)
    assert caught.value.rule == "exists"


def test_a_request_is_rejected_with_a_reason(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    ident = request_id(make_uow, "new@a.example")
    rejected = run(
        make_uow, lambda uow: registrations.reject(uow, world.domain_admin, ident, "not a member")
    )
    assert (rejected.status, rejected.reason, rejected.decided_by) == (
        RegistrationStatus.REJECTED,
        "not a member",
        "alice",
    )
    assert stored_hash(connection, "registration_requests", "new@a.example") == ""
    with make_uow() as uow:
        listed = registrations.list_requests(uow, world.domain_admin, status="rejected").items
        assert [request.id for request in listed] == [ident]
        with pytest.raises(NotFound):
            mailboxes.get(uow, OPERATOR, "new@a.example")


@pytest.mark.parametrize(
    "decide",
    [
        pytest.param(
            lambda uow, actor, ident: registrations.approve(uow, actor, ident), id="approve"
        ),
        pytest.param(
            lambda uow, actor, ident: registrations.reject(uow, actor, ident), id="reject"
        ),
    ],
)
def test_a_decided_request_is_not_decided_again(
    decide: Callable[[UnitOfWork, Actor, int], Any],
    world: World,
    make_uow: UowFactory,
    open_a: None,
) -> None:
    submit(make_uow, "new@a.example")
    ident = request_id(make_uow, "new@a.example")
    run(make_uow, lambda uow: registrations.reject(uow, world.domain_admin, ident))
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        decide(uow, world.domain_admin, ident)
    assert (caught.value.field, caught.value.rule) == ("id", "decided")


@pytest.mark.parametrize(
    ("reason", "rule"), [("x" * 256, "too_long"), ("bad\x00reason", "control_character")]
)
def test_a_rejection_reason_follows_the_text_rules(
    reason: str, rule: str, world: World, make_uow: UowFactory, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    ident = request_id(make_uow, "new@a.example")
    with make_uow() as uow, pytest.raises(ValidationError) as caught:
        registrations.reject(uow, world.domain_admin, ident, reason)
    assert (caught.value.field, caught.value.rule) == ("reason", rule)


def test_a_dry_run_approval_changes_nothing(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    ident = request_id(make_uow, "new@a.example")
    with make_uow(dry_run=True) as uow:
        registrations.approve(uow, world.domain_admin, ident)
        plan = uow.finish()
    assert [(change.object_type, change.key) for change in plan] == [
        ("mailbox", "new@a.example"),
        ("registration", "new@a.example"),
    ]
    assert pending(make_uow, world.domain_admin) == ["new@a.example"]
    assert stored_hash(connection, "registration_requests", "new@a.example") != ""


# --- scope -----------------------------------------------------------------------------------


def test_a_domain_admin_never_sees_or_decides_another_domains_requests(
    world: World, make_uow: UowFactory, connection: Connection, open_a: None, open_b: None
) -> None:
    submit(make_uow, "mine@a.example")
    submit(make_uow, "theirs@b.example")
    foreign = request_id(make_uow, "theirs@b.example")
    alice = world.domain_admin
    assert pending(make_uow, alice) == ["mine@a.example"]
    assert pending(make_uow, world.outsider) == ["theirs@b.example"]
    with make_uow() as uow:
        with pytest.raises(NotFound) as caught:
            registrations.list_requests(uow, alice, domain="b.example")
        assert (caught.value.kind, caught.value.key) == ("domain", "b.example")
        for call in (registrations.get, registrations.approve, registrations.reject):
            with pytest.raises(NotFound) as missing:
                call(uow, alice, foreign)
            assert (missing.value.kind, missing.value.key) == ("registration", str(foreign))
    with make_uow() as uow:
        # Foreign and missing look the same.
        with pytest.raises(NotFound):
            registrations.get(uow, alice, foreign + 1000)
        assert registrations.get(uow, world.outsider, foreign).status is RegistrationStatus.PENDING
        with pytest.raises(NotFound):
            mailboxes.get(uow, OPERATOR, "theirs@b.example")


def test_a_mailbox_user_decides_nothing(world: World, make_uow: UowFactory, open_a: None) -> None:
    submit(make_uow, "new@a.example")
    ident = request_id(make_uow, "new@a.example")
    with make_uow() as uow:
        mailbox_id = uow.session.execute(
            text("SELECT id FROM mailboxes WHERE address = 'user1@a.example'")
        ).scalar_one()
        domain_id = domains.get(uow, OPERATOR, "a.example").id
    user = Actor(
        username="user1@a.example",
        role=Role.MAILBOX_USER,
        domain_ids=frozenset({domain_id}),
        channel=Channel.WEB,
        mailbox_id=mailbox_id,
    )
    with make_uow() as uow:
        with pytest.raises(PermissionDenied):
            registrations.list_requests(uow, user)
        with pytest.raises(PermissionDenied):
            registrations.approve(uow, user, ident)


def test_requests_are_listed_oldest_first_in_pages(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    for name in ("c", "a", "b"):
        submit(make_uow, f"{name}@a.example")
    with make_uow() as uow:
        first = registrations.list_requests(uow, world.domain_admin, limit=2)
        rest = registrations.list_requests(
            uow, world.domain_admin, limit=2, after=first.next_cursor
        )
        with pytest.raises(ValidationError) as caught:
            registrations.list_requests(uow, world.domain_admin, status="everything")
    assert [r.address for r in first.items] == ["c@a.example", "a@a.example"]
    assert [r.address for r in rest.items] == ["b@a.example"]
    assert rest.next_cursor is None
    assert (caught.value.field, caught.value.rule) == ("status", "unknown_status")


# --- audit -----------------------------------------------------------------------------------


def test_every_step_is_audited_without_secrets(
    world: World, make_uow: UowFactory, open_a: None
) -> None:
    submit(make_uow, "new@a.example")
    submit(make_uow, "other@a.example")
    run(
        make_uow,
        lambda uow: registrations.approve(
            uow, world.domain_admin, request_id(make_uow, "new@a.example")
        ),
    )
    run(
        make_uow,
        lambda uow: registrations.reject(
            uow, world.domain_admin, request_id(make_uow, "other@a.example"), "spam"
        ),
    )
    with make_uow() as uow:
        entries = audit.list_entries(uow, world.domain_admin, object_type="registration").items
        mailbox_entries = audit.list_entries(
            uow, world.domain_admin, object_key="new@a.example", object_type="mailbox"
        ).items
    steps = sorted((e.action, e.object_key, e.actor, e.channel) for e in entries)
    assert steps == [
        ("registration.approve", "new@a.example", "alice", "cli"),
        ("registration.reject", "other@a.example", "alice", "cli"),
        ("registration.submit", "new@a.example", "registration:new@a.example", "web"),
        ("registration.submit", "other@a.example", "registration:other@a.example", "web"),
    ]
    submitted = next(e for e in entries if e.action == "registration.submit")
    assert submitted.client_address == CLIENT
    assert submitted.domain == "a.example"
    assert [e.action for e in mailbox_entries] == ["mailbox.create"]
    everything = json.dumps([e.model_dump(mode="json") for e in [*entries, *mailbox_entries]])
    assert CHOSEN not in everything
    assert "SHA256-CRYPT}" not in everything and "$5$" not in everything
    assert "password_hash" not in everything


# --- the mailbox service's hash path ---------------------------------------------------------


@pytest.mark.parametrize(
    "secrets",
    [{}, {"password": PASSWORD, "password_hash": "{PLAIN}x"}, {"password_hash": "no scheme"}],
    ids=["neither", "both", "no-scheme"],
)
def test_mailbox_create_takes_exactly_one_well_formed_secret(
    secrets: dict[str, str], world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises((TypeError, ValueError)):
        mailboxes.create(uow, OPERATOR, parse(MailboxCreate, {"address": "x@a.example"}), **secrets)
