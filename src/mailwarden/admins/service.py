"""Administrators: superadmins manage everything; domain admins manage their listed domains."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, select

from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
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
from mailwarden.kernel.passwords import (
    Scheme,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

from .models import Admin, AdminDomain
from .schemas import AdminCreate, AdminPublic, AdminUpdate

_ORDERINGS = {"username": (Admin.username,)}
ADMIN_SORTS = sort_names(_ORDERINGS)

# A login name or an e-mail address; nothing that could confuse a log line or a shell.
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,253}", re.ASCII | re.IGNORECASE)


def normalize_username(value: str, field: str = "username") -> str:
    if not value:
        raise ValidationError(field, "required", "a username is required")
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise ValidationError(field, "whitespace", "a username cannot contain whitespace")
    # Match before lowercasing: str.lower() maps lookalikes such as the Kelvin sign to ASCII.
    if not _USERNAME.fullmatch(value):
        raise ValidationError(
            field,
            "invalid_username",
            "a username starts with a letter or digit and uses only letters, digits and . _ @ + -"
            " (at most 254 characters)",
        )
    return value.lower()


def _domain_names(uow: UnitOfWork, admin: Admin) -> list[str]:
    stmt = (
        select(Domain.name)
        .join(AdminDomain, AdminDomain.domain_id == Domain.id)
        .where(AdminDomain.admin_id == admin.id)
        .order_by(Domain.name)
    )
    return list(uow.session.scalars(stmt))


def _public(uow: UnitOfWork, admin: Admin) -> AdminPublic:
    return AdminPublic(
        username=admin.username,
        role=Role(admin.role),
        domains=_domain_names(uow, admin) if admin.role == Role.DOMAIN_ADMIN.value else [],
        active=admin.active,
        created_at=admin.created_at,
        updated_at=admin.updated_at,
    )


def _snapshot(admin: AdminPublic) -> dict[str, Any]:
    return admin.model_dump(mode="json", exclude={"created_at", "updated_at"})


def _find(uow: UnitOfWork, username: str) -> Admin:
    name = normalize_username(username)
    admin = uow.session.scalars(select(Admin).where(Admin.username == name)).one_or_none()
    if admin is None:
        raise NotFound("admin", name)
    return admin


def _is_self(actor: Actor, admin: Admin) -> bool:
    return actor.admin_id is not None and actor.admin_id == admin.id


def _resolve_domains(uow: UnitOfWork, actor: Actor, names: list[str], field: str) -> list[Domain]:
    resolved: dict[int, Domain] = {}
    for index, name in enumerate(names):
        try:
            domain = domains.get(uow, actor, name)
        except ValidationError as exc:
            raise ValidationError(f"{field}[{index}]", exc.rule, exc.issues[0].message) from None
        resolved[domain.id] = domain
    return list(resolved.values())


def _active_superadmins(uow: UnitOfWork) -> int:
    stmt = (
        select(func.count())
        .select_from(Admin)
        .where(Admin.role == Role.SUPERADMIN.value, Admin.active.is_(True))
    )
    return uow.session.scalar(stmt) or 0


def _guard_last_superadmin(uow: UnitOfWork, admin: Admin, field: str) -> None:
    """The console must keep a way in: the last active superadmin stays."""
    if admin.role == Role.SUPERADMIN.value and admin.active and _active_superadmins(uow) <= 1:
        raise Conflict(field, "last_superadmin", "this is the last active superadmin")


def create(uow: UnitOfWork, actor: Actor, data: AdminCreate, *, password: str) -> AdminPublic:
    require(actor, Permission.ADMIN_CREATE)
    username = normalize_username(data.username)
    if data.role is Role.SUPERADMIN and data.domains:
        raise ValidationError(
            "domains", "not_for_superadmin", "a superadmin manages every domain; list none"
        )
    if data.role is Role.DOMAIN_ADMIN and not data.domains:
        raise ValidationError("domains", "required", "a domain admin needs at least one domain")
    exists = select(Admin.id).where(Admin.username == username)
    if uow.session.scalar(exists) is not None:
        raise Conflict("username", "exists", f"admin {username} exists already")
    managed = _resolve_domains(uow, actor, data.domains, "domains")
    admin = Admin(
        username=username,
        role=data.role.value,
        password_hash=uow.new_password_hash(password),
        active=data.active,
    )
    uow.session.add(admin)
    uow.session.flush()
    uow.session.add_all(AdminDomain(admin_id=admin.id, domain_id=d.id) for d in managed)
    uow.session.flush()
    public = _public(uow, admin)
    uow.record(actor, ChangeKind.CREATE, "admin", username, domain=None, after=_snapshot(public))
    return public


def _authorize_self_or(actor: Actor, username: str, permission: Permission) -> None:
    """Every admin may act on its own account; anything else needs `permission`.

    Checked before the lookup, so the answer never tells which usernames exist.
    """
    is_self = actor.admin_id is not None and normalize_username(username) == actor.username
    # A key is not the password: changing its own account through one takes the permission
    # itself, or a narrowed (or stolen) key could take the account over. Self-service with the
    # current password is change_own_password.
    if not is_self or (actor.api_key is not None and not permission.is_read):
        require(actor, permission)
    elif actor.read_only and not permission.is_read:
        raise PermissionDenied(str(permission))


def get(uow: UnitOfWork, actor: Actor, username: str) -> AdminPublic:
    _authorize_self_or(actor, username, Permission.ADMIN_READ)
    return _public(uow, _find(uow, username))


def update(uow: UnitOfWork, actor: Actor, username: str, data: AdminUpdate) -> AdminPublic:
    require(actor, Permission.ADMIN_UPDATE)
    admin = _find(uow, username)
    before = _public(uow, admin)
    role = data.role or Role(admin.role)
    if (role is not Role.SUPERADMIN or data.active is False) and _is_self(actor, admin):
        raise Conflict("role", "self_demotion", "you cannot demote or deactivate yourself")
    if role is not Role.SUPERADMIN or data.active is False:
        _guard_last_superadmin(uow, admin, "role" if data.role else "active")
    added = _resolve_domains(uow, actor, data.add_domains, "add_domains")
    removed = _resolve_domains(uow, actor, data.remove_domains, "remove_domains")
    if role is Role.SUPERADMIN and added:
        raise ValidationError(
            "add_domains", "not_for_superadmin", "a superadmin manages every domain"
        )
    current = set(managed_domain_ids(uow, admin))
    if missing := [d.name for d in removed if d.id not in current]:
        raise ValidationError(
            "remove_domains", "not_managed", f"{username} does not manage {missing[0]}"
        )
    wanted = (current | {d.id for d in added}) - {d.id for d in removed}
    if role is Role.SUPERADMIN:
        wanted = set()
    elif not wanted:
        raise ValidationError("domains", "required", "a domain admin needs at least one domain")
    uow.session.execute(
        delete(AdminDomain).where(
            AdminDomain.admin_id == admin.id, AdminDomain.domain_id.not_in(wanted or {0})
        )
    )
    uow.session.add_all(
        AdminDomain(admin_id=admin.id, domain_id=domain_id) for domain_id in wanted - current
    )
    admin.role = role.value
    if data.active is not None:
        admin.active = data.active
    uow.session.flush()
    after = _public(uow, admin)
    uow.record_update(
        actor,
        "admin",
        admin.username,
        domain=None,
        before=_snapshot(before),
        after=_snapshot(after),
    )
    return after


def set_password(uow: UnitOfWork, actor: Actor, username: str, password: str) -> AdminPublic:
    """Superadmins set anyone's password; every admin may set its own."""
    _authorize_self_or(actor, username, Permission.ADMIN_UPDATE)
    admin = _find(uow, username)
    admin.password_hash = uow.new_password_hash(password)
    uow.session.flush()
    # Whoever knew the old password is logged out of the console everywhere.
    websessions.end_all(uow, SessionKind.ADMIN, admin.id)
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "admin",
        admin.username,
        domain=None,
        before={"credential": "previous"},
        after={"credential": "replaced"},
        action="admin.password",
    )
    return _public(uow, admin)


