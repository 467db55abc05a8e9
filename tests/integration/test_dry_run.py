"""A dry run is the real run, rules included, rolled back, returning the plan."""

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate, AdminUpdate
from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate, AliasUpdate
from mailwarden.db.models import Admin, AliasDomain, AliasTarget, AuditEntry, Domain, Mailbox
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainUpdate
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import LimitExceeded
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from tests.factories.world import GIB, PASSWORD

operator = Actor.local_operator()

Change = Callable[[UnitOfWork], object]

CHANGES: dict[str, tuple[Change, ChangeKind, str, str]] = {
    "domain add": (
        lambda u: domains.create(u, operator, parse(DomainCreate, {"name": "new.example"})),
        ChangeKind.CREATE,
        "domain",
        "new.example",
    ),
    "domain edit": (
        lambda u: domains.update(u, operator, "a.example", DomainUpdate(max_mailboxes=9)),
        ChangeKind.UPDATE,
        "domain",
        "a.example",
    ),
    "domain remove": (
        lambda u: domains.remove(u, operator, "b.example", cascade=True),
        ChangeKind.DELETE,
        "domain",
        "b.example",
    ),
    "mailbox add": (
        lambda u: mailboxes.create(
            u, operator, parse(MailboxCreate, {"address": "n@a.example"}), password=PASSWORD
        ),
        ChangeKind.CREATE,
        "mailbox",
        "n@a.example",
    ),
    "mailbox edit": (
        lambda u: mailboxes.update(u, operator, "user1@a.example", MailboxUpdate(name="U")),
        ChangeKind.UPDATE,
        "mailbox",
        "user1@a.example",
    ),
    "mailbox passwd": (
        lambda u: mailboxes.set_password(u, operator, "user1@a.example", "another secret"),
        ChangeKind.UPDATE,
        "mailbox",
        "user1@a.example",
    ),
    "mailbox remove": (
        lambda u: mailboxes.remove(u, operator, "user1@a.example"),
        ChangeKind.DELETE,
        "mailbox",
        "user1@a.example",
    ),
    "alias add": (
        lambda u: aliases.create(
            u, operator, parse(AliasCreate, {"address": "@a.example", "targets": ["x@y.example"]})
        ),
        ChangeKind.CREATE,
        "alias",
        "@a.example",
    ),
    "alias edit": (
        lambda u: aliases.update(
            u, operator, "info@a.example", parse(AliasUpdate, {"add_targets": ["z@y.example"]})
        ),
        ChangeKind.UPDATE,
        "alias",
        "info@a.example",
    ),
    "alias remove": (
        lambda u: aliases.remove(u, operator, "info@a.example"),
        ChangeKind.DELETE,
        "alias",
        "info@a.example",
    ),
    "alias-domain add": (
        lambda u: alias_domains.create(
            u,
            operator,
            parse(AliasDomainCreate, {"alias_domain": "c.example", "target_domain": "a.example"}),
        ),
        ChangeKind.CREATE,
        "alias_domain",
        "c.example",
    ),
    "admin add": (
        lambda u: admins.create(
            u,
            operator,
            parse(AdminCreate, {"username": "eve", "role": "superadmin"}),
            password=PASSWORD,
        ),
        ChangeKind.CREATE,
        "admin",
        "eve",
    ),
    "admin edit": (
        lambda u: admins.update(
            u, operator, "alice", parse(AdminUpdate, {"add_domains": ["b.example"]})
        ),
        ChangeKind.UPDATE,
        "admin",
        "alice",
    ),
    "admin passwd": (
        lambda u: admins.set_password(u, operator, "alice", "another secret"),
        ChangeKind.UPDATE,
        "admin",
        "alice",
    ),
    "admin remove": (
        lambda u: admins.remove(u, operator, "bob"),
        ChangeKind.DELETE,
        "admin",
        "bob",
    ),
}

COUNTED = (Domain, Mailbox, AliasTarget, AliasDomain, Admin, AuditEntry)


def census(uow: UnitOfWork) -> dict[str, object]:
    counts = {
        model.__tablename__: uow.session.scalar(select(func.count()).select_from(model))
        for model in COUNTED
    }
    hashes = sorted(uow.session.scalars(select(Mailbox.password_hash)))
    limits = sorted(uow.session.scalars(select(Domain.max_mailboxes)))
    return counts | {"hashes": hashes, "limits": limits}


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_dry_run_returns_the_plan_and_changes_nothing(make_uow, world, name):
    change, kind, object_type, key = CHANGES[name]
    with make_uow() as uow:
        before = census(uow)
    with make_uow(dry_run=True) as uow:
        change(uow)
        plan = uow.finish()
    with make_uow() as uow:
        assert census(uow) == before
    assert (plan[0].kind, plan[0].object_type, plan[0].key) == (kind, object_type, key)


@pytest.mark.parametrize("name", list(CHANGES))
def test_the_real_run_records_the_same_plan_in_the_audit_log(make_uow, world, name):
    change, *_ = CHANGES[name]
    with make_uow() as uow:
        newest = uow.session.scalar(select(func.max(AuditEntry.id)))
        change(uow)
        plan = uow.finish()
    with make_uow() as uow:
        entries = list(uow.session.scalars(select(AuditEntry).where(AuditEntry.id > newest)))
        recorded = [(e.object_type, e.object_key, e.actor) for e in entries]
        text = str([(e.before, e.after) for e in entries])
    assert recorded == [(c.object_type, c.key, "local-operator") for c in plan]
    assert "$6$" not in text and "$5$" not in text and "CRYPT}" not in text


def test_a_dry_run_still_applies_every_rule(make_uow, world):
    with make_uow(dry_run=True) as uow, pytest.raises(LimitExceeded):
        mailboxes.create(
            uow,
            operator,
            parse(MailboxCreate, {"address": "big@a.example", "quota_bytes": 20 * GIB}),
            password=PASSWORD,
        )
