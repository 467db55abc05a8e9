"""Domains: every rule about a domain, its limits and its quotas lives here, once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy import update as update_rows

from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import normalize_domain, split_address
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.moments import format_utc
from mailwarden.kernel.pagination import (
    Page,
    check_limit,
    choose_ordering,
    decode_cursor,
    keyset,
    like_pattern,
    page_of,
    sort_names,
)
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.sizes import format_size
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes.models import Mailbox
from mailwarden.stack.dovecot import sessions

from .models import Domain
from .schemas import DomainCreate, DomainPublic, DomainUpdate, DomainUsage

# Changing these changes what a domain may consume: superadmins only.
# Routing decides where a domain's mail goes: superadmins only as well.
_ADMINISTRATIVE_FIELDS = frozenset(
    {
        "active",
        "max_mailboxes",
        "max_aliases",
        "default_mailbox_quota_bytes",
        "quota_bytes",
        "backup_mx",
        "transport",
        # How many anonymous requests may pile up; opening registration is the domain's own call.
        "registration_pending_limit",
    }
)

# Each sort ends with the unique name, so equal creation times still page without gaps.
_ORDERINGS = {"name": (Domain.name,), "created_at": (Domain.created_at, Domain.name)}
DOMAIN_SORTS = sort_names(_ORDERINGS)

# `name:nexthop` as transport(5) reads it; the nexthop may be empty (`smtp:`), and nothing in
# it may break the map's one-line answer (whitespace, commas, quotes, control characters).
_TRANSPORT = re.compile(r"[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9.\-_\[\]:@+]*")


def normalize_transport(value: str) -> str:
    """A Postfix transport such as `smtp:[mx.example.net]:25`, or "" for the default."""
    value = value.strip()
    if value and not _TRANSPORT.fullmatch(value):
        raise ValidationError(
            "transport",
            "invalid_transport",
            "a transport looks like smtp:[mx.example.net]:25 or lmtp:inet:10.0.0.5:24 "
            "(transport name, colon, next hop without spaces or commas)",
        )
    return value


def snapshot(domain: Domain) -> dict[str, Any]:
    return DomainPublic.model_validate(domain).model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )


def get(
    uow: UnitOfWork,
    actor: Actor,
    name: str,
    permission: Permission = Permission.DOMAIN_READ,
    *,
    for_update: bool = False,
) -> Domain:
    """The domain `name` as the actor may see it; NotFound for foreign and missing alike."""
    ascii_name = normalize_domain(name, "domain")
    stmt = scope(select(Domain).where(Domain.name == ascii_name), actor, Domain.id)
    if for_update:
        # Serializes concurrent creations in one domain, so limits cannot be raced past.
        stmt = stmt.with_for_update()
    domain = uow.session.scalars(stmt).one_or_none()
    if domain is None:
        raise NotFound("domain", ascii_name)
    require(actor, permission, domain.id)
    return domain


def ensure_name_free(uow: UnitOfWork, ascii_name: str, field: str = "name") -> None:
    """Domains and alias domains share one name space: Postfix must find a name in one place."""
    if uow.session.scalar(select(Domain.id).where(Domain.name == ascii_name)) is not None:
        raise Conflict(field, "exists", f"domain {ascii_name} exists already")
    if uow.session.scalar(select(AliasDomain.id).where(AliasDomain.name == ascii_name)):
        raise Conflict(field, "is_alias_domain", f"{ascii_name} is already an alias domain")


def ensure_not_protected(uow: UnitOfWork, actor: Actor, address: str) -> None:
    """RFC 2142 role addresses (postmaster@, abuse@) are removed by superadmins only."""
    local_part, _ = split_address(address)
    if not actor.is_superadmin and local_part in uow.settings.protected_local_parts:
        raise PermissionDenied(
            "domain:protected-address",
            f"{local_part}@ addresses are required by RFC 2142; only a superadmin removes them",
        )


def _check_default_quota(default_quota: int, domain_quota: int) -> None:
    if domain_quota and not default_quota:
        raise ValidationError(
            "default_mailbox_quota_bytes",
            "required_with_domain_quota",
            "a domain with a quota needs a default mailbox quota (unlimited mailboxes would "
            "exceed it)",
        )
    if domain_quota and default_quota > domain_quota:
        raise LimitExceeded(
            "default_mailbox_quota_bytes",
            "exceeds_domain_quota",
            f"default mailbox quota {format_size(default_quota)} exceeds the domain quota "
            f"{format_size(domain_quota)}",
        )


def create(uow: UnitOfWork, actor: Actor, data: DomainCreate) -> DomainPublic:
    require(actor, Permission.DOMAIN_CREATE)
    name = normalize_domain(data.name, "name")
    check_text(data.description, "description")
    ensure_name_free(uow, name, "name")
    _check_default_quota(data.default_mailbox_quota_bytes, data.quota_bytes)
    transport = normalize_transport(data.transport)
    domain = Domain(
        **data.model_dump(exclude={"name", "transport"}), name=name, transport=transport
    )
    uow.session.add(domain)
    uow.session.flush()
    uow.record(actor, ChangeKind.CREATE, "domain", name, domain=name, after=snapshot(domain))
    return DomainPublic.model_validate(domain)


def ensure_not_removed(domain: Domain, field: str = "domain") -> None:
    """A domain removed with --cascade takes nothing new and nothing back: it is inactive, and
    the purge deletes it with its last mailbox."""
    if domain.deleted_at is not None:
        raise Conflict(
            field,
            "domain_removed",
            f"domain {domain.name} was removed at {format_utc(domain.deleted_at)}; "
            "`mailwarden maintenance purge` deletes its mailboxes after their grace period, "
            "then the domain",
        )


def ensure_hosted(domain: Domain) -> None:
    """Mailboxes live only in hosted domains: a backup MX relays the domain's mail away, so a
    mailbox here would never receive anything (and could still log in)."""
    if domain.backup_mx:
        raise Conflict(
            "address",
            "backup_mx_domain",
            f"{domain.name} is relayed to its own server (backup MX); its mailboxes live there",
        )


def _has_mailboxes(uow: UnitOfWork, domain: Domain) -> bool:
    """Any mailbox at all, removed ones included (their mail is still here)."""
    stmt = select(Mailbox.id).where(Mailbox.domain_id == domain.id).limit(1)
    return uow.session.scalar(stmt) is not None


def mailbox_count(uow: UnitOfWork, domain: Domain) -> int:
    """Mailboxes that count against max_mailboxes: a removed one (pending purge) does not, so
    restoring it re-checks the limit."""
    stmt = (
        select(func.count())
        .select_from(Mailbox)
        .where(Mailbox.domain_id == domain.id, Mailbox.deleted_at.is_(None))
    )
    return uow.session.scalar(stmt) or 0


def alias_count(uow: UnitOfWork, domain: Domain) -> int:
    """Aliases, not targets: an alias with three targets counts once."""

    stmt = select(func.count(func.distinct(AliasTarget.address))).where(
        AliasTarget.domain_id == domain.id
    )
    return uow.session.scalar(stmt) or 0


def allocated_quota(uow: UnitOfWork, domain: Domain) -> int:
    """Quota handed out to the domain's mailboxes; removed ones have given theirs back."""
    stmt = select(func.coalesce(func.sum(Mailbox.quota_bytes), 0)).where(
        Mailbox.domain_id == domain.id, Mailbox.deleted_at.is_(None)
    )
    return int(uow.session.scalar(stmt) or 0)


