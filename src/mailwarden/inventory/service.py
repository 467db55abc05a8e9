"""Counts of every kind of object, and whether the database answers.

Counts come from COUNT(*) in the database (an index scan), never from loading rows.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from mailwarden.admins.models import Admin
from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.apikeys.models import ApiKey
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes.models import Mailbox


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
