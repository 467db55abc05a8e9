"""Alias domains: every address of the alias domain is delivered to the same local part of its
target domain. Creating one claims a new domain name, so only superadmins create and remove them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import normalize_domain
from mailwarden.kernel.errors import NotFound, ValidationError
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
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork

from .models import AliasDomain
from .schemas import AliasDomainCreate, AliasDomainPublic

# Named after the public field; the unique index on the name serves it.
_ORDERINGS = {"alias_domain": (AliasDomain.name,)}
ALIAS_DOMAIN_SORTS = sort_names(_ORDERINGS)


def _public(alias_domain: AliasDomain, target: Domain) -> AliasDomainPublic:
    return AliasDomainPublic(
        alias_domain=alias_domain.name,
        target_domain=target.name,
        active=alias_domain.active,
        created_at=alias_domain.created_at,
    )


def _snapshot(alias_domain: AliasDomainPublic) -> dict[str, Any]:
    return alias_domain.model_dump(mode="json", exclude={"created_at"})


def create(uow: UnitOfWork, actor: Actor, data: AliasDomainCreate) -> AliasDomainPublic:
    require(actor, Permission.ALIAS_DOMAIN_CREATE)
    name = normalize_domain(data.alias_domain, "alias_domain")
    target_name = normalize_domain(data.target_domain, "target_domain")
    if name == target_name:
        raise ValidationError("alias_domain", "self_loop", "a domain cannot be its own alias")
    target = domains.get(uow, actor, target_name, Permission.ALIAS_DOMAIN_CREATE)
    domains.ensure_not_removed(target, "target_domain")
    domains.ensure_name_free(uow, name, "alias_domain")
    alias_domain = AliasDomain(name=name, target_domain_id=target.id, active=data.active)
    uow.session.add(alias_domain)
    uow.session.flush()
    public = _public(alias_domain, target)
    uow.record(
        actor, ChangeKind.CREATE, "alias_domain", name, domain=target.name, after=_snapshot(public)
    )
    return public


def _get(uow: UnitOfWork, actor: Actor, name: str) -> tuple[AliasDomain, Domain]:
    ascii_name = normalize_domain(name, "alias_domain")
    stmt = scope(
        select(AliasDomain, Domain)
        .join(Domain, Domain.id == AliasDomain.target_domain_id)
        .where(AliasDomain.name == ascii_name),
        actor,
        AliasDomain.target_domain_id,
    )
    row = uow.session.execute(stmt).one_or_none()
    if row is None:
        raise NotFound("alias domain", ascii_name)
    alias_domain, target = row
    return alias_domain, target


def get(uow: UnitOfWork, actor: Actor, name: str) -> AliasDomainPublic:
    alias_domain, target = _get(uow, actor, name)
    require(actor, Permission.ALIAS_DOMAIN_READ, target.id)
    return _public(alias_domain, target)


def remove(uow: UnitOfWork, actor: Actor, name: str) -> None:
    require(actor, Permission.ALIAS_DOMAIN_DELETE)
    alias_domain, target = _get(uow, actor, name)
    before = _snapshot(_public(alias_domain, target))
    uow.session.delete(alias_domain)
    uow.session.flush()
    uow.record(
        actor,
        ChangeKind.DELETE,
        "alias_domain",
        alias_domain.name,
        domain=target.name,
        before=before,
    )


def list_alias_domains(
    uow: UnitOfWork,
    actor: Actor,
    *,
    target_domain: str | None = None,
    search: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    after: str | None = None,
    sort: str | None = None,
) -> Page[AliasDomainPublic]:
    """One page of alias domains in one of ALIAS_DOMAIN_SORTS (by name unless told)."""
    require(actor, Permission.ALIAS_DOMAIN_READ)
    check_limit(limit)
    ordering = choose_ordering(sort, _ORDERINGS, "alias_domain")
    position = decode_cursor(ordering, after, str.lower)
    # The page comes from alias_domains alone, its target domains after: joined to a small
    # domains table, MariaDB buffers the join, loses the index order and sorts every row.
    stmt = scope(select(AliasDomain), actor, AliasDomain.target_domain_id)
    if target_domain:
        stmt = stmt.where(AliasDomain.target_domain_id == domains.get(uow, actor, target_domain).id)
    if search:
        if len(search) > 253:
            raise ValidationError("search", "too_long", "a search term is at most 253 characters")
        pattern = like_pattern(search.lower())
        stmt = stmt.where(
            or_(
                AliasDomain.name.like(pattern, escape="\\"),
                AliasDomain.target_domain_id.in_(
                    select(Domain.id).where(Domain.name.like(pattern, escape="\\"))
                ),
            )
        )
    if active is not None:
        stmt = stmt.where(AliasDomain.active.is_(active))
    rows = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    page = page_of(rows, limit, ordering.cursor_of)
    target_ids = {row.target_domain_id for row in page.items}
    targets = {
        target.id: target
        for target in uow.session.scalars(select(Domain).where(Domain.id.in_(target_ids)))
    }
    items = [_public(row, targets[row.target_domain_id]) for row in page.items]
    return Page(items, page.next_cursor)
