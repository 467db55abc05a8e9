"""Administrators through the service: roles, domains, passwords, self-protection and login."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate, AdminPublic, AdminUpdate
from mailwarden.audit import service as audit
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.passwords import scheme_of
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World

OPERATOR = Actor.local_operator(Channel.SYSTEM)
NEW_PASSWORD = "a brand new passphrase"
# "{SCHEME}" prefixes and crypt(3) markers: what any stored hash contains.
HASH_TEXT = re.compile(r"\{[A-Z0-9.-]+\}|\$(?:1|2[aby]|5|6|argon2id?|pbkdf2)\$", re.IGNORECASE)


def create(
    uow: UnitOfWork,
    actor: Actor,
    username: str,
    role: Role = Role.DOMAIN_ADMIN,
    domains: list[str] | None = None,
    password: str = PASSWORD,
    **extra: Any,
) -> AdminPublic:
    if domains is None:
        domains = ["a.example"] if role is Role.DOMAIN_ADMIN else []
    data = parse(AdminCreate, {"username": username, "role": role, "domains": domains, **extra})
    return admins.create(uow, actor, data, password=password)


def update(uow: UnitOfWork, actor: Actor, username: str, **changes: Any) -> AdminPublic:
    return admins.update(uow, actor, username, parse(AdminUpdate, changes))


def stored_hash(connection: Connection, username: str) -> str:
    return connection.execute(
        text("SELECT password_hash FROM admins WHERE username = :u"), {"u": username}
    ).scalar_one()


def admin_rows(connection: Connection) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(row)
        for row in connection.execute(
            text("SELECT username, role, password_hash, active FROM admins")
        )
    )


def audit_count(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


# --- create ----------------------------------------------------------------------------------


def test_it_creates_a_superadmin_and_a_domain_admin(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        carol = create(uow, world.superadmin, "carol", Role.SUPERADMIN)
        dave = create(
            uow, world.superadmin, "dave", domains=["b.example", "A.example", "a.example"]
        )
        uow.finish()
    assert (carol.username, carol.role, carol.domains, carol.active) == (
        "carol",
        Role.SUPERADMIN,
        [],
        True,
    )
    assert (dave.role, dave.domains) == (Role.DOMAIN_ADMIN, ["a.example", "b.example"])
    with make_uow() as uow:
        actor = admins.actor_for(uow, "dave", Channel.API, "192.0.2.1")
        entries = audit.list_entries(
            uow, world.superadmin, object_type="admin", action="admin.create"
        )
    assert actor.role is Role.DOMAIN_ADMIN
    assert actor.domain_ids == world.domain_admin.domain_ids | world.outsider.domain_ids
    assert (actor.channel, actor.client_address) == (Channel.API, "192.0.2.1")
    assert [(e.object_key, e.actor, e.domain) for e in entries.items[:2]] == [
        ("dave", "root", None),
        ("carol", "root", None),
    ]
    assert entries.items[0].after == {
        "username": "dave",
        "role": "domain-admin",
        "domains": ["a.example", "b.example"],
        "active": True,
    }
    assert stored_hash(connection, "dave").startswith("{SHA256-CRYPT}$5$")


@pytest.mark.parametrize(
    ("role", "domains", "field", "rule"),
    [
        (Role.SUPERADMIN, ["a.example"], "domains", "not_for_superadmin"),
        (Role.DOMAIN_ADMIN, [], "domains", "required"),
        (Role.DOMAIN_ADMIN, ["a.example", "bad_domain.example"], "domains[1]", "invalid_character"),
    ],
    ids=["superadmin-with-domains", "domain-admin-without-domains", "invalid-domain"],
)
def test_it_refuses_wrong_domains_for_the_role(
    role: Role,
    domains: list[str],
    field: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    before = admin_rows(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, "carol", role, domains)
    assert (info.value.field, info.value.rule) == (field, rule)
    assert admin_rows(connection) == before


def test_it_refuses_an_unknown_domain(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow, pytest.raises(NotFound) as info:
        create(uow, world.superadmin, "carol", domains=["missing.example"])
    assert (info.value.kind, info.value.key) == ("domain", "missing.example")


@pytest.mark.parametrize("username", ["alice", "ALICE", "Alice"])
def test_it_refuses_a_duplicate_username(
    username: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = admin_rows(connection)
    with make_uow() as uow, pytest.raises(Conflict) as info:
        create(uow, world.superadmin, username, Role.SUPERADMIN)
    assert (info.value.field, info.value.rule) == ("username", "exists")
    assert admin_rows(connection) == before


@pytest.mark.parametrize(
    ("username", "rule"),
    [
        ("", "required"),
        (" carol", "whitespace"),
        ("carol ", "whitespace"),
        ("car ol", "whitespace"),
        ("car\tol", "whitespace"),
        ("carol\n", "whitespace"),
        ("car\u00a0ol", "whitespace"),
        ("car/ol", "invalid_username"),
        ("carol;id", "invalid_username"),
        ("-carol", "invalid_username"),
        (".carol", "invalid_username"),
        ("caröl", "invalid_username"),
        ("car\x00ol", "invalid_username"),
        ("c" * 255, "invalid_username"),
    ],
)
def test_it_applies_the_username_rules(
    username: str, rule: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = admin_rows(connection)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, username, Role.SUPERADMIN)
    assert (info.value.field, info.value.rule) == ("username", rule)
    assert admin_rows(connection) == before


def test_it_stores_usernames_lowercase(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        admin = create(uow, world.superadmin, "Carol.Smith+ops@Example.ORG", Role.SUPERADMIN)
        uow.finish()
    assert admin.username == "carol.smith+ops@example.org"
    with make_uow() as uow:
        fetched = admins.get(uow, world.superadmin, "CAROL.SMITH+OPS@example.org")
        actor = admins.authenticate(uow, "Carol.Smith+Ops@EXAMPLE.org", PASSWORD, Channel.WEB)
    assert actor.username == fetched.username == "carol.smith+ops@example.org"


# --- the password policy ---------------------------------------------------------------------

BAD_PASSWORDS = [
    pytest.param("", "required", id="empty"),
    pytest.param("short", "too_short", id="too-short"),
    pytest.param("long enough\x00but NUL", "forbidden_character", id="nul"),
    pytest.param("long enough\rbut CR", "forbidden_character", id="cr"),
    pytest.param("long enough\nbut LF", "forbidden_character", id="lf"),
    pytest.param("x" * 257, "too_long", id="too-long"),
    pytest.param(
        "{SHA256-CRYPT}$5$abcdefghijklmnop$" + "a" * 43, "looks_like_hash", id="stored-hash"
    ),
]


@pytest.mark.parametrize(("password", "rule"), BAD_PASSWORDS)
def test_it_applies_the_password_policy_on_create(
    password: str, rule: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = (admin_rows(connection), audit_count(connection))
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        create(uow, world.superadmin, "carol", Role.SUPERADMIN, password=password)
    assert (info.value.field, info.value.rule) == ("password", rule)
    assert (admin_rows(connection), audit_count(connection)) == before


@pytest.mark.parametrize(("password", "rule"), BAD_PASSWORDS)
@pytest.mark.parametrize("persona", ["superadmin", "domain_admin"])
def test_it_applies_the_password_policy_on_set_password(
    persona: str,
    password: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    before = (admin_rows(connection), audit_count(connection))
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        admins.set_password(
            uow,
            world.superadmin if persona == "superadmin" else world.domain_admin,
            "alice",
            password,
        )
    assert (info.value.field, info.value.rule) == ("password", rule)
    assert (admin_rows(connection), audit_count(connection)) == before


def test_it_accepts_any_other_unicode_password(world: World, make_uow: UowFactory) -> None:
    password = "pässwörd ✓ 🔐\t\u043f\u0430\u0440\u043e\u043b\u044c"  # Cyrillic "parol"
    with make_uow() as uow:
        admins.set_password(uow, world.domain_admin, "alice", password)
        uow.finish()
    with make_uow() as uow:
        assert admins.authenticate(uow, "alice", password, Channel.WEB).username == "alice"


# --- secrets never leave -------------------------------------------------------------------


def test_hashes_never_reach_public_objects_plans_or_audit_entries(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    assert not {"password", "password_hash"} & set(AdminPublic.model_fields)
    with make_uow() as uow:
        public = [create(uow, world.superadmin, "carol", Role.SUPERADMIN)]
        admins.set_password(uow, world.superadmin, "carol", NEW_PASSWORD)
        admins.set_password(uow, world.domain_admin, "alice", NEW_PASSWORD)
        public.append(update(uow, world.superadmin, "carol", active=False))
        public.append(admins.get(uow, world.superadmin, "carol"))
        public += admins.list_admins(uow, world.superadmin).items
        admins.remove(uow, world.superadmin, "carol")
        plan = uow.finish()
    hashes = [stored_hash(connection, name) for name in ("root", "alice", "bob")]
    texts = [json.dumps(admin.model_dump(mode="json")) for admin in public]
    texts += [json.dumps(change.as_dict()) for change in plan]
    for before, after in connection.execute(select(AuditEntry.before, AuditEntry.after)):
        for value in (before, after):
            texts.append(value if isinstance(value, str) or value is None else json.dumps(value))
    texts = [t for t in texts if t]
    assert len(texts) > 10
    for piece in texts:
        assert not HASH_TEXT.search(piece), piece
        assert not any(h in piece or h.split("}", 1)[1] in piece for h in hashes), piece
        assert PASSWORD not in piece
        assert NEW_PASSWORD not in piece


# --- edits -----------------------------------------------------------------------------------


def test_it_adds_and_removes_domains(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        added = update(uow, world.superadmin, "alice", add_domains=["B.example"])
        removed = update(uow, world.superadmin, "alice", remove_domains=["a.example"])
        uow.finish()
    assert added.domains == ["a.example", "b.example"]
    assert removed.domains == ["b.example"]
    with make_uow() as uow:
        assert admins.actor_for(uow, "alice", Channel.CLI).domain_ids == world.outsider.domain_ids
        entries = audit.list_entries(uow, world.superadmin, action="admin.update").items
    assert [(e.before or {}).get("domains") for e in reversed(entries)] == [
        ["a.example"],
        ["a.example", "b.example"],
    ]
    assert [(e.after or {}).get("domains") for e in reversed(entries)] == [
        ["a.example", "b.example"],
        ["b.example"],
    ]


@pytest.mark.parametrize(
    ("username", "changes", "field", "rule"),
    [
        ("alice", {"remove_domains": ["b.example"]}, "remove_domains", "not_managed"),
        ("alice", {"remove_domains": ["a.example"]}, "domains", "required"),
        (
            "alice",
            {"role": Role.SUPERADMIN, "add_domains": ["b.example"]},
            "add_domains",
            "not_for_superadmin",
        ),
        ("root", {"add_domains": ["a.example"]}, "add_domains", "not_for_superadmin"),
        ("carol", {"role": Role.DOMAIN_ADMIN}, "domains", "required"),
    ],
    ids=["not-managed", "last-domain", "promote-with-domains", "superadmin-domains", "demote-bare"],
)
def test_it_refuses_inconsistent_role_and_domain_edits(
    username: str,
    changes: dict[str, Any],
    field: str,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "carol", Role.SUPERADMIN)
        uow.finish()
    before = (admin_rows(connection), audit_count(connection))
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        update(uow, world.superadmin, username, **changes)
    assert (info.value.field, info.value.rule) == (field, rule)
    assert (admin_rows(connection), audit_count(connection)) == before


def test_it_promotes_and_demotes(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        promoted = update(uow, world.superadmin, "alice", role=Role.SUPERADMIN)
        uow.finish()
    assert (promoted.role, promoted.domains) == (Role.SUPERADMIN, [])
    assert (
        connection.execute(
            text(
                "SELECT COUNT(*) FROM admin_domains JOIN admins ON admins.id = admin_id"
                " WHERE username = 'alice'"
            )
        ).scalar_one()
        == 0
    )
    with make_uow() as uow:
        actor = admins.actor_for(uow, "alice", Channel.CLI)
        demoted = update(
            uow, world.superadmin, "alice", role=Role.DOMAIN_ADMIN, add_domains=["b.example"]
        )
        uow.finish()
    assert actor.is_superadmin
    assert (demoted.role, demoted.domains) == (Role.DOMAIN_ADMIN, ["b.example"])


def test_it_removes_an_admin(world: World, make_uow: UowFactory, connection: Connection) -> None:
    with make_uow() as uow:
        admins.remove(uow, world.superadmin, "Bob")
        uow.finish()
    assert [row[0] for row in admin_rows(connection)] == ["alice", "root"]
    assert (
        connection.execute(
            text("SELECT COUNT(*) FROM admin_domains WHERE admin_id = :i"),
            {"i": world.outsider.admin_id},
        ).scalar_one()
        == 0
    )
    with make_uow() as uow:
        with pytest.raises(NotFound):
            admins.get(uow, world.superadmin, "bob")
        with pytest.raises(NotFound):
            admins.actor_for(uow, "bob", Channel.CLI)
        entry = audit.list_entries(uow, world.superadmin, action="admin.delete").items[0]
    assert (entry.object_key, entry.after) == ("bob", None)
    assert entry.before is not None
    assert entry.before["domains"] == ["b.example"]


# --- the last superadmin and the admin itself ------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (lambda uow, actor: admins.remove(uow, actor, "root"), "username"),
        (lambda uow, actor: update(uow, actor, "root", active=False), "active"),
        (
            lambda uow, actor: update(
                uow, actor, "root", role=Role.DOMAIN_ADMIN, add_domains=["a.example"]
            ),
            "role",
        ),
    ],
    ids=["remove", "deactivate", "demote"],
)
@pytest.mark.parametrize("other_superadmin", [None, "inactive"], ids=["alone", "other-inactive"])
def test_the_last_active_superadmin_stays(
    action: Any,
    field: str,
    other_superadmin: str | None,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    if other_superadmin:
        with make_uow() as uow:
            create(uow, world.superadmin, "carol", Role.SUPERADMIN, active=False)
            uow.finish()
    before = (admin_rows(connection), audit_count(connection))
    with make_uow() as uow, pytest.raises(Conflict) as info:
        action(uow, OPERATOR)
    assert (info.value.field, info.value.rule) == (field, "last_superadmin")
    assert (admin_rows(connection), audit_count(connection)) == before


def test_a_superadmin_may_go_while_another_is_active(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "carol", Role.SUPERADMIN)
        update(uow, OPERATOR, "root", active=False)
        update(uow, OPERATOR, "root", active=True)
        admins.remove(uow, OPERATOR, "root")
        uow.finish()
    with make_uow() as uow, pytest.raises(Conflict) as info:
        admins.remove(uow, OPERATOR, "carol")
    assert info.value.rule == "last_superadmin"


@pytest.mark.parametrize(
    ("action", "field", "rule"),
    [
        (lambda uow, actor: admins.remove(uow, actor, "root"), "username", "self_removal"),
        (
            lambda uow, actor: update(
                uow, actor, "ROOT", role=Role.DOMAIN_ADMIN, add_domains=["a.example"]
            ),
            "role",
            "self_demotion",
        ),
        (lambda uow, actor: update(uow, actor, "root", active=False), None, "self_demotion"),
    ],
    ids=["remove", "demote", "deactivate"],
)
def test_an_admin_cannot_remove_or_demote_itself(
    action: Any,
    field: str | None,
    rule: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    # With another active superadmin, so that only the self rule can refuse.
    with make_uow() as uow:
        create(uow, world.superadmin, "carol", Role.SUPERADMIN)
        uow.finish()
    before = (admin_rows(connection), audit_count(connection))
    with make_uow() as uow, pytest.raises(Conflict) as info:
        action(uow, world.superadmin)
    assert info.value.rule == rule
    if field:
        assert info.value.field == field
    assert (admin_rows(connection), audit_count(connection)) == before


def test_domain_admin_may_set_its_own_password_only(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    with make_uow() as uow:
        admins.set_password(uow, world.domain_admin, "Alice", NEW_PASSWORD)
        uow.finish()
    with make_uow() as uow:
        assert admins.authenticate(uow, "alice", NEW_PASSWORD, Channel.WEB).username == "alice"
        with pytest.raises(PermissionDenied):
            admins.authenticate(uow, "alice", PASSWORD, Channel.WEB)
        entry = audit.list_entries(uow, world.superadmin, action="admin.password").items[0]
    assert (entry.actor, entry.object_key) == ("alice", "alice")
    before = (admin_rows(connection), audit_count(connection))
    for other in ("bob", "root"):
        with make_uow() as uow, pytest.raises(PermissionDenied):
            admins.set_password(uow, world.domain_admin, other, NEW_PASSWORD)
    assert (admin_rows(connection), audit_count(connection)) == before


def test_domain_admin_sees_only_itself(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        own = admins.get(uow, world.domain_admin, "alice")
        listed = admins.list_admins(uow, world.domain_admin)
        searched = admins.list_admins(uow, world.domain_admin, search="bob")
        with pytest.raises(PermissionDenied):
            admins.get(uow, world.domain_admin, "bob")
    assert (own.username, own.domains) == ("alice", ["a.example"])
    assert [a.username for a in listed.items] == ["alice"]
    assert searched.items == []


# --- authenticate ----------------------------------------------------------------------------


def test_it_authenticates_with_the_right_password(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        actor = admins.authenticate(uow, "alice", PASSWORD, Channel.WEB, "198.51.100.7")
    assert actor == Actor(
        username="alice",
        role=Role.DOMAIN_ADMIN,
        domain_ids=world.domain_admin.domain_ids,
        channel=Channel.WEB,
        admin_id=world.domain_admin.admin_id,
        client_address="198.51.100.7",
    )


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong password"),
        ("alice", ""),
        ("alice", PASSWORD + " "),
        ("inactive", PASSWORD),
        ("nobody", PASSWORD),
        ("not a username", PASSWORD),
        ("", PASSWORD),
    ],
    ids=["wrong", "empty", "suffix", "inactive", "unknown", "invalid-username", "no-username"],
)
def test_it_refuses_login_uniformly(
    username: str, password: str, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        create(uow, world.superadmin, "inactive", domains=["a.example"], active=False)
        uow.finish()
    with make_uow() as uow, pytest.raises(PermissionDenied) as info:
        admins.authenticate(uow, username, password, Channel.WEB)
    assert (info.value.permission, info.value.reason) == ("login", "wrong username or password")
    assert info.value.message == "not permitted: login (wrong username or password)"


def test_it_upgrades_the_hash_to_the_configured_scheme(
    world: World, make_uow: UowFactory, connection: Connection, settings: Settings
) -> None:
    sha512 = settings.model_copy(update={"password_scheme": "SHA512-CRYPT"})
    old = stored_hash(connection, "alice")
    assert str(scheme_of(old)) == "SHA256-CRYPT"
    # A failed login changes nothing.
    with make_uow() as uow:
        uow.settings = sha512
        with pytest.raises(PermissionDenied):
            admins.authenticate(uow, "alice", "wrong password", Channel.WEB)
        uow.finish()
    assert stored_hash(connection, "alice") == old
    # The same scheme keeps the hash.
    with make_uow() as uow:
        admins.authenticate(uow, "alice", PASSWORD, Channel.WEB)
        uow.finish()
    assert stored_hash(connection, "alice") == old
    # Another configured scheme: upgraded at the next successful login.
    with make_uow() as uow:
        uow.settings = sha512
        admins.authenticate(uow, "alice", PASSWORD, Channel.WEB)
        uow.finish()
    new = stored_hash(connection, "alice")
    assert new.startswith("{SHA512-CRYPT}$6$")
    with make_uow() as uow:
        uow.settings = sha512
        assert admins.authenticate(uow, "alice", PASSWORD, Channel.WEB).username == "alice"
        with pytest.raises(PermissionDenied):
            admins.authenticate(uow, "alice", "wrong password", Channel.WEB)
        uow.finish()
    assert stored_hash(connection, "alice") == new


def test_a_stored_hash_never_authenticates(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    stored = stored_hash(connection, "root")
    body = stored.split("}", 1)[1]
    for candidate in (stored, body, stored.lower(), "{CLEAR}" + PASSWORD, "{PLAIN}" + PASSWORD):
        with make_uow() as uow, pytest.raises(PermissionDenied):
            admins.authenticate(uow, "root", candidate, Channel.WEB)
    with make_uow() as uow, pytest.raises(ValidationError) as info:
        admins.set_password(uow, world.superadmin, "alice", stored)
    assert (info.value.field, info.value.rule) == ("password", "looks_like_hash")
