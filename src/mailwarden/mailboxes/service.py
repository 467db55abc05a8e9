"""Mailboxes: creation, edits, passwords and removal, with every rule once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from mailwarden.admins import service as admins
from mailwarden.aliases.models import AliasTarget
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import normalize_address, split_address
from mailwarden.kernel.errors import Conflict, NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit, like_pattern, page_of
from mailwarden.kernel.passwords import Scheme, needs_rehash, scheme_of
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork

from .models import Mailbox
from .schemas import MailboxCreate, MailboxPublic, MailboxUpdate


def to_public(mailbox: Mailbox, configured: Scheme) -> MailboxPublic:
    local, domain = split_address(mailbox.address)
    scheme = scheme_of(mailbox.password_hash)
    return MailboxPublic(
        address=mailbox.address,
        domain=domain,
        local_part=local,
        name=mailbox.name,
        quota_bytes=mailbox.quota_bytes,
        active=mailbox.active,
        maildir=mailbox.maildir,
        password_scheme=scheme.value if scheme else None,
        password_needs_upgrade=needs_rehash(mailbox.password_hash, configured),
        password_changed_at=mailbox.password_changed_at,
        created_at=mailbox.created_at,
        updated_at=mailbox.updated_at,
    )


def snapshot(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "address": mailbox.address,
        "name": mailbox.name,
        "quota_bytes": mailbox.quota_bytes,
        "active": mailbox.active,
        "maildir": mailbox.maildir,
    }


def _password_facts(mailbox: Mailbox) -> dict[str, Any]:
    scheme = scheme_of(mailbox.password_hash)
    return {
        "password_scheme": scheme.value if scheme else None,
        "password_changed_at": mailbox.password_changed_at.isoformat(),
    }


def _get(
    uow: UnitOfWork, actor: Actor, address: str, permission: Permission
) -> tuple[Mailbox, Domain]:
    normalized = normalize_address(address, "address")
    stmt = scope(
        select(Mailbox, Domain)
        .join(Domain, Domain.id == Mailbox.domain_id)
        .where(Mailbox.address == normalized),
        actor,
        Mailbox.domain_id,
    )
    row = uow.session.execute(stmt).one_or_none()
    if row is None:
        raise NotFound("mailbox", normalized)
    mailbox, domain = row
    require(actor, permission, mailbox.domain_id)
    return mailbox, domain


def _address_is_free(uow: UnitOfWork, address: str) -> None:
    if uow.session.scalar(select(Mailbox.id).where(Mailbox.address == address)) is not None:
        raise Conflict("address", "exists", f"mailbox {address} exists already")
    alias = select(AliasTarget.id).where(AliasTarget.address == address).limit(1)
    if uow.session.scalar(alias) is not None:
        raise Conflict("address", "is_alias", f"{address} is already an alias")


def create(
    uow: UnitOfWork,
    actor: Actor,
    data: MailboxCreate,
    *,
    password: str,
    scheme: Scheme | None = None,
) -> MailboxPublic:
    address = normalize_address(data.address, "address")
    local_part, domain_name = split_address(address)
    domain = domains.get(uow, actor, domain_name, Permission.MAILBOX_CREATE, for_update=True)
    admins.ensure_not_superadmin_address(uow, actor, address)
    _address_is_free(uow, address)
    domains.check_mailbox_slot(uow, domain)
    quota = domain.default_mailbox_quota_bytes if data.quota_bytes is None else data.quota_bytes
    domains.check_mailbox_quota(uow, domain, quota)
    password_hash = uow.new_password_hash(password, scheme)
    maildir = uow.settings.maildir_template.format(domain=domain.name, local_part=local_part)
    mailbox = Mailbox(
        domain_id=domain.id,
        local_part=local_part,
        address=address,
        name=data.name,
        password_hash=password_hash,
        quota_bytes=quota,
        active=data.active,
        maildir=maildir,
    )
    uow.session.add(mailbox)
    uow.session.flush()
    uow.record(
        actor, ChangeKind.CREATE, "mailbox", address, domain=domain.name, after=snapshot(mailbox)
    )
    return to_public(mailbox, uow.settings.password_scheme)


def get(uow: UnitOfWork, actor: Actor, address: str) -> MailboxPublic:
    mailbox, _ = _get(uow, actor, address, Permission.MAILBOX_READ)
    return to_public(mailbox, uow.settings.password_scheme)


def update(uow: UnitOfWork, actor: Actor, address: str, data: MailboxUpdate) -> MailboxPublic:
    mailbox, domain = _get(uow, actor, address, Permission.MAILBOX_UPDATE)
    admins.ensure_not_superadmin_address(uow, actor, mailbox.address)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "quota_bytes" in changes and changes["quota_bytes"] != mailbox.quota_bytes:
        domain = domains.get(uow, actor, domain.name, Permission.MAILBOX_UPDATE, for_update=True)
        domains.check_mailbox_quota(
            uow, domain, changes["quota_bytes"], replacing=mailbox.quota_bytes
        )
    before = snapshot(mailbox)
    for field, value in changes.items():
        setattr(mailbox, field, value)
    uow.session.flush()
    uow.record_update(
        actor,
        "mailbox",
        mailbox.address,
        domain=domain.name,
        before=before,
        after=snapshot(mailbox),
    )
    return to_public(mailbox, uow.settings.password_scheme)


def set_password(
    uow: UnitOfWork,
    actor: Actor,
    address: str,
    password: str,
    *,
    scheme: Scheme | None = None,
) -> MailboxPublic:
    mailbox, domain = _get(uow, actor, address, Permission.MAILBOX_PASSWORD)
    admins.ensure_not_superadmin_address(uow, actor, mailbox.address)
    new_hash = uow.new_password_hash(password, scheme)
    before = _password_facts(mailbox)
    mailbox.password_hash = new_hash
    mailbox.password_changed_at = utcnow()
    uow.session.flush()
    # The audit entry says when the password changed and how it is hashed, never the hash.
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "mailbox",
        mailbox.address,
        domain=domain.name,
        before=before,
        after=_password_facts(mailbox),
        action="mailbox.password",
    )
    return to_public(mailbox, uow.settings.password_scheme)


def remove(uow: UnitOfWork, actor: Actor, address: str) -> None:
    mailbox, domain = _get(uow, actor, address, Permission.MAILBOX_DELETE)
    admins.ensure_not_superadmin_address(uow, actor, mailbox.address)
    domains.ensure_not_protected(uow, actor, mailbox.address)
    before = snapshot(mailbox)
    uow.session.delete(mailbox)
    uow.session.flush()
    uow.record(
        actor, ChangeKind.DELETE, "mailbox", mailbox.address, domain=domain.name, before=before
    )


def list_mailboxes(
    uow: UnitOfWork,
    actor: Actor,
    *,
    domain: str | None = None,
    search: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[MailboxPublic]:
    require(actor, Permission.MAILBOX_READ)
    check_limit(limit)
    stmt = scope(select(Mailbox), actor, Mailbox.domain_id)
    if domain:
        stmt = stmt.where(Mailbox.domain_id == domains.get(uow, actor, domain).id)
    if search:
        if len(search) > 254:
            raise ValidationError("search", "too_long", "a search term is at most 254 characters")
        pattern = like_pattern(search)
        stmt = stmt.where(
            or_(
                Mailbox.address.like(like_pattern(search.lower()), escape="\\"),
                Mailbox.name.ilike(pattern, escape="\\"),
            )
        )
    if active is not None:
        stmt = stmt.where(Mailbox.active.is_(active))
    if after:
        stmt = stmt.where(Mailbox.address > after.lower())
    rows = list(uow.session.scalars(stmt.order_by(Mailbox.address).limit(limit + 1)))
    items = [to_public(row, uow.settings.password_scheme) for row in rows]
    return page_of(items, limit, lambda mailbox: mailbox.address)