def _unlimited_mailboxes(uow: UnitOfWork, domain: Domain) -> int:
    # Removed mailboxes are left out like everywhere else: restore re-checks their quota.
    stmt = (
        select(func.count())
        .select_from(Mailbox)
        .where(
            Mailbox.domain_id == domain.id,
            Mailbox.quota_bytes == 0,
            Mailbox.deleted_at.is_(None),
        )
    )
    return uow.session.scalar(stmt) or 0


def check_mailbox_slot(uow: UnitOfWork, domain: Domain) -> None:
    """One more mailbox must fit under the domain's max_mailboxes."""
    if domain.max_mailboxes and mailbox_count(uow, domain) >= domain.max_mailboxes:
        raise LimitExceeded(
            "address",
            "max_mailboxes",
            f"domain {domain.name} has reached its limit of {domain.max_mailboxes} mailboxes",
        )


def check_alias_slot(uow: UnitOfWork, domain: Domain) -> None:
    """One more alias must fit under the domain's max_aliases."""
    if domain.max_aliases and alias_count(uow, domain) >= domain.max_aliases:
        raise LimitExceeded(
            "address",
            "max_aliases",
            f"domain {domain.name} has reached its limit of {domain.max_aliases} aliases",
        )


def check_mailbox_quota(
    uow: UnitOfWork, domain: Domain, quota: int, *, replacing: int = 0, field: str = "quota_bytes"
) -> None:
    """A mailbox quota must fit the domain quota, alone and summed with the domain's others.

    `replacing` is the quota the mailbox holds now (on edits), which is given back first.
    """
    if not domain.quota_bytes:
        return
    if quota == 0:
        raise LimitExceeded(
            field,
            "unlimited_in_limited_domain",
            f"domain {domain.name} has a quota of {format_size(domain.quota_bytes)}, "
            "so its mailboxes cannot be unlimited",
        )
    if quota > domain.quota_bytes:
        raise LimitExceeded(
            field,
            "exceeds_domain_quota",
            f"mailbox quota {format_size(quota)} exceeds the domain quota "
            f"{format_size(domain.quota_bytes)}",
        )
    free = domain.quota_bytes - (allocated_quota(uow, domain) - replacing)
    if quota > free:
        raise LimitExceeded(
            field,
            "domain_quota_exhausted",
            f"domain {domain.name} has {format_size(free) if free > 0 else 'nothing'} of its "
            f"{format_size(domain.quota_bytes)} quota left, less than {format_size(quota)}",
        )


