"""One permission vocabulary and one scoping filter for every read of tenant data.

Permissions are named `<scope>:<resource>:<action>`. Superadmins hold all of them; domain admins
hold DOMAIN_ADMIN_PERMISSIONS, and only inside the domains they manage; mailbox users hold
MAILBOX_USER_PERMISSIONS, and only for their own mailbox.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false
from sqlalchemy.orm import QueryableAttribute

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import PermissionDenied

S = TypeVar("S", bound=Select[*tuple[Any, ...]])
DomainColumn = ColumnElement[int] | QueryableAttribute[int]


class Permission(StrEnum):
    DOMAIN_CREATE = "system:domain:create"
    DOMAIN_READ = "domain:domain:read"
    DOMAIN_UPDATE = "domain:domain:update"
    DOMAIN_ADMINISTER = "system:domain:administer"
    DOMAIN_DELETE = "system:domain:delete"
    MAILBOX_CREATE = "domain:mailbox:create"
    MAILBOX_READ = "domain:mailbox:read"
    MAILBOX_UPDATE = "domain:mailbox:update"
    MAILBOX_PASSWORD = "domain:mailbox:password"  # noqa: S105 - a permission name
    MAILBOX_DELETE = "domain:mailbox:delete"
    ALIAS_CREATE = "domain:alias:create"
    ALIAS_READ = "domain:alias:read"
    ALIAS_UPDATE = "domain:alias:update"
    ALIAS_DELETE = "domain:alias:delete"
    ALIAS_DOMAIN_CREATE = "system:alias-domain:create"
    ALIAS_DOMAIN_READ = "domain:alias-domain:read"
    ALIAS_DOMAIN_DELETE = "system:alias-domain:delete"
    ADMIN_CREATE = "system:admin:create"
    ADMIN_READ = "system:admin:read"
    ADMIN_UPDATE = "system:admin:update"
    ADMIN_DELETE = "system:admin:delete"
    VACATION_READ = "domain:vacation:read"
    VACATION_UPDATE = "domain:vacation:update"
    FORWARD_READ = "domain:forward:read"
    FORWARD_UPDATE = "domain:forward:update"
    AUDIT_READ = "domain:audit:read"
    APP_PASSWORD_READ = "domain:app-password:read"  # noqa: S105 - a permission name
    APP_PASSWORD_CREATE = "domain:app-password:create"  # noqa: S105 - a permission name
    APP_PASSWORD_REVOKE = "domain:app-password:revoke"  # noqa: S105 - a permission name
    REGISTRATION_READ = "domain:registration:read"
    REGISTRATION_DECIDE = "domain:registration:decide"
    # A mailbox user reads its own mailbox and what delivers to it (the aliases naming it).
    MAILBOX_SELF_READ = "mailbox:self:read"
    MAILBOX_SELF_PASSWORD = "mailbox:self:password"  # noqa: S105 - a permission name
    # Every admin manages its own API keys; these cover other admins' keys.
    API_KEY_READ = "system:api-key:read"
    API_KEY_CREATE = "system:api-key:create"
    API_KEY_REVOKE = "system:api-key:revoke"
    # Object counts and request figures for Prometheus.
    METRICS_READ = "system:metrics:read"
    # Host-level work: generating daemon configs (they hold database credentials), purging.
    STACK_CONFIG = "system:stack:config"
    MAINTENANCE_PURGE = "system:maintenance:purge"
    # Operations on mail hosts: whole servers, so superadmins only (a queue holds every
    # domain's mail, a log every domain's traffic).
    HOST_READ = "system:host:read"
    HOST_CREATE = "system:host:create"
    HOST_UPDATE = "system:host:update"
    HOST_DELETE = "system:host:delete"
    QUEUE_READ = "system:queue:read"
    QUEUE_MANAGE = "system:queue:manage"
    LOGS_READ = "system:logs:read"
    LOGS_INGEST = "system:logs:ingest"
    HEALTH_READ = "system:health:read"
    HEALTH_MONITOR = "system:health:monitor"
    STACK_APPLY = "system:stack:apply"

    @property
    def is_read(self) -> bool:
        return self.value.endswith(":read")

    @property
    def is_domain_scoped(self) -> bool:
        return self.value.startswith("domain:")


# Everything scoped to a domain: a domain admin may do it inside the domains it manages.
DOMAIN_ADMIN_PERMISSIONS = frozenset(p for p in Permission if p.is_domain_scoped)

# What the owner of a mailbox does for itself in the portal, on that mailbox only.
MAILBOX_USER_PERMISSIONS = frozenset(
    {
        Permission.MAILBOX_SELF_READ,
        Permission.MAILBOX_SELF_PASSWORD,
        Permission.VACATION_READ,
        Permission.VACATION_UPDATE,
        Permission.FORWARD_READ,
        Permission.FORWARD_UPDATE,
        Permission.APP_PASSWORD_READ,
        Permission.APP_PASSWORD_CREATE,
        Permission.APP_PASSWORD_REVOKE,
    }
)


def has_permission(
    actor: Actor,
    permission: Permission,
    domain_id: int | None = None,
    *,
    mailbox_id: int | None = None,
) -> bool:
    """Whether `actor` holds `permission` (inside `domain_id`, on the mailbox `mailbox_id`).

    A mailbox user holds its permissions only where the mailbox is named and is its own, so a
    check that names no mailbox (a listing, a domain setting) is always refused to it.
    """
    if actor.read_only and not permission.is_read:
        return False
    if actor.is_mailbox_user:
        return (
            permission in MAILBOX_USER_PERMISSIONS
            and mailbox_id is not None
            and mailbox_id == actor.mailbox_id
        )
    if actor.is_superadmin:
        return True
    if permission not in DOMAIN_ADMIN_PERMISSIONS:
        return False
    return domain_id is None or domain_id in actor.domain_ids


def require(
    actor: Actor,
    permission: Permission,
    domain_id: int | None = None,
    *,
    mailbox_id: int | None = None,
) -> None:
    """Raise PermissionDenied unless the actor holds `permission` (inside `domain_id`, on the
    mailbox `mailbox_id`)."""
    if not has_permission(actor, permission, domain_id, mailbox_id=mailbox_id):
        raise PermissionDenied(str(permission))


def domain_filter(actor: Actor, domain_id_column: DomainColumn) -> ColumnElement[bool] | None:
    """The WHERE clause that limits a query to the actor's domains (None: no limit)."""
    if actor.is_superadmin:
        return None
    if not actor.domain_ids:
        return false()
    return domain_id_column.in_(sorted(actor.domain_ids))


def scope(stmt: S, actor: Actor, domain_id_column: DomainColumn) -> S:
    """Every read of tenant data passes through here: there is no second way to query."""
    clause = domain_filter(actor, domain_id_column)
    return stmt if clause is None else stmt.where(clause)
