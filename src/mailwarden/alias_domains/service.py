"""Alias domains: every address of the alias domain is delivered to the same local part of its
target domain. Creating one claims a new domain name, so only superadmins create and remove them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import normalize_domain
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit, page_of
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork

from .models import AliasDomain
from .schemas import AliasDomainCreate, AliasDomainPublic


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
    limit: int = 50,
    after: str | None = None,
) -> Page[AliasDomainPublic]:
    require(actor, Permission.ALIAS_DOMAIN_READ)
    check_limit(limit)
    stmt = scope(
        select(AliasDomain, Domain).join(Domain, Domain.id == AliasDomain.target_domain_id),
        actor,
        AliasDomain.target_domain_id,
    )
    if target_domain:
        stmt = stmt.where(AliasDomain.target_domain_id == domains.get(uow, actor, target_domain).id)
    if after:
        stmt = stmt.where(AliasDomain.name > after.lower())
    rows = uow.session.execute(stmt.order_by(AliasDomain.name).limit(limit + 1)).all()
    items = [_public(alias_domain, target) for alias_domain, target in rows]
    return page_of(items, limit, lambda alias_domain: alias_domain.alias_domain)