def update(uow: UnitOfWork, actor: Actor, name: str, data: DomainUpdate) -> DomainPublic:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "description" in changes:
        check_text(changes["description"], "description")
    if "transport" in changes:
        changes["transport"] = normalize_transport(changes["transport"])
    domain = get(uow, actor, name, Permission.DOMAIN_UPDATE, for_update=True)
    # A form or a full body repeats what it does not change: only real changes of the
    # administrative fields need a superadmin.
    if any(getattr(domain, f) != changes[f] for f in _ADMINISTRATIVE_FIELDS & changes.keys()):
        require(actor, Permission.DOMAIN_ADMINISTER, domain.id)
    ensure_not_removed(domain)
    before = snapshot(domain)
    if changes.get("backup_mx") and not domain.backup_mx and _has_mailboxes(uow, domain):
        raise Conflict(
            "backup_mx",
            "has_mailboxes",
            f"domain {domain.name} has mailboxes; a backup MX relays all its mail elsewhere, so "
            "move or remove them (and purge) first",
        )
    quota = changes.get("quota_bytes", domain.quota_bytes)
    default_quota = changes.get("default_mailbox_quota_bytes", domain.default_mailbox_quota_bytes)
    _check_default_quota(default_quota, quota)
    max_mailboxes = changes.get("max_mailboxes", 0)
    if max_mailboxes and (count := mailbox_count(uow, domain)) > max_mailboxes:
        raise LimitExceeded(
            "max_mailboxes", "below_usage", f"domain {domain.name} already has {count} mailboxes"
        )
    max_aliases = changes.get("max_aliases", 0)
    if max_aliases and (count := alias_count(uow, domain)) > max_aliases:
        raise LimitExceeded(
            "max_aliases", "below_usage", f"domain {domain.name} already has {count} aliases"
        )
    if "quota_bytes" in changes and quota:
        allocated = allocated_quota(uow, domain)
        if allocated > quota:
            raise LimitExceeded(
                "quota_bytes",
                "below_allocated",
                f"mailboxes of {domain.name} are allocated {format_size(allocated)} already",
            )
        if unlimited := _unlimited_mailboxes(uow, domain):
            raise LimitExceeded(
                "quota_bytes",
                "unlimited_mailboxes_exist",
                f"{unlimited} mailboxes of {domain.name} have no quota; give them one first",
            )
    if changes.get("active") is False and domain.active:
        _end_sessions_after_commit(uow, domain.name)
    for field, value in changes.items():
        setattr(domain, field, value)
    uow.session.flush()
    uow.record_update(
        actor, "domain", domain.name, domain=domain.name, before=before, after=snapshot(domain)
    )
    return DomainPublic.model_validate(domain)


