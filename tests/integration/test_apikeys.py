"""API keys through the service: tokens, authentication, narrowing, read-only keys, audit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select, text, update

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminUpdate
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.models import ApiKey
from mailwarden.apikeys.schemas import ApiKeyCreate, ApiKeyCreated
from mailwarden.audit import service as audit
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxUpdate
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)
CLIENT = "192.0.2.10"
NEW_PASSWORD = "a brand new passphrase"


# --- helpers ---------------------------------------------------------------------------------


def create_key(make_uow: UowFactory, actor: Actor = OPERATOR, **values: Any) -> ApiKeyCreated:
    with make_uow() as uow:
        created = apikeys.create(uow, actor, parse(ApiKeyCreate, values))
        uow.finish()
    return created


def acting(make_uow: UowFactory, token: str, client: str | None = CLIENT) -> Actor:
    """The Actor the token authenticates as (the last-use record is kept)."""
    with make_uow() as uow:
        actor = apikeys.authenticate(uow, token, client)
        uow.finish()
    return actor


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


def domain_id(make_uow: UowFactory, name: str) -> int:
    with make_uow() as uow:
        found = uow.session.scalar(select(Domain.id).where(Domain.name == name))
    assert found is not None
    return found


def set_key_column(make_uow: UowFactory, key_id: str, **values: Any) -> None:
    """Change a stored key directly: time travel for expiry and last-use tests."""
    run(
        make_uow,
        lambda uow: uow.session.execute(
            update(ApiKey).where(ApiKey.key_id == key_id).values(**values)
        ),
    )


def domain_names(make_uow: UowFactory, actor: Actor) -> list[str]:
    with make_uow() as uow:
        return [d.name for d in domains.list_domains(uow, actor).items]


def change_admin(make_uow: UowFactory, username: str, **changes: Any) -> None:
    run(
        make_uow,
        lambda uow: admins.update(uow, OPERATOR, username, parse(AdminUpdate, changes)),
    )


# --- the token -------------------------------------------------------------------------------


def test_the_token_is_shown_once_and_only_its_sha256_is_stored(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    created = create_key(make_uow, admin="alice", name="deploy")
    parsed = apikeys.parse_token(created.key)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == created.id
    row = connection.execute(
        text("SELECT * FROM api_keys WHERE key_id = :id"), {"id": key_id}
    ).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row)

    with make_uow() as uow:
        shown = [
            apikeys.get(uow, world.superadmin, key_id),
            *apikeys.list_keys(uow, world.superadmin).items,
        ]
        entries = audit.list_entries(uow, world.superadmin, limit=500).items
    for key in shown:
        dumped = key.model_dump_json()
        assert "key" not in type(key).model_fields
        assert secret not in dumped and created.key not in dumped
    logged = json.dumps([entry.model_dump(mode="json") for entry in entries])
    assert secret not in logged
    assert any(e.action == "api_key.create" and e.object_key == key_id for e in entries)


def test_tokens_differ_for_every_key(world: World, make_uow: UowFactory) -> None:
    tokens = {create_key(make_uow, admin="alice").key for _ in range(5)}
    assert len(tokens) == 5


def test_a_valid_token_acts_as_its_admin_through_the_api(
    world: World, make_uow: UowFactory
) -> None:
    created = create_key(make_uow, admin="alice")
    actor = acting(make_uow, created.key)
    assert (actor.username, actor.role, actor.channel) == ("alice", Role.DOMAIN_ADMIN, Channel.API)
    assert actor.domain_ids == {domain_id(make_uow, "a.example")}
    assert (actor.api_key, actor.client_address, actor.read_only) == (created.id, CLIENT, False)


def _wrong_secret(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    prefix, _, secret = created.key.rpartition("_")
    return f"{prefix}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


def _unknown_id(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    return created.key.replace(created.id, "0" * 12 if created.id != "0" * 12 else "1" * 12)


def _malformed(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    return created.key + "x"


def _revoked(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    run(make_uow, lambda uow: apikeys.revoke(uow, OPERATOR, created.id))
    return created.key


def _expired(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    set_key_column(make_uow, created.id, expires_at=utcnow() - timedelta(seconds=1))
    return created.key


def _inactive_admin(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    change_admin(make_uow, "alice", active=False)
    return created.key


def _removed_admin(make_uow: UowFactory, created: ApiKeyCreated) -> str:
    run(make_uow, lambda uow: admins.remove(uow, OPERATOR, "alice"))
    return created.key


@pytest.mark.parametrize(
    "spoil",
    [_wrong_secret, _unknown_id, _malformed, _revoked, _expired, _inactive_admin, _removed_admin],
    ids=lambda spoil: spoil.__name__.strip("_"),
)
def test_it_refuses_a_token_that_is_not_a_live_key_of_an_active_admin(
    spoil: Callable[[UowFactory, ApiKeyCreated], str], world: World, make_uow: UowFactory
) -> None:
    created = create_key(make_uow, admin="alice", expires_at="2100-01-01T00:00:00Z")
    token = spoil(make_uow, created)
    with make_uow() as uow, pytest.raises(apikeys.InvalidKey) as info:
        apikeys.authenticate(uow, token, CLIENT)
    # One answer for every reason: nothing tells a guesser which part was wrong.
    assert info.value.message == "not permitted: api-key (invalid, revoked or expired API key)"


def test_last_use_is_recorded_at_most_once_a_minute(world: World, make_uow: UowFactory) -> None:
    created = create_key(make_uow, admin="alice")
    assert (created.last_used_at, created.last_used_from) == (None, None)
    before = utcnow()
    acting(make_uow, created.key, "192.0.2.1")
    with make_uow() as uow:
        first = apikeys.get(uow, OPERATOR, created.id)
    assert first.last_used_at is not None and before <= first.last_used_at <= utcnow()
    assert first.last_used_from == "192.0.2.1"

    acting(make_uow, created.key, "192.0.2.2")
    with make_uow() as uow:
        again = apikeys.get(uow, OPERATOR, created.id)
    assert (again.last_used_at, again.last_used_from) == (first.last_used_at, "192.0.2.1")

    set_key_column(make_uow, created.id, last_used_at=first.last_used_at - timedelta(minutes=2))
    acting(make_uow, created.key, "192.0.2.3")
    with make_uow() as uow:
        later = apikeys.get(uow, OPERATOR, created.id)
    assert later.last_used_at is not None and later.last_used_at > first.last_used_at
    assert later.last_used_from == "192.0.2.3"


# --- narrowing -------------------------------------------------------------------------------


def test_a_narrowed_superadmin_key_acts_as_a_domain_admin_of_its_domains_only(
    world: World, make_uow: UowFactory
) -> None:
    created = create_key(make_uow, admin="root", domains=["a.example"])
    assert (created.narrowed, created.domains) == (True, ["a.example"])
    actor = acting(make_uow, created.key)
    assert actor.role is Role.DOMAIN_ADMIN
    assert actor.domain_ids == {domain_id(make_uow, "a.example")}
    assert domain_names(make_uow, actor) == ["a.example"]
    with make_uow() as uow:
        with pytest.raises(NotFound):
            mailboxes.get(uow, actor, "user1@b.example")
        with pytest.raises(PermissionDenied):
            domains.create(uow, actor, parse(DomainCreate, {"name": "new.example"}))
        with pytest.raises(PermissionDenied):
            admins.get(uow, actor, "alice")
        assert [a.username for a in admins.list_admins(uow, actor).items] == ["root"]
        assert {e.domain for e in audit.list_entries(uow, actor, limit=500).items} == {"a.example"}
        mailboxes.update(uow, actor, "user1@a.example", parse(MailboxUpdate, {"name": "Changed"}))


def test_a_narrowed_domain_admin_key_gets_the_intersection_with_what_its_admin_manages(
    world: World, make_uow: UowFactory
) -> None:
    change_admin(make_uow, "alice", add_domains=["b.example"])
    narrowed = create_key(make_uow, admin="alice", domains=["b.example"])
    whole = create_key(make_uow, admin="alice")
    assert domain_names(make_uow, acting(make_uow, narrowed.key)) == ["b.example"]
    assert domain_names(make_uow, acting(make_uow, whole.key)) == ["a.example", "b.example"]

    change_admin(make_uow, "alice", remove_domains=["b.example"])
    actor = acting(make_uow, narrowed.key)
    assert (actor.role, actor.domain_ids) == (Role.DOMAIN_ADMIN, frozenset())
    assert domain_names(make_uow, actor) == []
    assert domain_names(make_uow, acting(make_uow, whole.key)) == ["a.example"]


def test_a_key_whose_domains_were_all_deleted_sees_nothing(
    world: World, make_uow: UowFactory
) -> None:
    run(
        make_uow,
        lambda uow: domains.create(uow, OPERATOR, parse(DomainCreate, {"name": "c.example"})),
    )
    created = create_key(make_uow, admin="root", domains=["c.example"])
    run(make_uow, lambda uow: domains.remove(uow, OPERATOR, "c.example"))

    actor = acting(make_uow, created.key)
    assert (actor.role, actor.domain_ids) == (Role.DOMAIN_ADMIN, frozenset())
    assert domain_names(make_uow, actor) == []
    with make_uow() as uow:
        assert mailboxes.list_mailboxes(uow, actor).items == []
        assert audit.list_entries(uow, actor).items == []
        shown = apikeys.get(uow, OPERATOR, created.id)
        me = apikeys.whoami(uow, actor)
    assert (shown.narrowed, shown.domains) == (True, [])
    assert me.api_key is not None
    assert (me.all_domains, me.domains, me.api_key.narrowed) == (False, [], True)

    # Nor can it make a key that sees more.
    child = create_key(make_uow, actor)
    assert (child.narrowed, child.domains) == (True, [])
    assert domain_names(make_uow, acting(make_uow, child.key)) == []


def test_a_key_made_with_a_narrowed_key_stays_narrowed(world: World, make_uow: UowFactory) -> None:
    parent = create_key(make_uow, admin="root", domains=["a.example"])
    actor = acting(make_uow, parent.key)
    child = create_key(make_uow, actor, name="child")
    assert (child.admin, child.narrowed, child.domains) == ("root", True, ["a.example"])
    child_actor = acting(make_uow, child.key)
    assert (child_actor.role, domain_names(make_uow, child_actor)) == (
        Role.DOMAIN_ADMIN,
        ["a.example"],
    )
    with make_uow() as uow:
        with pytest.raises(NotFound):
            apikeys.create(uow, actor, parse(ApiKeyCreate, {"domains": ["b.example"]}))
        with pytest.raises(PermissionDenied):
            apikeys.create(uow, actor, parse(ApiKeyCreate, {"admin": "alice"}))


def test_a_key_made_with_a_narrowed_key_does_not_grow_with_its_admin(
    world: World, make_uow: UowFactory
) -> None:
    """Narrowed to everything its admin manages today is still narrowed tomorrow."""
    parent = create_key(make_uow, admin="alice", domains=["a.example"])
    child = create_key(make_uow, acting(make_uow, parent.key))
    change_admin(make_uow, "alice", add_domains=["b.example"])
    assert domain_names(make_uow, acting(make_uow, child.key)) == ["a.example"]
    assert domain_names(make_uow, acting(make_uow, parent.key)) == ["a.example"]


def test_a_key_made_with_an_expiring_key_never_outlives_it(
    world: World, make_uow: UowFactory
) -> None:
    ends = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    parent = create_key(make_uow, admin="alice", expires_at=ends.isoformat())
    actor = acting(make_uow, parent.key)
    assert create_key(make_uow, actor).expires_at == ends
    sooner = ends - timedelta(days=1)
    assert create_key(make_uow, actor, expires_at=sooner.isoformat()).expires_at == sooner
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apikeys.create(
            uow, actor, parse(ApiKeyCreate, {"expires_at": (ends + timedelta(days=1)).isoformat()})
        )
    assert (info.value.field, info.value.rule) == ("expires_at", "beyond_acting_key")


# --- who may do what -------------------------------------------------------------------------


def test_a_read_only_key_reads_but_cannot_change_anything(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    created = create_key(make_uow, admin="alice", read_only=True)
    actor = acting(make_uow, created.key)
    assert actor.read_only
    before = connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    with make_uow() as uow:
        assert mailboxes.get(uow, actor, "user1@a.example").address == "user1@a.example"
        assert apikeys.get(uow, actor, created.id).read_only
        changes: list[Callable[[], object]] = [
            lambda: mailboxes.update(
                uow, actor, "user1@a.example", parse(MailboxUpdate, {"name": "x"})
            ),
            lambda: apikeys.create(uow, actor, parse(ApiKeyCreate, {})),
            lambda: apikeys.revoke(uow, actor, created.id),
            lambda: admins.change_own_password(uow, actor, PASSWORD, NEW_PASSWORD),
        ]
        for change in changes:
            with pytest.raises(PermissionDenied):
                change()
    assert connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one() == before


@pytest.mark.parametrize("owner", ["bob", "root"])
def test_a_domain_admin_cannot_create_keys_for_others(
    owner: str, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(PermissionDenied):
        apikeys.create(uow, world.domain_admin, parse(ApiKeyCreate, {"admin": owner}))


def test_a_domain_admin_cannot_narrow_its_key_to_a_foreign_domain(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(NotFound):
        apikeys.create(uow, world.domain_admin, parse(ApiKeyCreate, {"domains": ["b.example"]}))
    own = create_key(make_uow, world.domain_admin, domains=["a.example"])
    assert (own.admin, own.domains, own.created_by) == ("alice", ["a.example"], "alice")


def test_a_domain_admins_key_cannot_be_narrowed_beyond_its_domains(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apikeys.create(
            uow, world.superadmin, parse(ApiKeyCreate, {"admin": "alice", "domains": ["b.example"]})
        )
    assert (info.value.field, info.value.rule) == ("domains[0]", "not_managed")


def test_an_admin_never_sees_another_admins_keys(world: World, make_uow: UowFactory) -> None:
    alices = create_key(make_uow, admin="alice")
    bobs = create_key(make_uow, admin="bob")
    with make_uow() as uow:
        assert [k.id for k in apikeys.list_keys(uow, world.domain_admin).items] == [alices.id]
        foreign_calls: list[Callable[[], object]] = [
            lambda: apikeys.get(uow, world.domain_admin, bobs.id),
            lambda: apikeys.revoke(uow, world.domain_admin, bobs.id),
        ]
        for foreign in foreign_calls:
            with pytest.raises(NotFound) as info:
                foreign()
            # Exactly what a missing key says.
            assert info.value.message == f"api_key not found: {bobs.id}"
        with pytest.raises(PermissionDenied):
            apikeys.list_keys(uow, world.domain_admin, admin="bob")
        everyone = {k.admin for k in apikeys.list_keys(uow, world.superadmin).items}
    assert everyone == {"alice", "bob"}


def test_a_key_cannot_set_its_admins_password_without_the_current_one(
    world: World, make_uow: UowFactory
) -> None:
    """Self-service with a key goes through change_own_password, which asks for the password:
    otherwise a narrowed superadmin key could make itself the superadmin."""
    narrowed_root = acting(make_uow, create_key(make_uow, admin="root", domains=["a.example"]).key)
    alice = acting(make_uow, create_key(make_uow, admin="alice").key)
    with make_uow() as uow:
        for actor, username in ((narrowed_root, "root"), (alice, "alice")):
            with pytest.raises(PermissionDenied):
                admins.set_password(uow, actor, username, NEW_PASSWORD)
        with pytest.raises(ValidationError) as info:
            admins.change_own_password(uow, alice, "not the password", NEW_PASSWORD)
        assert info.value.rule == "wrong_password"
        admins.change_own_password(uow, alice, PASSWORD, NEW_PASSWORD)
        # Reading one's own account stays allowed.
        assert admins.get(uow, narrowed_root, "root").username == "root"


def test_changes_made_with_a_key_carry_its_id_in_the_audit_log(
    world: World, make_uow: UowFactory
) -> None:
    created = create_key(make_uow, admin="alice")
    actor = acting(make_uow, created.key)
    run(
        make_uow,
        lambda uow: mailboxes.update(
            uow, actor, "user1@a.example", parse(MailboxUpdate, {"name": "Via key"})
        ),
    )
    run(make_uow, lambda uow: mailboxes.get(uow, world.superadmin, "user1@a.example"))
    with make_uow() as uow:
        entries = audit.list_entries(uow, world.superadmin, limit=500).items
    newest = entries[0]
    assert (newest.action, newest.actor, newest.channel, newest.api_key) == (
        "mailbox.update",
        "alice",
        "api",
        created.id,
    )
    assert newest.client_address == CLIENT
    assert all(entry.api_key is None for entry in entries[1:])
    _, secret = apikeys.parse_token(created.key) or ("", "")
    assert secret not in json.dumps([entry.model_dump(mode="json") for entry in entries])


# --- create, get, revoke, list ---------------------------------------------------------------


def test_revoking_a_key_refuses_it_at_once_and_twice_is_a_conflict(
    world: World, make_uow: UowFactory
) -> None:
    created = create_key(make_uow, admin="alice")
    alice = acting(make_uow, created.key)
    revoked = run(make_uow, lambda uow: apikeys.revoke(uow, alice, created.id))
    assert revoked.revoked_at is not None and not revoked.active
    with make_uow() as uow, pytest.raises(apikeys.InvalidKey):
        apikeys.authenticate(uow, created.key)
    with make_uow() as uow, pytest.raises(Conflict) as info:
        apikeys.revoke(uow, OPERATOR, created.id)
    assert info.value.rule == "already_revoked"
    with make_uow() as uow:
        entry = audit.list_entries(uow, OPERATOR, action="api_key.revoke").items[0]
    assert (entry.object_key, entry.api_key, entry.actor) == (created.id, created.id, "alice")


def test_listing_hides_revoked_and_expired_keys_unless_asked(
    world: World, make_uow: UowFactory
) -> None:
    live = create_key(make_uow, admin="alice", name="live")
    revoked = create_key(make_uow, admin="alice", name="revoked")
    expired = create_key(make_uow, admin="alice", name="expired")
    run(make_uow, lambda uow: apikeys.revoke(uow, OPERATOR, revoked.id))
    set_key_column(make_uow, expired.id, expires_at=utcnow() - timedelta(minutes=1))
    with make_uow() as uow:
        default = apikeys.list_keys(uow, OPERATOR, admin="alice").items
        every = apikeys.list_keys(uow, OPERATOR, admin="alice", include_inactive=True).items
    assert [k.name for k in default] == ["live"]
    assert {k.name: k.active for k in every} == {"live": True, "revoked": False, "expired": False}
    assert [k.id for k in every] == sorted([live.id, revoked.id, expired.id])


def test_listing_pages_by_key_id(world: World, make_uow: UowFactory) -> None:
    ids = sorted(create_key(make_uow, admin="bob").id for _ in range(3))
    with make_uow() as uow:
        first = apikeys.list_keys(uow, OPERATOR, admin="bob", limit=2)
        second = apikeys.list_keys(uow, OPERATOR, admin="bob", limit=2, after=first.next_cursor)
    assert [k.id for k in first.items] == ids[:2]
    assert first.next_cursor == ids[1]
    assert ([k.id for k in second.items], second.next_cursor) == (ids[2:], None)


@pytest.mark.parametrize(
    ("values", "field", "rule"),
    [
        ({"admin": "alice", "expires_at": "2100-01-01T00:00:00"}, "expires_at", "naive_datetime"),
        ({"admin": "alice", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at", "in_past"),
        ({}, "admin", "required"),
        ({"admin": "Not A Name"}, "admin", "whitespace"),
        ({"admin": "alice", "domains": ["not a domain"]}, "domains[0]", None),
        ({"admin": "alice", "name": "nul\x00"}, "name", "control_character"),
        # Refused already as input: not text at all.
        ({"admin": "alice", "name": "lone \ud800"}, "name", "string_unicode"),
        (
            {"admin": "alice", "expires_at": "0001-01-01T00:00:00+01:00"},
            "expires_at",
            "out_of_range",
        ),
    ],
    ids=[
        "naive-expiry",
        "past-expiry",
        "no-admin",
        "bad-admin",
        "bad-domain",
        "nul-in-name",
        "surrogate-in-name",
        "beyond-the-calendar",
    ],
)
def test_it_refuses_invalid_key_requests(
    values: dict[str, Any], field: str, rule: str | None, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, values))
    assert info.value.field == field
    if rule is not None:
        assert info.value.rule == rule


def test_keys_are_only_made_for_active_admins_that_exist(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(NotFound):
        apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, {"admin": "nobody"}))
    change_admin(make_uow, "bob", active=False)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, {"admin": "bob"}))
    assert info.value.rule == "inactive_admin"


@pytest.mark.parametrize("key_id", ["nothex", "ABCDEF012345", "0123456789abc"])
def test_a_malformed_key_id_is_refused_as_input(
    key_id: str, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        apikeys.get(uow, OPERATOR, key_id)
    assert (info.value.field, info.value.rule) == ("id", "invalid_key_id")


def test_an_expiry_is_kept_in_utc(world: World, make_uow: UowFactory) -> None:
    created = create_key(make_uow, admin="alice", expires_at="2100-06-30T18:00:00+02:00")
    with make_uow() as uow:
        shown = apikeys.get(uow, OPERATOR, created.id)
    assert shown.expires_at == datetime(2100, 6, 30, 16, 0, tzinfo=UTC)
    # The answer to the create says it the same way every later read does.
    assert created.model_dump(mode="json")["expires_at"] == "2100-06-30T16:00:00Z"


# --- whoami ----------------------------------------------------------------------------------


def test_whoami_tells_the_actor_its_reach_and_key(world: World, make_uow: UowFactory) -> None:
    narrowed = create_key(make_uow, admin="root", domains=["b.example"], read_only=True)
    with make_uow() as uow:
        root = apikeys.whoami(uow, world.superadmin)
        alice = apikeys.whoami(uow, world.domain_admin)
        via_key = apikeys.whoami(uow, acting(make_uow, narrowed.key))
    assert (root.username, root.role, root.all_domains, root.domains, root.api_key) == (
        "root",
        Role.SUPERADMIN,
        True,
        [],
        None,
    )
    assert (alice.role, alice.all_domains, alice.domains) == (
        Role.DOMAIN_ADMIN,
        False,
        ["a.example"],
    )
    assert (via_key.username, via_key.role, via_key.domains, via_key.read_only) == (
        "root",
        Role.DOMAIN_ADMIN,
        ["b.example"],
        True,
    )
    assert via_key.api_key is not None
    assert via_key.api_key.model_dump() == {
        "id": narrowed.id,
        "name": "",
        "read_only": True,
        "narrowed": True,
        "domains": ["b.example"],
        "expires_at": None,
    }
