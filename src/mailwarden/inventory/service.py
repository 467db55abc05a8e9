"""Counts of every kind of object, and whether the database answers.

Counts come from COUNT(*) in the database (an index scan), never from loading rows.
`object_counts` spans every tenant (superadmins); `scoped_counts` and `domain_quota_use` count
what the actor's domains hold, so a domain admin learns nothing about other domains.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from mailwarden.admins.models import Admin
from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.apikeys.models import ApiKey
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.pagination import check_limit
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes.models import Mailbox, QuotaUsage


@dataclass(frozen=True, slots=True)
class DomainQuotaUse:
    """A domain's quota: its own limit (0: unlimited), what its live mailboxes were given, and
    what Dovecot reported they use (mailboxes it has not reported count as 0)."""

    name: str
    quota_bytes: int
    allocated_bytes: int
    used_bytes: int
    mailboxes: int


def database_reachable(uow: UnitOfWork) -> bool:
    """One round trip; False instead of an error so a health check can report it."""
    try:
        uow.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def object_counts(uow: UnitOfWork, actor: Actor) -> dict[str, int]:
    """Everything mailwarden manages, by kind (superadmins only: the numbers span tenants)."""
    require(actor, Permission.METRICS_READ)
    queries = {
        "domains": select(func.count()).select_from(Domain),
        "mailboxes": select(func.count()).select_from(Mailbox).where(Mailbox.deleted_at.is_(None)),
        "mailboxes_removed": select(func.count())
        .select_from(Mailbox)
        .where(Mailbox.deleted_at.is_not(None)),
        "aliases": select(func.count(func.distinct(AliasTarget.address))),
        "alias_domains": select(func.count()).select_from(AliasDomain),
        "admins": select(func.count()).select_from(Admin),
        "api_keys": select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None)),
    }
    return {kind: uow.session.scalar(query) or 0 for kind, query in queries.items()}


def scoped_counts(uow: UnitOfWork, actor: Actor) -> dict[str, int]:
    """Domains, live mailboxes and aliases within the actor's domains (all of them for a
    superadmin): COUNT queries over the domain_id indexes, through `scope`."""
    require(actor, Permission.DOMAIN_READ)
    queries = {
        "domains": scope(select(func.count()).select_from(Domain), actor, Domain.id),
        "mailboxes": scope(
            select(func.count()).select_from(Mailbox).where(Mailbox.deleted_at.is_(None)),
            actor,
            Mailbox.domain_id,
        ),
        "aliases": scope(
            select(func.count(func.distinct(AliasTarget.address))), actor, AliasTarget.domain_id
        ),
    }
    return {kind: uow.session.scalar(query) or 0 for kind, query in queries.items()}


def domain_quota_use(uow: UnitOfWork, actor: Actor, *, limit: int = 10) -> list[DomainQuotaUse]:
    """Quota use of the actor's first `limit` domains by name, most used first.

    Bounded on purpose: ranking every domain by use would sum the whole mailboxes table. Two
    queries: the page of domains, then one grouped sum over their live mailboxes.
    """
    require(actor, Permission.DOMAIN_READ)
    check_limit(limit)
    found = list(
        uow.session.scalars(
            scope(select(Domain), actor, Domain.id).order_by(Domain.name).limit(limit)
        )
    )
    if not found:
        return []
    sums = scope(
        select(
            Mailbox.domain_id,
            func.count(),
            func.coalesce(func.sum(Mailbox.quota_bytes), 0),
            func.coalesce(func.sum(QuotaUsage.bytes), 0),
        )
        .outerjoin(QuotaUsage, QuotaUsage.username == Mailbox.address)
        .where(Mailbox.domain_id.in_([domain.id for domain in found]))
        .where(Mailbox.deleted_at.is_(None))
        .group_by(Mailbox.domain_id),
        actor,
        Mailbox.domain_id,
    )
    sums_by_domain = {
        domain_id: (int(count), int(allocated), int(used))
        for domain_id, count, allocated, used in uow.session.execute(sums)
    }
    uses = []
    for domain in found:
        count, allocated, used = sums_by_domain.get(domain.id, (0, 0, 0))
        uses.append(
            DomainQuotaUse(
                name=domain.name,
                quota_bytes=domain.quota_bytes,
                allocated_bytes=allocated,
                used_bytes=used,
                mailboxes=count,
            )
        )
    return sorted(uses, key=lambda use: (-use.used_bytes, -use.allocated_bytes, use.name))
