"""Aliases: an address (or `@domain`, a catch-all) delivered to one or more targets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import aliased

from mailwarden.admins import service as admins
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import (
    is_catch_all,
    normalize_alias_address,
    normalize_alias_target,
    split_address,
)
from mailwarden.kernel.errors import Conflict, NotFound, ValidationError
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
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox

from .models import AliasTarget
from .schemas import AliasCreate, AliasPublic, AliasUpdate

# An alias is its address: the leading column of the unique (address, target) index.
_ORDERINGS = {"address": (AliasTarget.address,)}
ALIAS_SORTS = sort_names(_ORDERINGS)


def _public(address: str, rows: list[AliasTarget]) -> AliasPublic:
    _, domain = split_address(address)
    return AliasPublic(
        address=address,
        domain=domain,
        catch_all=is_catch_all(address),
        targets=sorted(row.target for row in rows),
        # An alias delivers while any of its rows is active; edits keep them in step.
        active=any(row.active for row in rows),
    )


def _snapshot(alias: AliasPublic) -> dict[str, Any]:
    return {"address": alias.address, "targets": alias.targets, "active": alias.active}


def _targets(uow: UnitOfWork, address: str, values: Iterable[str], field: str) -> list[str]:
    """Normalize targets, drop duplicates (keeping order), refuse self-loops, cap the count."""
    seen: dict[str, None] = {}
    for index, value in enumerate(values):
        target = normalize_alias_target(value, f"{field}[{index}]")
        if target == address:
            raise ValidationError(
                f"{field}[{index}]", "self_loop", f"{address} cannot deliver to itself"
            )
        seen.setdefault(target, None)
    if len(seen) > uow.settings.max_alias_targets:
        raise ValidationError(
            field,
            "too_many_targets",
            f"an alias has at most {uow.settings.max_alias_targets} targets",
        )
    return list(seen)


def _rows(uow: UnitOfWork, actor: Actor, address: str) -> tuple[list[AliasTarget], Domain]:
    stmt = scope(
        select(AliasTarget).where(AliasTarget.address == address), actor, AliasTarget.domain_id
    )
    rows = list(uow.session.scalars(stmt.order_by(AliasTarget.target)))
    if not rows:
        raise NotFound("alias", address)
    domain = uow.session.get(Domain, rows[0].domain_id)
    assert domain is not None
    return rows, domain


def create(uow: UnitOfWork, actor: Actor, data: AliasCreate) -> AliasPublic:
    address = normalize_alias_address(data.address, "address")
    _, domain_name = split_address(address)
    domain = domains.get(uow, actor, domain_name, Permission.ALIAS_CREATE, for_update=True)
    domains.ensure_not_removed(domain, "address")
    admins.ensure_not_superadmin_address(uow, actor, address)
    targets = _targets(uow, address, data.targets, "targets")
    exists = select(AliasTarget.id).where(AliasTarget.address == address).limit(1)
    if uow.session.scalar(exists) is not None:
        raise Conflict("address", "exists", f"alias {address} exists already; edit it instead")
    mailboxes.ensure_not_pending_purge(uow, address)
    if uow.session.scalar(select(Mailbox.id).where(Mailbox.address == address)) is not None:
        raise Conflict(
            "address", "is_mailbox", f"{address} is a mailbox; use forwarding for a mailbox"
        )
    domains.check_alias_slot(uow, domain)
    rows = [
        AliasTarget(domain_id=domain.id, address=address, target=target, active=data.active)
        for target in targets
    ]
    uow.session.add_all(rows)
    uow.session.flush()
    alias = _public(address, rows)
    uow.record(
        actor, ChangeKind.CREATE, "alias", address, domain=domain.name, after=_snapshot(alias)
    )
    return alias


def get(uow: UnitOfWork, actor: Actor, address: str) -> AliasPublic:
    normalized = normalize_alias_address(address, "address")
    rows, _ = _rows(uow, actor, normalized)
    require(actor, Permission.ALIAS_READ, rows[0].domain_id)
    return _public(normalized, rows)


def update(uow: UnitOfWork, actor: Actor, address: str, data: AliasUpdate) -> AliasPublic:
    normalized = normalize_alias_address(address, "address")
    rows, domain = _rows(uow, actor, normalized)
    require(actor, Permission.ALIAS_UPDATE, domain.id)
    admins.ensure_not_superadmin_address(uow, actor, normalized)
    if data.set_targets is not None and (data.add_targets or data.remove_targets):
        raise ValidationError(
            "set_targets", "exclusive", "replace the targets, or add and remove; not both"
        )
    before = _public(normalized, rows)
    current = [row.target for row in rows]
    if data.set_targets is not None:
        wanted = _targets(uow, normalized, data.set_targets, "set_targets")
    else:
        added = _targets(uow, normalized, data.add_targets, "add_targets")
        removed = {
            normalize_alias_target(value, f"remove_targets[{index}]")
            for index, value in enumerate(data.remove_targets)
        }
        if missing := sorted(removed - set(current)):
            raise ValidationError(
                "remove_targets", "not_a_target", f"not a target of {normalized}: {missing[0]}"
            )
        wanted = _targets(
            uow, normalized, [t for t in current if t not in removed] + added, "targets"
        )
    if not wanted:
        raise ValidationError(
            "targets", "required", "an alias needs at least one target; remove the alias instead"
        )
    active = before.active if data.active is None else data.active
    keep = set(wanted)
    for row in rows:
        if row.target not in keep:
            uow.session.delete(row)
        else:
            row.active = active
    kept = [row for row in rows if row.target in keep]
    new_rows = [
        AliasTarget(domain_id=domain.id, address=normalized, target=target, active=active)
        for target in wanted
        if target not in current
    ]
    uow.session.add_all(new_rows)
    uow.session.flush()
    after = _public(normalized, kept + new_rows)
    uow.record_update(
        actor,
        "alias",
        normalized,
        domain=domain.name,
        before=_snapshot(before),
        after=_snapshot(after),
    )
    return after


def remove(uow: UnitOfWork, actor: Actor, address: str) -> None:
    normalized = normalize_alias_address(address, "address")
    rows, domain = _rows(uow, actor, normalized)
    require(actor, Permission.ALIAS_DELETE, domain.id)
    admins.ensure_not_superadmin_address(uow, actor, normalized)
    domains.ensure_not_protected(uow, actor, normalized)
    before = _public(normalized, rows)
    uow.session.execute(delete(AliasTarget).where(AliasTarget.address == normalized))
    uow.session.flush()
    uow.record(
        actor, ChangeKind.DELETE, "alias", normalized, domain=domain.name, before=_snapshot(before)
    )


def list_aliases(
    uow: UnitOfWork,
    actor: Actor,
    *,
    domain: str | None = None,
    search: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    after: str | None = None,
    sort: str | None = None,
) -> Page[AliasPublic]:
    """One page of aliases (grouped by address), then their targets in one more query."""
    require(actor, Permission.ALIAS_READ)
    check_limit(limit)
    ordering = choose_ordering(sort, _ORDERINGS, "address")
    position = decode_cursor(ordering, after, str.lower)
    stmt = scope(select(AliasTarget.address).distinct(), actor, AliasTarget.domain_id)
    if domain:
        stmt = stmt.where(AliasTarget.domain_id == domains.get(uow, actor, domain).id)
    if search:
        if len(search) > 254:
            raise ValidationError("search", "too_long", "a search term is at most 254 characters")
        pattern = like_pattern(search.lower())
        stmt = stmt.where(
            or_(
                AliasTarget.address.like(pattern, escape="\\"),
                AliasTarget.target.like(pattern, escape="\\"),
            )
        )
    if active is not None:
        # Active as _public says: while any of its rows is, whichever row matched the search.
        sibling = aliased(AliasTarget)
        any_active = exists().where(
            sibling.address == AliasTarget.address, sibling.active.is_(True)
        )
        stmt = stmt.where(any_active if active else ~any_active)
    addresses = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    page = page_of(addresses, limit, lambda address: address)
    rows = uow.session.scalars(
        select(AliasTarget)
        .where(AliasTarget.address.in_(page.items))
        .order_by(AliasTarget.address, AliasTarget.target)
    )
    grouped: dict[str, list[AliasTarget]] = {address: [] for address in page.items}
    for row in rows:
        grouped[row.address].append(row)
    items = [_public(address, grouped[address]) for address in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


def delivering_to(
    uow: UnitOfWork,
    actor: Actor,
    mailbox_address: str,
    *,
    limit: int = 50,
    after: str | None = None,
) -> Page[str]:
    """The alias addresses (catch-alls too) that list the mailbox among their targets.

    Its owner sees them in the portal; admins with alias read access see them for any mailbox
    in their domains, even aliases of other domains (they are where its mail comes from).
    """
    permission = Permission.MAILBOX_SELF_READ if actor.is_mailbox_user else Permission.ALIAS_READ
    mailbox, _domain = mailboxes.find_live(uow, actor, mailbox_address, permission)
    check_limit(limit)
    ordering = choose_ordering(None, _ORDERINGS, "address")
    position = decode_cursor(ordering, after, str.lower)
    stmt = select(AliasTarget.address).where(AliasTarget.target == mailbox.address)
    addresses = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    return page_of(addresses, limit, lambda address: address)
