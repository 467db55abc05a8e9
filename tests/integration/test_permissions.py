"""The authorization matrix over the services, and the scoping rules every read obeys.

Each cell of the matrix is one test: an operation (one service function), a persona with the
domain whose objects it acts on, and the outcome: allowed, PermissionDenied or NotFound. A
refused call changes nothing (every table is compared before and after); an allowed mutation
writes an audit entry. A completeness check fails the suite when a service grows a public
function that has no row here.

Speed: the matrix has a few hundred cells per backend, and building the world costs about a
tenth of a second. So this module builds the world once per backend, inside an outer transaction
of its own, and wraps every test in a SAVEPOINT that is rolled back afterwards: the fixtures
`connection`, `settings` and `world` are overridden below, and `make_uow` from conftest binds to
them unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pyotp
import pytest
from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.orm import Session

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate, AdminUpdate
from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate, AliasUpdate
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate
from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.audit import service as audit
from mailwarden.audit.schemas import AuditEntryPublic
from mailwarden.deploy import service as deploy
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.domains.schemas import DomainCreate, DomainUpdate
from mailwarden.forwarding import service as forwarding
from mailwarden.forwarding.schemas import ForwardSet
from mailwarden.health import service as health
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate, HostUpdate
from mailwarden.inventory import service as inventory
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import (
    Conflict,
    MailwardenError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.logs import service as logs
from mailwarden.mailboxes import selfservice
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from mailwarden.maintenance import service as maintenance
from mailwarden.queue import service as queue
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationSubmit
from mailwarden.settings import Settings
from mailwarden.stack import config as stack_config
from mailwarden.stack.target import DeployTarget
from mailwarden.twofactor import service as twofactor
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import VacationSet
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World, build_world

NEW_PASSWORD = "another fine password"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
OPERATOR = Actor.local_operator(Channel.SYSTEM)
# Every table the services write; a refused call must leave each one as it was.
TABLES = (
    "domains",
    "mailboxes",
    "aliases",
    "alias_domains",
    "admins",
    "admin_domains",
    "audit_log",
    "vacations",
    "forwards",
    "quota_usage",
    "api_keys",
    "api_key_domains",
    "app_passwords",
    "totp_enrolments",
    "recovery_codes",
    "registration_requests",
)


# --- one world per backend and module, one savepoint per test ----------------------------------


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("permissions")
    (data_dir / "mail").mkdir()
    return Settings(data_dir=data_dir, mail_root=data_dir / "mail", password_scheme="SHA256-CRYPT")


@pytest.fixture(scope="module")
def module_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            outer.rollback()


@pytest.fixture(scope="module")
def module_world(module_connection: Connection, module_settings: Settings) -> World:
    def factory(*, dry_run: bool = False) -> UnitOfWork:
        session = Session(
            bind=module_connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )
        return UnitOfWork(session, module_settings, dry_run=dry_run)

    world = build_world(factory)
    # Objects the world lacks: an alias domain per domain, and an admin per domain who is
    # not a persona (so that admin operations never act on the actor itself).
    with factory() as uow:
        for domain in ("a.example", "b.example"):
            alias_domains.create(
                uow,
                OPERATOR,
                parse(
                    AliasDomainCreate,
                    {"alias_domain": f"alias-{domain}", "target_domain": domain},
                ),
            )
        for username, domain in (("carol", "a.example"), ("dave", "b.example")):
            admins.create(
                uow,
                OPERATOR,
                parse(
                    AdminCreate,
                    {"username": username, "role": Role.DOMAIN_ADMIN, "domains": [domain]},
                ),
                password=PASSWORD,
            )
        # A key of each domain's persona admin, for the key operations to find.
        for owner in ("alice", "bob"):
            apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, {"admin": owner}))
        # A pending registration request per domain. Opened with SQL rather than through
        # domains.update, so the domain audit expectations below stay those of the world.
        uow.session.execute(update(Domain).values(registration_open=True))
        for domain in ("a.example", "b.example"):
            registrations.submit(
                uow,
                parse(
                    RegistrationSubmit,
                    {"address": f"newcomer@{domain}", "name": "Newcomer", "password": PASSWORD},
                ),
                client_address=None,
            )
        uow.finish()
    return world


@pytest.fixture
def settings(module_settings: Settings) -> Settings:
    return module_settings


@pytest.fixture
def connection(module_connection: Connection, module_world: World) -> Iterator[Connection]:
    savepoint = module_connection.begin_nested()
    try:
        yield module_connection
    finally:
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture
def world(module_world: World, connection: Connection) -> World:
    return module_world


# --- helpers ---------------------------------------------------------------------------------


def fingerprint(connection: Connection) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text: equal fingerprints mean nothing changed."""
    return {
        table: sorted(
            tuple(str(value) for value in row)
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        )
        for table in TABLES
    }


def audit_count(connection: Connection) -> int:
    return connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()


