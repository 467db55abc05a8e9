"""First start: a one-time link lets whoever holds it create the first superadmin.

`serve` calls `issue_link_token` when no admin exists and prints the link; the token is stored
as SHA-256, expires after `setup_link_minutes`, and dies when the first superadmin is made (a
second visitor with an old link finds setup closed).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, select

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.schemas import AdminCreate, AdminPublic
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainPublic
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, PermissionDenied
from mailwarden.kernel.unit_of_work import UnitOfWork

from .models import SetupToken

# Who the audit log names for the changes setup makes: the person is not an admin yet.
SETUP_ACTOR = "setup-link"


@dataclass(frozen=True, slots=True)
class SetupDone:
    admin: AdminPublic
    admin_id: int
    domain: DomainPublic | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needs_setup(uow: UnitOfWork) -> bool:
    """True while no admin exists at all."""
    return not uow.session.scalar(select(exists().where(Admin.id.is_not(None))))


def issue_link_token(uow: UnitOfWork) -> str | None:
    """A fresh one-time token when setup is needed (older ones stop working), else None."""
    if not needs_setup(uow):
        return None
    uow.session.execute(delete(SetupToken))
    token = secrets.token_urlsafe(32)
    now = utcnow()
    uow.session.add(
        SetupToken(
            token_hash=_digest(token),
            created_at=now,
            expires_at=now + timedelta(minutes=uow.settings.setup_link_minutes),
        )
    )
    uow.session.flush()
    return token


def token_is_valid(uow: UnitOfWork, token: str | None) -> bool:
    if not token or len(token) > 128 or not needs_setup(uow):
        return False
    row = uow.session.get(SetupToken, _digest(token))
    return row is not None and row.expires_at > utcnow()


def complete(
    uow: UnitOfWork,
    token: str | None,
    *,
    username: str,
    password: str,
    first_domain: str | None = None,
    client_address: str | None = None,
) -> SetupDone:
    """Create the first superadmin (and optionally the first domain); the link dies."""
    if not needs_setup(uow):
        raise Conflict("setup", "done", "setup is done: an admin exists already; log in")
    # The lock makes a second visitor with the same link wait, then find it gone.
    row = (
        uow.session.get(SetupToken, _digest(token), with_for_update=True)
        if token and len(token) <= 128
        else None
    )
    if row is None or row.expires_at <= utcnow():
        raise PermissionDenied("setup", "the setup link is invalid or expired; restart serve")
    uow.session.execute(delete(SetupToken))
    actor = Actor(
        username=SETUP_ACTOR,
        role=Role.SUPERADMIN,
        channel=Channel.WEB,
        client_address=client_address,
    )
    admin = admins.create(
        uow, actor, AdminCreate(username=username, role=Role.SUPERADMIN), password=password
    )
    admin_id = uow.session.scalar(select(Admin.id).where(Admin.username == admin.username))
    assert admin_id is not None
    domain = None
    if first_domain:
        domain = domains.create(uow, actor, DomainCreate(name=first_domain))
    return SetupDone(admin, admin_id, domain)
