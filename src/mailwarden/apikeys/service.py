"""API keys: every admin manages its own; superadmins manage everyone's.

A key acts as its admin, never with more: narrowed to some domains, it acts as a domain admin of
those domains only (intersected with what the admin manages at the moment of use); read-only, it
may only read. The token is `mw_<id>_<secret>`; only a SHA-256 of the secret is stored, and the
token is shown once, by `create`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.service import normalize_username
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.moments import as_utc, format_utc
from mailwarden.kernel.pagination import Page, check_limit, page_of
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork

from .models import ApiKey, ApiKeyDomain
from .schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Identity, KeyInUse

TOKEN_PREFIX = "mw_"  # noqa: S105 - a prefix, not a secret
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"mw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# Writing "last used" on every request would turn each read into a write; once a minute is
# precise enough to tell a live key from a forgotten one.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def parse_token(token: str) -> tuple[str, str] | None:
    """The key id and secret of a well-formed token, or None."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_key_id(key_id: str, field: str = "id") -> str:
    if not _KEY_ID.fullmatch(key_id):
        raise ValidationError(field, "invalid_key_id", "a key id is 12 lowercase hex digits")
    return key_id


def _domain_names(uow: UnitOfWork, key: ApiKey) -> list[str]:
    stmt = (
        select(Domain.name)
        .join(ApiKeyDomain, ApiKeyDomain.domain_id == Domain.id)
        .where(ApiKeyDomain.api_key_id == key.id)
        .order_by(Domain.name)
    )
    return list(uow.session.scalars(stmt))


def _is_active(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def _public(uow: UnitOfWork, key: ApiKey, admin: Admin) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.key_id,
        admin=admin.username,
        name=key.name,
        narrowed=key.narrowed,
        domains=_domain_names(uow, key),
        read_only=key.read_only,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        last_used_from=key.last_used_from,
        active=_is_active(key, utcnow()),
    )


def _snapshot(public: ApiKeyPublic) -> dict[str, Any]:
    return public.model_dump(
        mode="json",
        include={"id", "admin", "name", "narrowed", "domains", "read_only", "expires_at"},
    ) | {"revoked": public.revoked_at is not None}


def _acts_on_self(actor: Actor, username: str) -> bool:
    return actor.admin_id is not None and username == actor.username


def _authorize(actor: Actor, username: str, permission: Permission) -> None:
    """Its own keys are every admin's business; others' need `permission` (superadmins)."""
    if _acts_on_self(actor, username):
        if actor.read_only and not permission.is_read:
            raise PermissionDenied(str(permission))
        return
    require(actor, permission)


def _find_admin(uow: UnitOfWork, username: str, field: str) -> Admin:
    admin = uow.session.scalars(select(Admin).where(Admin.username == username)).one_or_none()
    if admin is None:
        raise NotFound("admin", username)
    if not admin.active:
        raise ValidationError(field, "inactive_admin", f"{username} is not active")
    return admin


def _owner_of(actor: Actor, data: ApiKeyCreate) -> str:
    if data.admin is not None:
        return normalize_username(data.admin, "admin")
    if actor.admin_id is None:
        raise ValidationError("admin", "required", "name the admin the key acts as")
    return actor.username


def create(uow: UnitOfWork, actor: Actor, data: ApiKeyCreate) -> ApiKeyCreated:
    username = _owner_of(actor, data)
    _authorize(actor, username, Permission.API_KEY_CREATE)
    check_text(data.name, "name")
    admin = _find_admin(uow, username, "admin")
    now = utcnow()
    acting = _acting_key(uow, actor)
    expires_at = _expiry(data.expires_at, acting, now)
    wanted = _resolve_domains(uow, actor, admin, data.domains)
    # A key made with a narrowed key is narrowed at least as much: no way to widen one's rights.
    # Its domains are the actor's (already the acting key's, intersected with its admin's).
    if acting is not None and acting.narrowed and not data.domains:
        domain_ids = sorted(actor.domain_ids)
    else:
        domain_ids = [d.id for d in wanted]
    narrowed = bool(data.domains) or (acting is not None and acting.narrowed)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        key_id=key_id,
        secret_hash=_digest(secret),
        admin_id=admin.id,
        name=data.name,
        read_only=data.read_only,
        narrowed=narrowed,
        created_by=actor.username,
        created_at=now,
        expires_at=expires_at,
    )
    uow.session.add(key)
    uow.session.flush()
    uow.session.add_all(ApiKeyDomain(api_key_id=key.id, domain_id=d) for d in domain_ids)
    uow.session.flush()
    public = _public(uow, key, admin)
    uow.record(actor, ChangeKind.CREATE, "api_key", key_id, domain=None, after=_snapshot(public))
    return ApiKeyCreated(**public.model_dump(), key=f"{TOKEN_PREFIX}{key_id}_{secret}")