def as_operator(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> None:
    with make_uow() as uow:
        call(uow)
        uow.finish()


# --- the matrix ------------------------------------------------------------------------------

OK = "allowed"
DENIED = "PermissionDenied"
NOT_FOUND = "NotFound"
CONFLICT = "Conflict"
ERRORS: dict[str, type[MailwardenError]] = {
    DENIED: PermissionDenied,
    NOT_FOUND: NotFound,
    CONFLICT: Conflict,
}
AWAY = VacationSet(subject="Away", body="Back on Monday.")
ELSEWHERE = ForwardSet(targets=["user2@elsewhere.example"])
PHONE = AppPasswordCreate(name="phone")


@dataclass(frozen=True)
class Cell:
    """A persona acting on the objects of one domain."""

    name: str
    persona: str
    domain: str


CELLS = (
    Cell("superadmin", "superadmin", "a.example"),
    Cell("domain_admin", "domain_admin", "a.example"),
    # The domain admin of a.example, on b.example's objects.
    Cell("foreign", "domain_admin", "b.example"),
    # The domain admin of b.example, on a.example's objects.
    Cell("outsider", "outsider", "a.example"),
)

# Expected outcomes, in the order of CELLS.
SYSTEM = (OK, DENIED, DENIED, DENIED)  # superadmins only; nobody else learns anything
SCOPED = (OK, OK, NOT_FOUND, NOT_FOUND)  # a domain admin inside its domains
SUPER_ON_KEY = (OK, DENIED, NOT_FOUND, NOT_FOUND)  # superadmins only; foreign stays unseen
EVERYONE = (OK, OK, OK, OK)  # lists that scope what they return
# Superadmins only, on a host the world does not have: the permission is checked first.
SYSTEM_HOST = (NOT_FOUND, DENIED, DENIED, DENIED)
MISSING_HOST = "missing-host"


def _admin_of(domain: str) -> str:
    """The admin (not a persona) who manages `domain`; a missing one for other domains."""
    return {"a.example": "carol", "b.example": "dave"}.get(domain, "nobody")


def _key_owner_of(domain: str) -> str:
    """The persona admin of `domain`: keys are every admin's own business, so the domain
    admin's cell acts on its own key."""
    return {"a.example": "alice", "b.example": "bob"}.get(domain, "nobody")


def _request_of(uow: UnitOfWork, domain: str) -> int:
    """The id of `domain`'s pending registration request (module_world); an unused id for
    other domains."""
    if domain not in {"a.example", "b.example"}:
        return 2**31 - 1
    return registrations.list_requests(uow, OPERATOR, domain=domain).items[0].id


def _enrol(uow: UnitOfWork, actor: Actor) -> tuple[str, list[str]]:
    """Give `actor` a confirmed second factor: its secret and recovery codes."""
    secret = twofactor.begin_enrolment(uow, actor).secret
    return secret, twofactor.confirm_enrolment(uow, actor, pyotp.TOTP(secret).now())


def _next_code(secret: str) -> str:
    """The code of the next time step: inside the window, and not used by _enrol."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _with_second_factor(uow: UnitOfWork, username: str) -> str:
    """`username`, enrolled by itself first when it exists (so a reset has work to do)."""
    with contextlib.suppress(NotFound):
        _enrol(uow, admins.actor_for(uow, username, Channel.WEB))
    return username


def _key_of(uow: UnitOfWork, domain: str) -> str:
    """The id of the key of `domain`'s persona admin (module_world); an unused id otherwise."""
    keys = apikeys.list_keys(uow, OPERATOR, admin=_key_owner_of(domain)).items
    return keys[0].id if keys else "0" * 12


@dataclass(frozen=True)
class Op:
    name: str
    # The service function this operation exercises (for the completeness check).
    service: Callable[..., Any]
    call: Callable[[UnitOfWork, Actor, str], Any]
    mutates: bool
    expected: tuple[str, str, str, str]
    # Changes nothing but hands out credentials (generated daemon configs): not for read-only.
    reveals_secrets: bool = False


OPS = (
    Op(
        "inventory.counts",
        inventory.object_counts,
        lambda uow, actor, d: inventory.object_counts(uow, actor),
        False,
        SYSTEM,
    ),
    Op(
        "inventory.scoped_counts",
        inventory.scoped_counts,
        lambda uow, actor, d: inventory.scoped_counts(uow, actor),
        False,
        EVERYONE,
    ),
    Op(
        "inventory.domain_quota_use",
        inventory.domain_quota_use,
        lambda uow, actor, d: inventory.domain_quota_use(uow, actor),
        False,
        EVERYONE,
    ),
    Op(
        "domain.create",
        domains.create,
        lambda uow, actor, d: domains.create(
            uow, actor, parse(DomainCreate, {"name": "new.example"})
        ),
        True,
        SYSTEM,
    ),
    Op("domain.get", domains.get, lambda uow, actor, d: domains.get(uow, actor, d), False, SCOPED),
    Op(
        "domain.show",
        domains.show,
        lambda uow, actor, d: domains.show(uow, actor, d),
        False,
        SCOPED,
    ),
    Op(
        "domain.update_description",
        domains.update,
        lambda uow, actor, d: domains.update(
            uow, actor, d, parse(DomainUpdate, {"description": "changed"})
        ),
        True,
        SCOPED,
    ),
    Op(
        "domain.update_limits",
        domains.update,
        lambda uow, actor, d: domains.update(
            uow, actor, d, parse(DomainUpdate, {"max_mailboxes": 10})
        ),
        True,
        SUPER_ON_KEY,
    ),
    Op(
        "domain.update_routing",
        domains.update,
        lambda uow, actor, d: domains.update(
            uow, actor, d, parse(DomainUpdate, {"transport": "smtp:[mx.elsewhere.example]"})
        ),
        True,
        SUPER_ON_KEY,
    ),
    Op(
        "domain.remove",
        domains.remove,
        lambda uow, actor, d: domains.remove(uow, actor, d, cascade=True),
        True,
        SUPER_ON_KEY,
    ),
    Op(
        "domain.list",
        domains.list_domains,
        lambda uow, actor, d: domains.list_domains(uow, actor, search=d),
        False,
        EVERYONE,
    ),
    Op(
        "mailbox.create",
        mailboxes.create,
        lambda uow, actor, d: mailboxes.create(
            uow, actor, parse(MailboxCreate, {"address": f"new@{d}"}), password=PASSWORD
        ),
        True,
        SCOPED,
    ),
    Op(
        "mailbox.get",
        mailboxes.get,
        lambda uow, actor, d: mailboxes.get(uow, actor, f"user1@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "mailbox.update",
        mailboxes.update,
        lambda uow, actor, d: mailboxes.update(
            uow, actor, f"user1@{d}", parse(MailboxUpdate, {"name": "Changed"})
        ),
        True,
        SCOPED,
    ),
    Op(
        "mailbox.set_password",
        mailboxes.set_password,
        lambda uow, actor, d: mailboxes.set_password(uow, actor, f"user1@{d}", NEW_PASSWORD),
        True,
        SCOPED,
    ),
    Op(
        "mailbox.remove",
        mailboxes.remove,
        lambda uow, actor, d: mailboxes.remove(uow, actor, f"user1@{d}"),
        True,
        SCOPED,
    ),
    Op(
        "mailbox.restore",
        mailboxes.restore,
        lambda uow, actor, d: (
            mailboxes.remove(uow, OPERATOR, f"user1@{d}"),
            mailboxes.restore(uow, actor, f"user1@{d}"),
        ),
        True,
        SCOPED,
    ),
    Op(
        "maintenance.purge",
        maintenance.purge,
        lambda uow, actor, d: (
            # Purging is not scoped to a domain: the same due mailbox for every cell.
            mailboxes.remove(uow, OPERATOR, "user1@a.example"),
            maintenance.purge(uow, actor, now=FAR_FUTURE),
        ),
        True,
        SYSTEM,
    ),
    Op(
        "vacation.get",
        vacation.get_vacation,
        lambda uow, actor, d: vacation.get_vacation(uow, actor, f"user1@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "vacation.set",
        vacation.set_vacation,
        lambda uow, actor, d: vacation.set_vacation(uow, actor, f"user1@{d}", AWAY),
        True,
        SCOPED,
    ),
    Op(
        "vacation.disable",
        vacation.disable_vacation,
        lambda uow, actor, d: (
            vacation.set_vacation(uow, actor, f"user1@{d}", AWAY),
            vacation.disable_vacation(uow, actor, f"user1@{d}"),
        ),
        True,
        SCOPED,
    ),
    Op(
        # No ManageSieve server in these settings: an authorized call gets as far as that.
        "vacation.apply_script",
        vacation.apply_script,
        lambda uow, actor, d: vacation.apply_script(uow, actor, f"user1@{d}"),
        True,
        (CONFLICT, CONFLICT, NOT_FOUND, NOT_FOUND),
    ),
    Op(
        "forward.get",
        forwarding.get_forward,
        lambda uow, actor, d: forwarding.get_forward(uow, actor, f"user1@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "forward.set",
        forwarding.set_forward,
        lambda uow, actor, d: forwarding.set_forward(uow, actor, f"user1@{d}", ELSEWHERE),
        True,
        SCOPED,
    ),
    Op(
        "forward.disable",
        forwarding.disable_forward,
        lambda uow, actor, d: (
            forwarding.set_forward(uow, actor, f"user1@{d}", ELSEWHERE),
            forwarding.disable_forward(uow, actor, f"user1@{d}"),
        ),
        True,
        SCOPED,
    ),
    Op(
        "stack.generate",
        stack_config.generate,
        lambda uow, actor, d: stack_config.generate(
            uow, actor, stack_config.Daemon.POSTFIX, DeployTarget.production(uow.settings)
        ),
        False,
        SYSTEM,
        reveals_secrets=True,
    ),
    Op(
        "stack.check",
        stack_config.check,
        lambda uow, actor, d: stack_config.check(
            uow,
            actor,
            stack_config.Daemon.DOVECOT,
            DeployTarget.production(uow.settings),
            uow.settings.data_dir,
        ),
        False,
        SYSTEM,
        reveals_secrets=True,
    ),
    Op(
        "mailbox.list",
        mailboxes.list_mailboxes,
        lambda uow, actor, d: mailboxes.list_mailboxes(uow, actor, domain=d),
        False,
        SCOPED,
    ),
    Op(
        "alias.create",
        aliases.create,
        lambda uow, actor, d: aliases.create(
            uow, actor, parse(AliasCreate, {"address": f"new@{d}", "targets": [f"user1@{d}"]})
        ),
        True,
        SCOPED,
    ),
    Op(
        "alias.get",
        aliases.get,
        lambda uow, actor, d: aliases.get(uow, actor, f"info@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "alias.update",
        aliases.update,
        lambda uow, actor, d: aliases.update(
            uow, actor, f"info@{d}", parse(AliasUpdate, {"add_targets": ["x@elsewhere.example"]})
        ),
        True,
        SCOPED,
    ),
    Op(
        "alias.remove",
        aliases.remove,
        lambda uow, actor, d: aliases.remove(uow, actor, f"info@{d}"),
        True,
        SCOPED,
    ),
    Op(
        "alias.list",
        aliases.list_aliases,
        lambda uow, actor, d: aliases.list_aliases(uow, actor, domain=d),
        False,
        SCOPED,
    ),
    Op(
        "alias.delivering_to",
        aliases.delivering_to,
        lambda uow, actor, d: aliases.delivering_to(uow, actor, f"user1@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "alias_domain.create",
        alias_domains.create,
        lambda uow, actor, d: alias_domains.create(
            uow,
            actor,
            parse(AliasDomainCreate, {"alias_domain": "new-alias.example", "target_domain": d}),
        ),
        True,
        SYSTEM,
    ),
    Op(
        "alias_domain.get",
        alias_domains.get,
        lambda uow, actor, d: alias_domains.get(uow, actor, f"alias-{d}"),
        False,
        SCOPED,
    ),
    Op(
        "alias_domain.remove",
        alias_domains.remove,
        lambda uow, actor, d: alias_domains.remove(uow, actor, f"alias-{d}"),
        True,
        SYSTEM,
    ),
    Op(
        "alias_domain.list",
        alias_domains.list_alias_domains,
        lambda uow, actor, d: alias_domains.list_alias_domains(uow, actor, target_domain=d),
        False,
        SCOPED,
    ),
    Op(
        "admin.create",
        admins.create,
        lambda uow, actor, d: admins.create(
            uow,
            actor,
            parse(AdminCreate, {"username": "eve", "role": Role.DOMAIN_ADMIN, "domains": [d]}),
            password=PASSWORD,
        ),
        True,
        SYSTEM,
    ),
    Op(
        "admin.get",
        admins.get,
        lambda uow, actor, d: admins.get(uow, actor, _admin_of(d)),
        False,
        SYSTEM,
    ),
    Op(
        "admin.update",
        admins.update,
        lambda uow, actor, d: admins.update(
            uow, actor, _admin_of(d), parse(AdminUpdate, {"active": False})
        ),
        True,
        SYSTEM,
    ),
    Op(
        "admin.set_password",
        admins.set_password,
        lambda uow, actor, d: admins.set_password(uow, actor, _admin_of(d), NEW_PASSWORD),
        True,
        SYSTEM,
    ),
    Op(
        "admin.remove",
        admins.remove,
        lambda uow, actor, d: admins.remove(uow, actor, _admin_of(d)),
        True,
        SYSTEM,
    ),
    Op(
        "admin.list",
        admins.list_admins,
        lambda uow, actor, d: admins.list_admins(uow, actor),
        False,
        EVERYONE,
    ),
    Op(
        "audit.list_entries",
        audit.list_entries,
        lambda uow, actor, d: audit.list_entries(uow, actor),
        False,
        EVERYONE,
    ),
    Op(
        "admin.change_own_password",
        admins.change_own_password,
        lambda uow, actor, d: admins.change_own_password(uow, actor, PASSWORD, NEW_PASSWORD),
        True,
        EVERYONE,
    ),
    Op(
        "api_key.create",
        apikeys.create,
        lambda uow, actor, d: apikeys.create(
            uow, actor, parse(ApiKeyCreate, {"admin": _key_owner_of(d)})
        ),
        True,
        (OK, OK, DENIED, DENIED),
    ),
    Op(
        "api_key.create_narrowed",
        apikeys.create,
        lambda uow, actor, d: apikeys.create(uow, actor, parse(ApiKeyCreate, {"domains": [d]})),
        True,
        SCOPED,
    ),
    Op(
        "api_key.get",
        apikeys.get,
        lambda uow, actor, d: apikeys.get(uow, actor, _key_of(uow, d)),
        False,
        SCOPED,
    ),
    Op(
        "api_key.revoke",
        apikeys.revoke,
        lambda uow, actor, d: apikeys.revoke(uow, actor, _key_of(uow, d)),
        True,
        SCOPED,
    ),
    Op(
        "api_key.list_keys",
        apikeys.list_keys,
        lambda uow, actor, d: apikeys.list_keys(uow, actor, admin=_key_owner_of(d)),
        False,
        (OK, OK, DENIED, DENIED),
    ),
    Op(
        "registration.list",
        registrations.list_requests,
        lambda uow, actor, d: registrations.list_requests(uow, actor, domain=d),
        False,
        SCOPED,
    ),
    Op(
        "registration.get",
        registrations.get,
        lambda uow, actor, d: registrations.get(uow, actor, _request_of(uow, d)),
        False,
        SCOPED,
    ),
    Op(
        "registration.approve",
        registrations.approve,
        lambda uow, actor, d: registrations.approve(uow, actor, _request_of(uow, d)),
        True,
        SCOPED,
    ),
    Op(
        "registration.reject",
        registrations.reject,
        lambda uow, actor, d: registrations.reject(uow, actor, _request_of(uow, d), "no"),
        True,
        SCOPED,
    ),
    Op(
        "app_password.create",
        apppasswords.create,
        lambda uow, actor, d: apppasswords.create(uow, actor, f"user1@{d}", PHONE),
        True,
        SCOPED,
    ),
    Op(
        "app_password.list",
        apppasswords.list_app_passwords,
        lambda uow, actor, d: apppasswords.list_app_passwords(uow, actor, f"user1@{d}"),
        False,
        SCOPED,
    ),
    Op(
        "app_password.revoke",
        apppasswords.revoke,
        lambda uow, actor, d: (
            apppasswords.create(uow, actor, f"user1@{d}", PHONE),
            apppasswords.revoke(uow, actor, f"user1@{d}", PHONE.name),
        ),
        True,
        SCOPED,
    ),
    Op(
        "api_key.whoami",
        apikeys.whoami,
        lambda uow, actor, d: apikeys.whoami(uow, actor),
        False,
        EVERYONE,
    ),
    # Every admin manages its own second factor; the domain plays no part.
    Op(
        "twofactor.status",
        twofactor.status,
        lambda uow, actor, d: twofactor.status(uow, actor),
        False,
        EVERYONE,
    ),
    Op(
        "twofactor.begin_enrolment",
        twofactor.begin_enrolment,
        lambda uow, actor, d: twofactor.begin_enrolment(uow, actor),
        True,
        EVERYONE,
    ),
    Op(
        "twofactor.confirm_enrolment",
        twofactor.confirm_enrolment,
        lambda uow, actor, d: _enrol(uow, actor),
        True,
        EVERYONE,
    ),
    Op(
        "twofactor.regenerate_recovery_codes",
        twofactor.regenerate_recovery_codes,
        lambda uow, actor, d: twofactor.regenerate_recovery_codes(
            uow, actor, _next_code(_enrol(uow, actor)[0])
        ),
        True,
        EVERYONE,
    ),
    Op(
        "twofactor.disable",
        twofactor.disable,
        lambda uow, actor, d: twofactor.disable(
            uow, actor, password=PASSWORD, code=_enrol(uow, actor)[1][0]
        ),
        True,
        EVERYONE,
    ),
    Op(
        "twofactor.reset",
        twofactor.reset,
        lambda uow, actor, d: twofactor.reset(uow, actor, _with_second_factor(uow, _admin_of(d))),
        True,
        SYSTEM,
    ),
    Op(
        "health.run_checks",
        health.run_checks,
        lambda uow, actor, d: health.run_checks(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "health.stored",
        health.stored,
        lambda uow, actor, d: health.stored(uow, actor),
        False,
        SYSTEM,
    ),
    Op(
        "health.list_incidents",
        health.list_incidents,
        lambda uow, actor, d: health.list_incidents(uow, actor),
        False,
        SYSTEM,
    ),
    Op(
        "health.monitor_host",
        health.monitor_host,
        lambda uow, actor, d: health.monitor_host(uow, actor, MISSING_HOST, channels=[]),
        True,
        SYSTEM_HOST,
    ),
    Op(
        "logs.summarize_host",
        logs.summarize_host,
        lambda uow, actor, d: logs.summarize_host(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "logs.ingest",
        logs.ingest,
        lambda uow, actor, d: logs.ingest(uow, actor, MISSING_HOST),
        True,
        SYSTEM_HOST,
    ),
    Op(
        "logs.traffic",
        logs.traffic,
        lambda uow, actor, d: logs.traffic(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "logs.top",
        logs.top,
        lambda uow, actor, d: logs.top(uow, actor, MISSING_HOST, kind="sender"),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "host.list",
        hosts.list_hosts,
        lambda uow, actor, d: hosts.list_hosts(uow, actor),
        False,
        SYSTEM,
    ),
    Op(
        "host.create",
        hosts.create,
        # The domain's name is a valid host name: each cell adds a host of its own.
        lambda uow, actor, d: hosts.create(
            uow, actor, parse(HostCreate, {"name": d, "transport": "local"})
        ),
        True,
        SYSTEM,
    ),
    Op(
        "host.get",
        hosts.get,
        lambda uow, actor, d: hosts.get(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "host.update",
        hosts.update,
        lambda uow, actor, d: hosts.update(
            uow, actor, MISSING_HOST, parse(HostUpdate, {"mail_root": "/srv/vmail"})
        ),
        True,
        SYSTEM_HOST,
    ),
    Op(
        "host.remove",
        hosts.remove,
        lambda uow, actor, d: hosts.remove(uow, actor, MISSING_HOST),
        True,
        SYSTEM_HOST,
    ),
    Op(
        "host.check",
        hosts.check,
        lambda uow, actor, d: hosts.check(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "stack.apply_config",
        deploy.apply_config,
        lambda uow, actor, d: deploy.apply_config(uow, actor, MISSING_HOST),
        True,
        SYSTEM_HOST,
        reveals_secrets=True,
    ),
    Op(
        "queue.list_messages",
        queue.list_messages,
        lambda uow, actor, d: queue.list_messages(uow, actor, MISSING_HOST),
        False,
        SYSTEM_HOST,
    ),
    Op(
        "queue.show",
        queue.show,
        lambda uow, actor, d: queue.show(uow, actor, MISSING_HOST, "ABCDEF12345"),
        False,
        SYSTEM_HOST,
    ),
    *(
        Op(
            f"queue.{operation.__name__}",
            operation,
            lambda uow, actor, d, operation=operation: operation(
                uow, actor, MISSING_HOST, ["ABCDEF12345"]
            ),
            True,
            SYSTEM_HOST,
        )
        for operation in (queue.hold, queue.release, queue.requeue, queue.delete)
    ),
    Op(
        "queue.change",
        queue.change,
        lambda uow, actor, d: queue.change(uow, actor, MISSING_HOST, "hold", ["ABCDEF12345"]),
        True,
        SYSTEM_HOST,
    ),
    Op(
        "queue.flush",
        queue.flush,
        lambda uow, actor, d: queue.flush(uow, actor, MISSING_HOST),
        True,
        SYSTEM_HOST,
    ),
)

MATRIX = [
    pytest.param(op, cell, expected, id=f"{op.name}-{cell.name}")
    for op in OPS
    for cell, expected in zip(CELLS, op.expected, strict=True)
]
MUTATIONS = [pytest.param(op, id=op.name) for op in OPS if op.mutates]
READS = [pytest.param(op, id=op.name) for op in OPS if not op.mutates and not op.reveals_secrets]
SECRET_READS = [pytest.param(op, id=op.name) for op in OPS if op.reveals_secrets]


def outcome(make_uow: UowFactory, actor: Actor, op: Op, domain: str) -> str:
    """Run `op` and roll it back; the outcome as OK or the error's class name."""
    with make_uow() as uow:
        try:
            op.call(uow, actor, domain)
        except (PermissionDenied, NotFound) as exc:
            return type(exc).__name__
    return OK


@pytest.mark.parametrize(("op", "cell", "expected"), MATRIX)
def test_it_enforces_the_authorization_matrix(
    op: Op, cell: Cell, expected: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor: Actor = getattr(world, cell.persona)
    before = fingerprint(connection)
    with make_uow() as uow:
        if expected == OK:
            op.call(uow, actor, cell.domain)
            uow.finish()
        else:
            with pytest.raises(ERRORS[expected]):
                op.call(uow, actor, cell.domain)
    after = fingerprint(connection)
    if expected == OK and op.mutates:
        assert audit_count(connection) > len(before["audit_log"])
        entries = connection.execute(text("SELECT actor FROM audit_log ORDER BY id DESC")).scalars()
        assert next(iter(entries)) == actor.username
    else:
        # Refused calls and reads change nothing: no row, no audit entry.
        assert after == before


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS])
def test_foreign_objects_are_indistinguishable_from_missing_ones(
    op: Op, world: World, make_uow: UowFactory
) -> None:
    foreign = outcome(make_uow, world.domain_admin, op, "b.example")
    missing = outcome(make_uow, world.domain_admin, op, "missing.example")
    assert foreign == missing


# --- completeness ----------------------------------------------------------------------------

SERVICE_MODULES: tuple[ModuleType, ...] = (
    domains,
    mailboxes,
    aliases,
    alias_domains,
    admins,
    audit,
    maintenance,
    vacation,
    forwarding,
    stack_config,
    apikeys,
    inventory,
    registrations,
    apppasswords,
    twofactor,
    selfservice,
    health,
    logs,
    hosts,
    deploy,
    queue,
)

# Public functions that are not operations of an actor, each with the reason.
NOT_OPERATIONS: dict[tuple[ModuleType, str], str] = {
    (inventory, "database_reachable"): "health probe: one SELECT 1, no tenant data",
    (domains, "snapshot"): "serializes a domain for audit entries",
    (domains, "ensure_name_free"): "name-space check called by domain and alias-domain create",
    (domains, "mailbox_count"): "counter behind show/limits; callers authorize first",
    (domains, "alias_count"): "counter behind show/limits; callers authorize first",
    (domains, "allocated_quota"): "sum behind show/quota checks; callers authorize first",
    (domains, "check_mailbox_slot"): "limit check used by mailbox create",
    (domains, "check_alias_slot"): "limit check used by alias create",
    (domains, "check_mailbox_quota"): "quota check used by mailbox create/update",
    (domains, "ensure_not_protected"): "guard used by mailbox/alias remove (tested below)",
    (domains, "normalize_transport"): "input rule",
    (domains, "ensure_hosted"): "guard used by mailbox create and restore",
    (domains, "ensure_not_removed"): "guard used by domain update, mailbox and alias creation",
    (mailboxes, "to_public"): "serializer",
    (mailboxes, "snapshot"): "serializes a mailbox for audit entries",
    (mailboxes, "ensure_not_pending_purge"): "address guard used by mailbox and alias create",
    (mailboxes, "find_live"): "lookup for vacation and forwarding; callers pass the permission",
    (mailboxes, "get_with_permission"): "get() with the caller's permission (mailbox.get here, "
    "the portal's own-mailbox read in test_selfservice)",
    (selfservice, "authenticate"): "the portal's password check (test_selfservice)",
    (selfservice, "actor_for_mailbox"): "builds a mailbox user's actor",
    (selfservice, "actor_for_session"): "builds the actor of a live portal session",
    (selfservice, "get_own"): "a mailbox user's own mailbox: test_selfservice covers its scope",
    (selfservice, "change_own_password"): "a mailbox user's own password (test_selfservice)",
    (vacation, "snapshot"): "serializes a vacation for audit entries",
    (vacation, "to_public"): "serializer",
    (forwarding, "snapshot"): "serializes a forward for audit entries",
    (forwarding, "to_public"): "serializer",
    (apppasswords, "snapshot"): "serializes an app password for audit entries",
    (apppasswords, "to_public"): "serializer",
    (stack_config, "render_postfix"): "pure rendering behind generate()",
    (stack_config, "render_dovecot"): "pure rendering behind generate()",
    (stack_config, "file_mode"): "file mode per generated file",
    (stack_config, "redact"): "hides passwords in previews and diffs",
    (stack_config, "check_deployed"): "pure comparison behind check()",
    (stack_config, "compare_deployed"): "pure comparison behind check()",
    (stack_config, "write_rendered"): "writes files the caller obtained through generate()",
    (admins, "normalize_username"): "input rule",
    (admins, "ensure_not_superadmin_address"): "guard used by mailbox/alias changes (below)",
    (admins, "actor_for"): "builds the acting Actor (before any actor exists)",
    (admins, "managed_domain_ids"): "lookup behind actor_for and API keys; callers authorize",
    (admins, "authenticate"): "login: checks the password itself (tested in test_admins)",
    (apikeys, "parse_token"): "token syntax",
    (apikeys, "authenticate"): "builds the acting Actor from a token (tested in test_apikeys)",
    (twofactor, "verify"): "login: checks the second factor itself (tested in test_twofactor)",
    (twofactor, "is_enrolled"): "login: whether to ask for a code (before any actor exists)",
    (twofactor, "is_required"): "reads the settings for a role",
    (registrations, "submit"): "a visitor's request, public by design (test_registrations)",
    (registrations, "admit_visitor"): "counts a visitor's requests per client address",
    (registrations, "to_public"): "serializer",
    (registrations, "snapshot"): "serializes a request for audit entries",
    (health, "overall"): "the worst of a host's check statuses",
    (hosts, "snapshot"): "serializes a host for audit entries",
    (hosts, "to_public"): "serializer",
    (hosts, "to_spec"): "what open_runner needs, built after the caller's check",
    (hosts, "spec_for"): "used by other services, which pass their own permission (tested in "
    "test_hosts)",
    (deploy, "target_for"): "pure: where the generated files run on a host",
}


def _public_functions(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }


def test_every_service_function_has_a_row_in_the_matrix() -> None:
    in_matrix = {(op.service.__module__, op.service.__name__) for op in OPS}
    helpers = {(module.__name__, name) for module, name in NOT_OPERATIONS}
    undeclared = sorted(
        f"{module.__name__}.{name}"
        for module in SERVICE_MODULES
        for name in _public_functions(module)
        if (module.__name__, name) not in in_matrix | helpers
    )
    assert undeclared == [], "service functions without a row in OPS (or NOT_OPERATIONS)"
    stale = sorted(
        f"{module.__name__}.{name}"
        for module, name in NOT_OPERATIONS
        if name not in _public_functions(module)
    )
    assert stale == [], "NOT_OPERATIONS names functions that no longer exist"
    assert all(op.service.__module__ in {m.__name__ for m in SERVICE_MODULES} for op in OPS)


def test_every_permission_is_used_by_a_service() -> None:
    source = "\n".join(Path(inspect.getfile(module)).read_text() for module in SERVICE_MODULES)
    unused = [p.name for p in Permission if not re.search(rf"\bPermission\.{p.name}\b", source)]
    assert unused == []


# --- read-only actors ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["superadmin", "domain_admin"])
@pytest.mark.parametrize("op", MUTATIONS)
def test_read_only_actor_cannot_mutate(
    op: Op, persona: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = dataclasses.replace(getattr(world, persona), read_only=True)
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        op.call(uow, actor, "a.example")
    assert fingerprint(connection) == before


@pytest.mark.parametrize("persona", ["superadmin", "domain_admin"])
@pytest.mark.parametrize("op", READS)
def test_read_only_actor_can_read(
    op: Op, persona: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = dataclasses.replace(getattr(world, persona), read_only=True)
    expected = op.expected[0 if persona == "superadmin" else 1]
    assert outcome(make_uow, actor, op, "a.example") == expected


@pytest.mark.parametrize("op", SECRET_READS)
def test_read_only_actor_cannot_obtain_credentials(
    op: Op, world: World, make_uow: UowFactory
) -> None:
    actor = dataclasses.replace(world.superadmin, read_only=True)
    assert outcome(make_uow, actor, op, "a.example") == DENIED


@pytest.mark.parametrize(
    ("persona", "username"), [("superadmin", "root"), ("domain_admin", "alice")]
)
def test_read_only_actor_cannot_change_its_own_password(
    persona: str, username: str, world: World, make_uow: UowFactory, connection: Connection
) -> None:
    actor = dataclasses.replace(getattr(world, persona), read_only=True)
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        admins.set_password(uow, actor, username, NEW_PASSWORD)
    assert fingerprint(connection) == before


# --- what a domain admin's reads return ------------------------------------------------------


def test_domain_admin_lists_never_contain_foreign_objects(
    world: World, make_uow: UowFactory
) -> None:
    actor = world.domain_admin
    with make_uow() as uow:
        mailbox_page = mailboxes.list_mailboxes(uow, actor, limit=500)
        alias_page = aliases.list_aliases(uow, actor, limit=500)
        alias_domain_page = alias_domains.list_alias_domains(uow, actor, limit=500)
        domain_page = domains.list_domains(uow, actor, limit=500)
        entries = audit.list_entries(uow, actor, limit=500).items
    assert [m.address for m in mailbox_page.items] == ["postmaster@a.example", "user1@a.example"]
    assert [a.address for a in alias_page.items] == ["info@a.example"]
    assert [a.alias_domain for a in alias_domain_page.items] == ["alias-a.example"]
    assert [d.name for d in domain_page.items] == ["a.example"]
    assert entries, "the domain admin sees the history of its domain"
    assert {entry.domain for entry in entries} == {"a.example"}


def test_superadmin_lists_contain_every_domain(world: World, make_uow: UowFactory) -> None:
    """The counterpart of the scoping tests: the world does hold foreign objects to hide."""
    with make_uow() as uow:
        mailbox_domains = {m.domain for m in mailboxes.list_mailboxes(uow, world.superadmin).items}
        alias_domains_seen = {a.domain for a in aliases.list_aliases(uow, world.superadmin).items}
        entry_domains = {e.domain for e in audit.list_entries(uow, world.superadmin).items}
    assert mailbox_domains == alias_domains_seen == {"a.example", "b.example"}
    assert {"a.example", "b.example", None} <= entry_domains


def _keys(items: list[Any]) -> list[str]:
    """What a list shows, as (domain-revealing) text: addresses, names, audit object keys."""
    keys = []
    for item in items:
        if isinstance(item, AuditEntryPublic):
            keys.append(f"{item.domain}:{item.object_key}")
        else:
            for name in ("address", "alias_domain", "name"):
                if hasattr(item, name):
                    keys.append(getattr(item, name))
                    break
    return keys


@pytest.mark.parametrize(
    ("list_call", "expected"),
    [
        pytest.param(
            lambda uow, actor: mailboxes.list_mailboxes(uow, actor, search="user1").items,
            ["user1@a.example"],
            id="mailboxes-search-local-part",
        ),
        pytest.param(
            lambda uow, actor: mailboxes.list_mailboxes(uow, actor, search="b.example").items,
            [],
            id="mailboxes-search-foreign-domain",
        ),
        pytest.param(
            lambda uow, actor: aliases.list_aliases(uow, actor, search="info").items,
            ["info@a.example"],
            id="aliases-search-address",
        ),
        pytest.param(
            lambda uow, actor: aliases.list_aliases(uow, actor, search="user1@b.example").items,
            [],
            id="aliases-search-foreign-target",
        ),
        pytest.param(
            lambda uow, actor: domains.list_domains(uow, actor, search="b.example").items,
            [],
            id="domains-search",
        ),
        pytest.param(
            lambda uow, actor: alias_domains.list_alias_domains(uow, actor, after="alias-a").items,
            ["alias-a.example"],
            id="alias-domains-after",
        ),
        pytest.param(
            lambda uow, actor: audit.list_entries(uow, actor, object_key="user1@b.example").items,
            [],
            id="audit-object-key",
        ),
        pytest.param(
            lambda uow, actor: audit.list_entries(uow, actor, object_type="domain").items,
            ["a.example:a.example"],
            id="audit-object-type",
        ),
        pytest.param(
            lambda uow, actor: audit.list_entries(uow, actor, action="mailbox.create").items,
            ["a.example:postmaster@a.example", "a.example:user1@a.example"],
            id="audit-action",
        ),
        pytest.param(
            lambda uow, actor: audit.list_entries(uow, actor, object_type="admin").items,
            [],
            id="audit-admin-entries",
        ),
    ],
)
def test_domain_admin_search_never_finds_foreign_objects(
    list_call: Callable[[UnitOfWork, Actor], list[Any]],
    expected: list[str],
    world: World,
    make_uow: UowFactory,
) -> None:
    with make_uow() as uow:
        items = list_call(uow, world.domain_admin)
    assert sorted(_keys(items)) == expected


@pytest.mark.parametrize(
    "list_call",
    [
        pytest.param(
            lambda uow, actor: mailboxes.list_mailboxes(uow, actor, domain="b.example"),
            id="mailboxes",
        ),
        pytest.param(
            lambda uow, actor: aliases.list_aliases(uow, actor, domain="b.example"), id="aliases"
        ),
        pytest.param(
            lambda uow, actor: alias_domains.list_alias_domains(
                uow, actor, target_domain="b.example"
            ),
            id="alias-domains",
        ),
    ],
)
def test_domain_admin_cannot_filter_by_a_foreign_domain(
    list_call: Callable[[UnitOfWork, Actor], Any], world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow, pytest.raises(NotFound) as info:
        list_call(uow, world.domain_admin)
    assert info.value.kind == "domain"
    assert info.value.key == "b.example"


def test_domain_admin_sees_counts_of_its_own_domains_only(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        usage = domains.show(uow, world.domain_admin, "a.example")
        with pytest.raises(NotFound):
            domains.show(uow, world.domain_admin, "b.example")
    assert (usage.mailboxes, usage.aliases, usage.alias_domains) == (2, 1, ["alias-a.example"])


# --- what a domain admin cannot do inside its own domain -------------------------------------


@pytest.fixture
def boss(world: World, make_uow: UowFactory) -> str:
    """A superadmin whose username is also a mailbox address in the domain admin's domain."""

    def create(uow: UnitOfWork) -> None:
        admins.create(
            uow,
            OPERATOR,
            parse(AdminCreate, {"username": "boss@a.example", "role": Role.SUPERADMIN}),
            password=PASSWORD,
        )
        mailboxes.create(
            uow, OPERATOR, parse(MailboxCreate, {"address": "boss@a.example"}), password=PASSWORD
        )

    as_operator(make_uow, create)
    return "boss@a.example"


@pytest.mark.parametrize("address", ["boss@a.example", "Boss@A.Example"])
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda uow, actor, address: mailboxes.set_password(uow, actor, address, NEW_PASSWORD),
            id="set_password",
        ),
        pytest.param(
            lambda uow, actor, address: mailboxes.update(
                uow, actor, address, parse(MailboxUpdate, {"active": False})
            ),
            id="update",
        ),
        pytest.param(
            lambda uow, actor, address: mailboxes.remove(uow, actor, address), id="remove"
        ),
    ],
)
def test_domain_admin_cannot_reset_superadmin_password(
    call: Callable[[UnitOfWork, Actor, str], Any],
    address: str,
    boss: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        call(uow, world.domain_admin, address)
    assert fingerprint(connection) == before


def test_superadmin_may_reset_the_password_of_a_superadmin_mailbox(
    boss: str, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        mailbox = mailboxes.set_password(uow, world.superadmin, boss, NEW_PASSWORD)
        uow.finish()
    assert mailbox.address == boss


def test_domain_admin_may_reset_an_ordinary_mailbox_password(
    world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        mailboxes.set_password(uow, world.domain_admin, "user1@a.example", NEW_PASSWORD)
        uow.finish()


@pytest.fixture
def abuse_alias(world: World, make_uow: UowFactory) -> str:
    as_operator(
        make_uow,
        lambda uow: aliases.create(
            uow,
            OPERATOR,
            parse(AliasCreate, {"address": "abuse@a.example", "targets": ["user1@a.example"]}),
        ),
    )
    return "abuse@a.example"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda uow, actor: mailboxes.remove(uow, actor, "postmaster@a.example"),
            id="mailbox-postmaster",
        ),
        pytest.param(
            lambda uow, actor: mailboxes.remove(uow, actor, "POSTMASTER@a.example"),
            id="mailbox-postmaster-uppercase",
        ),
        pytest.param(
            lambda uow, actor: aliases.remove(uow, actor, "abuse@a.example"), id="alias-abuse"
        ),
        pytest.param(
            lambda uow, actor: aliases.remove(uow, actor, "Abuse@A.example"),
            id="alias-abuse-mixed-case",
        ),
    ],
)
def test_domain_admin_cannot_remove_protected_addresses(
    call: Callable[[UnitOfWork, Actor], Any],
    abuse_alias: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied) as info:
        call(uow, world.domain_admin)
    assert info.value.permission == "domain:protected-address"
    assert fingerprint(connection) == before


def test_superadmin_may_remove_protected_addresses(
    abuse_alias: str, world: World, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        mailboxes.remove(uow, world.superadmin, "postmaster@a.example")
        aliases.remove(uow, world.superadmin, abuse_alias)
        uow.finish()
    with make_uow() as uow:
        assert mailboxes.get(uow, world.superadmin, "postmaster@a.example").removed_at is not None
        with pytest.raises(NotFound):
            aliases.get(uow, world.superadmin, abuse_alias)


@pytest.mark.parametrize(
    "changes",
    [
        {"active": False},
        {"max_mailboxes": 100},
        {"max_aliases": 100},
        {"quota_bytes": 20 * 1024**3},
        {"default_mailbox_quota_bytes": 1024**2},
        {"description": "fine on its own", "max_mailboxes": 100},
    ],
    ids=lambda changes: "+".join(changes),
)
def test_domain_admin_cannot_change_domain_limits(
    changes: dict[str, Any], world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied) as info:
        domains.update(uow, world.domain_admin, "a.example", parse(DomainUpdate, changes))
    assert info.value.permission == Permission.DOMAIN_ADMINISTER
    assert fingerprint(connection) == before


def test_domain_admin_may_change_the_description(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        domains.update(
            uow, world.domain_admin, "a.example", parse(DomainUpdate, {"description": "Team A"})
        )
        uow.finish()
    with make_uow() as uow:
        domain = domains.get(uow, world.superadmin, "a.example")
        assert (domain.description, domain.max_mailboxes, domain.active) == ("Team A", 5, True)


def test_domain_admin_cannot_create_alias_domains(
    world: World, make_uow: UowFactory, connection: Connection
) -> None:
    before = fingerprint(connection)
    data = parse(
        AliasDomainCreate, {"alias_domain": "team-a.example", "target_domain": "a.example"}
    )
    with make_uow() as uow, pytest.raises(PermissionDenied) as info:
        alias_domains.create(uow, world.domain_admin, data)
    assert info.value.permission == Permission.ALIAS_DOMAIN_CREATE
    assert fingerprint(connection) == before


@pytest.fixture
def chief(world: World, make_uow: UowFactory) -> str:
    """A superadmin whose username is an address in a.example that no mailbox holds."""
    as_operator(
        make_uow,
        lambda uow: admins.create(
            uow,
            OPERATOR,
            parse(AdminCreate, {"username": "chief@a.example", "role": Role.SUPERADMIN}),
            password=PASSWORD,
        ),
    )
    return "chief@a.example"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda uow, actor, address: aliases.update(
                uow, actor, address, parse(AliasUpdate, {"set_targets": ["thief@b.example"]})
            ),
            id="alias-update",
        ),
        pytest.param(lambda uow, actor, address: aliases.remove(uow, actor, address), id="remove"),
    ],
)
def test_domain_admin_cannot_redirect_a_superadmin_alias(
    call: Callable[[UnitOfWork, Actor, str], Any],
    chief: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    """The superadmin's mail arrives through an alias in the domain: redirecting it is acting
    on the superadmin (its password-reset mail would go to the domain admin)."""
    as_operator(
        make_uow,
        lambda uow: aliases.create(
            uow, OPERATOR, parse(AliasCreate, {"address": chief, "targets": ["user1@a.example"]})
        ),
    )
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        call(uow, world.domain_admin, chief)
    assert fingerprint(connection) == before


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda uow, actor, address: mailboxes.create(
                uow, actor, parse(MailboxCreate, {"address": address}), password=PASSWORD
            ),
            id="mailbox",
        ),
        pytest.param(
            lambda uow, actor, address: aliases.create(
                uow, actor, parse(AliasCreate, {"address": address, "targets": ["x@b.example"]})
            ),
            id="alias",
        ),
    ],
)
def test_domain_admin_cannot_claim_a_superadmin_address(
    call: Callable[[UnitOfWork, Actor, str], Any],
    chief: str,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
) -> None:
    """Creating the mailbox or alias named like a superadmin would capture the superadmin's mail."""
    before = fingerprint(connection)
    with make_uow() as uow, pytest.raises(PermissionDenied):
        call(uow, world.domain_admin, chief)
    assert fingerprint(connection) == before


# --- no mass assignment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "data", "field"),
    [
        (DomainCreate, {"name": "x.example", "id": 1}, "id"),
        (DomainUpdate, {"name": "other.example"}, "name"),
        (MailboxCreate, {"address": "x@a.example", "password_hash": "{PLAIN}x"}, "password_hash"),
        (MailboxCreate, {"address": "x@a.example", "maildir": "/etc"}, "maildir"),
        (MailboxUpdate, {"domain_id": 2}, "domain_id"),
        (
            AliasCreate,
            {"address": "x@a.example", "targets": ["y@a.example"], "domain_id": 2},
            "domain_id",
        ),
        (AliasUpdate, {"address": "x@b.example"}, "address"),
        (
            AliasDomainCreate,
            {"alias_domain": "x.example", "target_domain": "a.example", "id": 1},
            "id",
        ),
        (
            AdminCreate,
            {"username": "x", "role": Role.SUPERADMIN, "password_hash": "x"},
            "password_hash",
        ),
        (AdminUpdate, {"domain_ids": [1, 2]}, "domain_ids"),
        (AdminUpdate, {"username": "root"}, "username"),
    ],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "__name__", None),
)
def test_input_schemas_refuse_unknown_fields(
    schema: type[Any], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        parse(schema, data)
    assert (info.value.field, info.value.rule) == (field, "extra_forbidden")