@dataclass(frozen=True, slots=True)
class DomainRemoval:
    """What `remove` did: the domain deleted at once, or deactivated and left for the purge."""

    name: str
    # True: the row is gone. False: the domain is inactive and marked removed; `maintenance
    # purge` deletes it together with its last mailbox, after `purge_after`.
    deleted: bool
    # Deleted at once.
    aliases: int
    alias_domains: list[str]
    # Removed by this call (delivery and login stopped; mail kept until the purge).
    mailboxes_removed: int = 0
    # Removed before this call, awaiting their purge as well.
    mailboxes_pending: int = 0
    removed_at: datetime | None = None
    purge_after: datetime | None = None


def remove(uow: UnitOfWork, actor: Actor, name: str, *, cascade: bool = False) -> DomainRemoval:
    """Remove a domain. Without `cascade`, only a domain that holds nothing.

    With `cascade`, aliases and alias domains are deleted at once. Mailboxes are removed the way
    `mailbox remove` removes one: delivery and login stop now (the domain is deactivated too,
    and Postfix and Dovecot ask for active domains only), and the mail stays on disk for the
    grace period. The domain row stays, marked removed, until `maintenance purge` has purged
    its last mailbox, and goes with it. An empty domain is deleted at once.
    """

    domain = get(uow, actor, name, Permission.DOMAIN_DELETE, for_update=True)
    if domain.deleted_at is not None:
        raise Conflict(
            "domain",
            "already_removed",
            f"domain {domain.name} was removed at {format_utc(domain.deleted_at)} already; "
            "`mailwarden maintenance purge` deletes it with its last mailbox",
        )
    live = mailbox_count(uow, domain)
    pending = _removed_mailbox_count(uow, domain)
    aliases = alias_count(uow, domain)
    alias_domains = list(
        uow.session.scalars(
            select(AliasDomain.name).where(AliasDomain.target_domain_id == domain.id)
        )
    )
    if pending and not cascade:
        raise Conflict(
            "domain",
            "pending_purge",
            f"domain {domain.name} has {pending} removed mailboxes awaiting purge, with their "
            "mail still on disk; restore them, or remove the domain after `mailwarden "
            "maintenance purge` has purged them, or use cascade to deactivate it now and "
            "have the purge delete it with its last mailbox",
        )
    if (live or aliases or alias_domains) and not cascade:
        raise Conflict(
            "domain",
            "not_empty",
            f"domain {domain.name} still has {live} mailboxes, {aliases} aliases and "
            f"{len(alias_domains)} alias domains; remove them first or use cascade",
        )
    before = snapshot(domain) | {
        "mailboxes": live,
        "aliases": aliases,
        "alias_domains": alias_domains,
    }
    # Set-based deletes and updates: a big domain must not be loaded row by row.
    uow.session.execute(delete(AliasTarget).where(AliasTarget.domain_id == domain.id))
    uow.session.execute(delete(AliasDomain).where(AliasDomain.target_domain_id == domain.id))
    if not live and not pending:
        uow.session.delete(domain)
        uow.session.flush()
        uow.record(
            actor, ChangeKind.DELETE, "domain", domain.name, domain=domain.name, before=before
        )
        return DomainRemoval(domain.name, True, aliases, alias_domains)
    return _defer_to_purge(uow, actor, domain, before, pending)