def change_own_password(
    uow: UnitOfWork, actor: Actor, current_password: str, new_password: str
) -> AdminPublic:
    """Self-service: the current password is required, so a stolen key or session alone cannot
    take the account over."""
    if actor.admin_id is None:
        raise PermissionDenied("self:admin:password", "only an admin account has a password")
    if actor.read_only:
        raise PermissionDenied("self:admin:password", "read-only credentials")
    admin = uow.session.get(Admin, actor.admin_id, with_for_update=True)
    if admin is None or not admin.active:
        raise NotFound("admin", actor.username)
    if not verify_password(current_password, admin.password_hash):
        raise ValidationError(
            "current_password", "wrong_password", "the current password is not right"
        )
    admin.password_hash = uow.new_password_hash(new_password, field="new_password")
    uow.session.flush()
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "admin",
        admin.username,
        domain=None,
        before={"credential": "previous"},
        after={"credential": "replaced"},
        action="admin.password",
    )
    return _public(uow, admin)


def remove(uow: UnitOfWork, actor: Actor, username: str) -> None:
    require(actor, Permission.ADMIN_DELETE)
    admin = _find(uow, username)
    if _is_self(actor, admin):
        raise Conflict("username", "self_removal", "you cannot remove yourself")
    _guard_last_superadmin(uow, admin, "username")
    before = _snapshot(_public(uow, admin))
    uow.session.delete(admin)
    uow.session.flush()
    uow.record(actor, ChangeKind.DELETE, "admin", admin.username, domain=None, before=before)