def _acting_key(uow: UnitOfWork, actor: Actor) -> ApiKey | None:
    """The key the actor acts with (None outside the API)."""
    if actor.api_key is None:
        return None
    return uow.session.scalars(select(ApiKey).where(ApiKey.key_id == actor.api_key)).one_or_none()


def _expiry(wanted: datetime | None, acting: ApiKey | None, now: datetime) -> datetime | None:
    """The new key's expiry: never later than the expiry of the key that makes it."""
    if wanted is not None:
        # Shown in UTC from the start, as every later read shows it.
        wanted = as_utc(wanted, "expires_at")
        if wanted <= now:
            raise ValidationError("expires_at", "in_past", "the expiry must lie in the future")
    if acting is None or acting.expires_at is None:
        return wanted
    limit = acting.expires_at
    if wanted is None:
        return limit
    if wanted > limit:
        raise ValidationError(
            "expires_at",
            "beyond_acting_key",
            f"a key made with key {acting.key_id} cannot outlive it "
            f"(it expires {format_utc(limit)})",
        )
    return wanted


def _resolve_domains(uow: UnitOfWork, actor: Actor, admin: Admin, names: list[str]) -> list[Domain]:
    managed = (
        admins.managed_domain_ids(uow, admin) if admin.role == Role.DOMAIN_ADMIN.value else None
    )
    resolved: dict[int, Domain] = {}
    for index, name in enumerate(names):
        field = f"domains[{index}]"
        try:
            # Scoped to the actor: nobody narrows a key to a domain it cannot see itself.
            domain = domains.get(uow, actor, name)
        except ValidationError as exc:
            raise ValidationError(field, exc.rule, exc.issues[0].message) from None
        if managed is not None and domain.id not in managed:
            raise ValidationError(
                field, "not_managed", f"{admin.username} does not manage {domain.name}"
            )
        resolved[domain.id] = domain
    return list(resolved.values())


def _find(
    uow: UnitOfWork, actor: Actor, key_id: str, permission: Permission
) -> tuple[ApiKey, Admin]:
    found = uow.session.execute(
        select(ApiKey, Admin)
        .join(Admin, Admin.id == ApiKey.admin_id)
        .where(ApiKey.key_id == _check_key_id(key_id))
    ).one_or_none()
    # Another admin's key is reported exactly like a missing one, unless superadmins ask.
    if found is None or not (_acts_on_self(actor, found[1].username) or actor.is_superadmin):
        raise NotFound("api_key", key_id)
    key, admin = found
    _authorize(actor, admin.username, permission)
    return key, admin


def get(uow: UnitOfWork, actor: Actor, key_id: str) -> ApiKeyPublic:
    key, admin = _find(uow, actor, key_id, Permission.API_KEY_READ)
    return _public(uow, key, admin)


def revoke(uow: UnitOfWork, actor: Actor, key_id: str) -> ApiKeyPublic:
    key, admin = _find(uow, actor, key_id, Permission.API_KEY_REVOKE)
    if key.revoked_at is not None:
        raise Conflict("id", "already_revoked", f"key {key_id} is revoked already")
    before = _snapshot(_public(uow, key, admin))
    key.revoked_at = utcnow()
    uow.session.flush()
    after = _public(uow, key, admin)
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "api_key",
        key.key_id,
        domain=None,
        before=before,
        after=_snapshot(after),
        action="api_key.revoke",
    )
    return after