def _end_sessions_after_commit(uow: UnitOfWork, domain_name: str) -> None:
    """Every mailbox of the domain stops logging in at once; open sessions end here."""
    mask = f"*@{domain_name}"
    uow.after_commit(lambda: sessions.end_sessions(uow.settings, mask))


def _removed_mailbox_count(uow: UnitOfWork, domain: Domain) -> int:
    stmt = (
        select(func.count())
        .select_from(Mailbox)
        .where(Mailbox.domain_id == domain.id, Mailbox.deleted_at.is_not(None))
    )
    return uow.session.scalar(stmt) or 0


def _defer_to_purge(
    uow: UnitOfWork, actor: Actor, domain: Domain, before: dict[str, Any], pending: int
) -> DomainRemoval:
    """Remove every live mailbox of the domain, deactivate it, and leave it for the purge."""
    moment = utcnow()
    # One moment for the domain and the mailboxes it takes along, so they stay recognizable
    # as removed together.
    marked = uow.session.execute(
        update_rows(Mailbox)
        .where(Mailbox.domain_id == domain.id, Mailbox.deleted_at.is_(None))
        .values(deleted_at=moment)
    )
    removed = cast("CursorResult[Any]", marked).rowcount
    _end_sessions_after_commit(uow, domain.name)
    domain.active = False
    domain.deleted_at = moment
    uow.session.flush()
    latest = uow.session.scalar(
        select(func.max(Mailbox.deleted_at)).where(Mailbox.domain_id == domain.id)
    )
    grace = timedelta(hours=uow.settings.deletion_grace_hours)
    purge_after = (latest or moment) + grace
    facts = {"removed_at": moment.isoformat(), "purge_after": purge_after.isoformat()}
    uow.record(
        actor,
        ChangeKind.DELETE,
        "domain",
        domain.name,
        domain=domain.name,
        before=before | facts | {"mailboxes_pending_purge": pending},
    )
    if removed:
        # One entry for all of them: the purge writes one per mailbox when it deletes it.
        uow.record(
            actor,
            ChangeKind.DELETE,
            "mailbox",
            f"*@{domain.name}",
            domain=domain.name,
            before={"mailboxes": removed} | facts,
            action="mailbox.remove",
        )
    return DomainRemoval(
        name=domain.name,
        deleted=False,
        aliases=before["aliases"],
        alias_domains=before["alias_domains"],
        mailboxes_removed=removed,
        mailboxes_pending=pending,
        removed_at=moment,
        purge_after=purge_after,
    )


def show(uow: UnitOfWork, actor: Actor, name: str) -> DomainUsage:

    domain = get(uow, actor, name)
    alias_domains = list(
        uow.session.scalars(
            select(AliasDomain.name)
            .where(AliasDomain.target_domain_id == domain.id)
            .order_by(AliasDomain.name)
            .limit(100)
        )
    )
    return DomainUsage(
        domain=DomainPublic.model_validate(domain),
        mailboxes=mailbox_count(uow, domain),
        aliases=alias_count(uow, domain),
        alias_domains=alias_domains,
        allocated_quota_bytes=allocated_quota(uow, domain),
    )


def list_domains(
    uow: UnitOfWork,
    actor: Actor,
    *,
    limit: int = 50,
    after: str | None = None,
    search: str | None = None,
    active: bool | None = None,
    sort: str | None = None,
) -> Page[DomainPublic]:
    """One page of domains in one of DOMAIN_SORTS (by name unless told)."""
    require(actor, Permission.DOMAIN_READ)
    check_limit(limit)
    ordering = choose_ordering(sort, _ORDERINGS, "name")
    position = decode_cursor(ordering, after, lambda key: normalize_domain(key, "cursor"))
    stmt = scope(select(Domain), actor, Domain.id)
    if search:
        stmt = stmt.where(Domain.name.like(like_pattern(search.lower()), escape="\\"))
    if active is not None:
        stmt = stmt.where(Domain.active.is_(active))
    rows = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    page = page_of(rows, limit, ordering.cursor_of)
    return Page([DomainPublic.model_validate(row) for row in page.items], page.next_cursor)
