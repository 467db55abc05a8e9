"""Reading the audit log. Domain admins see the history of their domains only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.moments import as_utc
from mailwarden.kernel.pagination import Page, check_limit, page_of
from mailwarden.kernel.permissions import Permission, domain_filter, require
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import UnitOfWork

from .schemas import AuditEntryPublic


def list_entries(
    uow: UnitOfWork,
    actor: Actor,
    *,
    limit: int = 50,
    before_id: int | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEntryPublic]:
    """Newest first; the cursor is the id to continue below."""
    require(actor, Permission.AUDIT_READ)
    check_limit(limit)
    stmt = select(AuditEntry)
    clause = domain_filter(actor, Domain.id)
    if clause is not None:
        # Entries keep the domain's name (the domain may be gone); match it by name.
        stmt = stmt.where(AuditEntry.domain.in_(select(Domain.name).where(clause)))
    if before_id is not None:
        if not 1 <= before_id < 2**63:
            raise ValidationError("cursor", "out_of_range", "the cursor is a positive entry id")
        stmt = stmt.where(AuditEntry.id < before_id)
    if actor_name:
        stmt = stmt.where(AuditEntry.actor == check_text(actor_name, "actor").lower())
    if action:
        stmt = stmt.where(AuditEntry.action == check_text(action, "action"))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == check_text(object_type, "object_type"))
    if object_key:
        stmt = stmt.where(AuditEntry.object_key == check_text(object_key, "object_key").lower())
    if since:
        stmt = stmt.where(AuditEntry.created_at >= as_utc(since, "since"))
    if until:
        stmt = stmt.where(AuditEntry.created_at < as_utc(until, "until"))
    rows = list(uow.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    items = [AuditEntryPublic.model_validate(row) for row in rows]
    return page_of(items, limit, lambda entry: str(entry.id))