def list_keys(
    uow: UnitOfWork,
    actor: Actor,
    *,
    admin: str | None = None,
    include_inactive: bool = False,
    limit: int = 50,
    after: str | None = None,
) -> Page[ApiKeyPublic]:
    """Keys by id; an admin sees its own, a superadmin everyone's (or one admin's)."""
    check_limit(limit)
    stmt = select(ApiKey, Admin).join(Admin, Admin.id == ApiKey.admin_id)
    if admin is not None:
        username = normalize_username(admin, "admin")
        _authorize(actor, username, Permission.API_KEY_READ)
        stmt = stmt.where(Admin.username == username)
    elif not actor.is_superadmin:
        stmt = stmt.where(Admin.id == (actor.admin_id or 0))
    if not include_inactive:
        now = utcnow()
        stmt = stmt.where(
            ApiKey.revoked_at.is_(None),
            (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
        )
    if after:
        stmt = stmt.where(ApiKey.key_id > _check_key_id(after, "cursor"))
    rows = uow.session.execute(stmt.order_by(ApiKey.key_id).limit(limit + 1)).all()
    items = [_public(uow, key, owner) for key, owner in rows]
    return page_of(items, limit, lambda key: key.id)


def whoami(uow: UnitOfWork, actor: Actor) -> Identity:
    """Who acts and what it may act on now: every actor may ask about itself."""
    reach = [] if actor.is_superadmin else _names_in_scope(uow, actor)
    acting = _acting_key(uow, actor)
    key = None
    if acting is not None:
        key = KeyInUse(
            id=acting.key_id,
            name=acting.name,
            read_only=acting.read_only,
            narrowed=acting.narrowed,
            domains=_domain_names(uow, acting),
            expires_at=acting.expires_at,
        )
    return Identity(
        username=actor.username,
        role=actor.role,
        all_domains=actor.is_superadmin,
        domains=reach,
        read_only=actor.read_only,
        api_key=key,
    )


def _names_in_scope(uow: UnitOfWork, actor: Actor) -> list[str]:
    return list(
        uow.session.scalars(scope(select(Domain.name), actor, Domain.id).order_by(Domain.name))
    )


class InvalidKey(PermissionDenied):
    """The token is malformed, unknown, wrong, revoked or expired, or its admin is inactive."""

    def __init__(self) -> None:
        super().__init__("api-key", "invalid, revoked or expired API key")


def authenticate(uow: UnitOfWork, token: str, client_address: str | None = None) -> Actor:
    """The Actor a token acts as, or InvalidKey; records when and from where it was used."""
    parsed = parse_token(token)
    if parsed is None:
        raise InvalidKey
    key_id, secret = parsed
    found = uow.session.execute(
        select(ApiKey, Admin)
        .join(Admin, Admin.id == ApiKey.admin_id)
        .where(ApiKey.key_id == key_id)
    ).one_or_none()
    # Compare against something even for unknown ids, so timing does not tell ids apart.
    stored = found[0].secret_hash if found else _digest(secrets.token_urlsafe(32))
    if not hmac.compare_digest(stored, _digest(secret)) or found is None:
        raise InvalidKey
    key, admin = found
    now = utcnow()
    if not _is_active(key, now) or not admin.active:
        raise InvalidKey
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY:
        uow.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(last_used_at=now, last_used_from=client_address)
        )
    return _actor(uow, key, admin, client_address)


def _actor(uow: UnitOfWork, key: ApiKey, admin: Admin, client_address: str | None) -> Actor:
    role = Role(admin.role)
    managed = admins.managed_domain_ids(uow, admin) if role is Role.DOMAIN_ADMIN else None
    if key.narrowed:
        narrowed = set(
            uow.session.scalars(
                select(ApiKeyDomain.domain_id).where(ApiKeyDomain.api_key_id == key.id)
            )
        )
        domain_ids = frozenset(narrowed if managed is None else narrowed & managed)
        # A superadmin's narrowed key is a domain admin of the listed domains, nothing more.
        role = Role.DOMAIN_ADMIN
    else:
        domain_ids = frozenset(managed or ())
    return Actor(
        username=admin.username,
        role=role,
        domain_ids=domain_ids,
        channel=Channel.API,
        admin_id=admin.id,
        client_address=client_address,
        read_only=key.read_only,
        api_key=key.key_id,
    )
