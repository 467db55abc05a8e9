"""What the owner of a mailbox does for itself (the portal): log in, look, change its password.

The actor here is a mailbox user (Role.MAILBOX_USER), who holds its permissions on its own
mailbox alone; vacation, forwarding and app passwords are their services' own functions.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import select

from mailwarden.db.types import utcnow
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.addresses import normalize_address
from mailwarden.kernel.errors import PermissionDenied, ValidationError
from mailwarden.kernel.passwords import (
    Scheme,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork

from . import service as mailboxes
from .models import Mailbox
from .schemas import MailboxPublic

_WRONG = "wrong address or password"


@lru_cache(maxsize=8)
def _decoy_hash(scheme: Scheme) -> str:
    return hash_password(generate_password(), scheme)


def _live_mailbox(uow: UnitOfWork, address: str) -> tuple[Mailbox, Domain] | None:
    """The mailbox Dovecot would let log in: live, active, in a live and active domain."""
    stmt = (
        select(Mailbox, Domain)
        .join(Domain, Domain.id == Mailbox.domain_id)
        .where(
            Mailbox.address == address,
            Mailbox.deleted_at.is_(None),
            Mailbox.active.is_(True),
            Domain.active.is_(True),
            Domain.deleted_at.is_(None),
        )
    )
    row = uow.session.execute(stmt).one_or_none()
    return None if row is None else (row[0], row[1])


def actor_for_mailbox(
    mailbox: Mailbox, channel: Channel = Channel.WEB, client_address: str | None = None
) -> Actor:
    return Actor(
        username=mailbox.address,
        role=Role.MAILBOX_USER,
        domain_ids=frozenset({mailbox.domain_id}),
        channel=channel,
        client_address=client_address,
        mailbox_id=mailbox.id,
    )


def authenticate(
    uow: UnitOfWork,
    address: str,
    password: str,
    *,
    channel: Channel = Channel.WEB,
    client_address: str | None = None,
) -> Actor:
    """Check a mailbox password as Dovecot would; upgrade the hash to the configured scheme."""
    try:
        normalized = normalize_address(address, "address")
    except ValidationError:
        raise PermissionDenied("login", _WRONG) from None
    found = _live_mailbox(uow, normalized)
    if found is None:
        # Spend the time a real check costs, so timing does not tell which addresses exist.
        verify_password(password, _decoy_hash(uow.settings.password_scheme))
        raise PermissionDenied("login", _WRONG)
    mailbox, _domain = found
    if not verify_password(password, mailbox.password_hash):
        raise PermissionDenied("login", _WRONG)
    if needs_rehash(mailbox.password_hash, uow.settings.password_scheme):
        # Same password, stronger hash: password_changed_at stays, and no audit entry is due.
        mailbox.password_hash = hash_password(password, uow.settings.password_scheme)
        uow.session.flush()
    return actor_for_mailbox(mailbox, channel, client_address)


def actor_for_session(
    uow: UnitOfWork, mailbox_id: int, client_address: str | None = None
) -> Actor | None:
    """The actor of a portal session, or None once the mailbox may no longer log in."""
    mailbox = uow.session.get(Mailbox, mailbox_id)
    if mailbox is None or _live_mailbox(uow, mailbox.address) is None:
        return None
    return actor_for_mailbox(mailbox, Channel.WEB, client_address)


def get_own(uow: UnitOfWork, actor: Actor) -> MailboxPublic:
    """The actor's own mailbox, with its quota use."""
    if actor.mailbox_id is None:
        raise PermissionDenied(str(Permission.MAILBOX_SELF_READ))
    mailbox = uow.session.get(Mailbox, actor.mailbox_id)
    if mailbox is None:
        raise PermissionDenied(str(Permission.MAILBOX_SELF_READ))
    return mailboxes.get_with_permission(uow, actor, mailbox.address, Permission.MAILBOX_SELF_READ)


def change_own_password(uow: UnitOfWork, actor: Actor, *, current: str, new: str) -> None:
    """The owner changes its password: the current one is required, then the one policy."""
    mailbox = None if actor.mailbox_id is None else uow.session.get(Mailbox, actor.mailbox_id)
    if mailbox is None:
        raise PermissionDenied(str(Permission.MAILBOX_SELF_PASSWORD))
    mailbox, domain = mailboxes.find_live(
        uow, actor, mailbox.address, Permission.MAILBOX_SELF_PASSWORD, to_change=True
    )
    if not verify_password(current, mailbox.password_hash):
        raise ValidationError("current_password", "wrong_password", "the current password is wrong")
    before = {"password_changed_at": mailbox.password_changed_at.isoformat()}
    mailbox.password_hash = uow.new_password_hash(new, field="new_password")
    mailbox.password_changed_at = utcnow()
    uow.session.flush()
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "mailbox",
        mailbox.address,
        domain=domain.name,
        before=before,
        after={"password_changed_at": mailbox.password_changed_at.isoformat()},
        action="mailbox.password",
    )