def list_admins(
    uow: UnitOfWork,
    actor: Actor,
    *,
    search: str | None = None,
    active: bool | None = None,
    role: Role | None = None,
    limit: int = 50,
    after: str | None = None,
    sort: str | None = None,
) -> Page[AdminPublic]:
    """One page of admins in one of ADMIN_SORTS (by username unless told)."""
    check_limit(limit)
    ordering = choose_ordering(sort, _ORDERINGS, "username")
    position = decode_cursor(ordering, after, str.lower)
    stmt = select(Admin)
    if not actor.is_superadmin:
        # A domain admin sees itself only: others' accounts are not its business.
        stmt = stmt.where(Admin.id == (actor.admin_id or 0))
    if search:
        stmt = stmt.where(Admin.username.like(like_pattern(search.lower()), escape="\\"))
    if active is not None:
        stmt = stmt.where(Admin.active.is_(active))
    if role is not None:
        stmt = stmt.where(Admin.role == role.value)
    rows = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    page = page_of(rows, limit, ordering.cursor_of)
    return Page([_public(uow, row) for row in page.items], page.next_cursor)


def managed_domain_ids(uow: UnitOfWork, admin: Admin) -> frozenset[int]:
    """The ids of the domains `admin` is listed for (none for a superadmin: it has them all)."""
    return frozenset(
        uow.session.scalars(select(AdminDomain.domain_id).where(AdminDomain.admin_id == admin.id))
    )


def actor_for(
    uow: UnitOfWork, username: str, channel: Channel, client_address: str | None = None
) -> Actor:
    """The Actor an active admin acts as; inactive and unknown admins alike get NotFound."""
    admin = uow.session.scalars(
        select(Admin).where(Admin.username == normalize_username(username))
    ).one_or_none()
    if admin is None or not admin.active:
        raise NotFound("admin", username)
    domain_ids = managed_domain_ids(uow, admin)
    return Actor(
        username=admin.username,
        role=Role(admin.role),
        domain_ids=domain_ids if admin.role == Role.DOMAIN_ADMIN.value else frozenset(),
        channel=channel,
        admin_id=admin.id,
        client_address=client_address,
    )


@lru_cache(maxsize=8)
def _decoy_hash(scheme: Scheme) -> str:
    return hash_password(generate_password(), scheme)


def ensure_not_superadmin_address(uow: UnitOfWork, actor: Actor, address: str) -> None:
    """A domain admin cannot act on a superadmin's address, even inside its own domain:
    it could otherwise redirect or receive that superadmin's mail."""
    if actor.is_superadmin:
        return
    stmt = select(Admin.id).where(Admin.username == address, Admin.role == Role.SUPERADMIN.value)
    if uow.session.scalar(stmt) is not None:
        raise PermissionDenied(
            "domain:superadmin-address",
            f"{address} belongs to a superadmin; ask a superadmin",
        )


def authenticate(
    uow: UnitOfWork,
    username: str,
    password: str,
    channel: Channel,
    client_address: str | None = None,
) -> Actor:
    """Check an admin's password; upgrade its hash to the configured scheme on success."""
    try:
        name = normalize_username(username)
    except ValidationError:
        raise PermissionDenied("login", "wrong username or password") from None
    admin = uow.session.scalars(select(Admin).where(Admin.username == name)).one_or_none()
    if admin is None:
        # Spend the time a real check costs, so timing does not reveal which usernames exist.
        verify_password(password, _decoy_hash(uow.settings.password_scheme))
        raise PermissionDenied("login", "wrong username or password")
    if not verify_password(password, admin.password_hash) or not admin.active:
        raise PermissionDenied("login", "wrong username or password")
    if needs_rehash(admin.password_hash, uow.settings.password_scheme):
        admin.password_hash = hash_password(password, uow.settings.password_scheme)
        uow.session.flush()
    return actor_for(uow, name, channel, client_address)
