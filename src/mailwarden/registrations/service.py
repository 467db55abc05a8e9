"""Moderated registration: a visitor asks for a mailbox, a domain admin approves or rejects.

`submit` is the one public operation (no actor: anyone who reaches the registration page). It
answers a domain that is unknown, closed, inactive, relayed or removed in exactly the same way,
so that the page cannot be used to find out which domains are hosted here. The password is
hashed at once under the one password policy; on approval the mailbox is created by
`mailboxes.create` with that hash, so every rule of a new mailbox (limits, quotas, the address
being free) is checked there, once, at the moment it matters.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select

from mailwarden.admins.models import Admin
from mailwarden.aliases.models import AliasTarget
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.addresses import normalize_address, split_address
from mailwarden.kernel.errors import Conflict, LimitExceeded, NotFound, ValidationError
from mailwarden.kernel.pagination import (
    Page,
    check_limit,
    choose_ordering,
    decode_cursor,
    keyset,
    page_of,
)
from mailwarden.kernel.permissions import Permission, require, scope
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic
from mailwarden.throttle import service as throttle

from .models import RegistrationRequest
from .schemas import (
    RegistrationPublic,
    RegistrationReceipt,
    RegistrationStatus,
    RegistrationSubmit,
)

# Oldest first, the way a moderation queue is worked through; the id breaks ties. Within one
# domain and status this is the order of ix_registration_requests_domain_status_created.
_ORDERINGS = {"created_at": (RegistrationRequest.created_at, RegistrationRequest.id)}
_MAX_REASON = 255
# The audit log's actor column.
_MAX_ACTOR = 254
# The id column is a 32-bit INTEGER everywhere; a larger id is missing, not a database error.
_MAX_ID = 2**31 - 1


def to_public(request: RegistrationRequest) -> RegistrationPublic:
    _, domain = split_address(request.address)
    return RegistrationPublic(
        id=request.id,
        address=request.address,
        domain=domain,
        name=request.name,
        contact=request.contact,
        status=RegistrationStatus(request.status),
        client_address=request.client_address,
        created_at=request.created_at,
        decided_at=request.decided_at,
        decided_by=request.decided_by,
        reason=request.reason,
    )


def snapshot(request: RegistrationRequest) -> dict[str, Any]:
    return {
        "address": request.address,
        "name": request.name,
        "contact": request.contact,
        "status": request.status,
        "client_address": request.client_address,
        "decided_by": request.decided_by,
        "reason": request.reason,
    }


def _closed() -> ValidationError:
    # One answer for every domain a visitor may not register in, known or not.
    return ValidationError(
        "address", "registration-closed", "registration is not open for this domain"
    )


def _unavailable(address: str) -> Conflict:
    # One answer for every reason an address cannot be had: taken, protected, or asked for.
    return Conflict("address", "unavailable", f"{address} is not available; choose another")


def _open_domain(uow: UnitOfWork, name: str) -> Domain:
    """The domain a visitor may register in, locked so that concurrent requests queue up
    behind each other (the pending limit and the one-request-per-address rule hold)."""
    stmt = select(Domain).where(Domain.name == name).with_for_update()
    domain = uow.session.scalars(stmt).one_or_none()
    if (
        domain is None
        or not domain.registration_open
        or not domain.active
        or domain.backup_mx
        or domain.deleted_at is not None
    ):
        raise _closed()
    return domain


def _ensure_available(uow: UnitOfWork, address: str) -> None:
    local_part, _ = split_address(address)
    if local_part in uow.settings.protected_local_parts:
        raise _unavailable(address)
    taken = (
        select(Mailbox.id).where(Mailbox.address == address),
        select(AliasTarget.id).where(AliasTarget.address == address),
        # An admin's username that is an address gets that admin's mail (password resets).
        select(Admin.id).where(Admin.username == address),
        select(RegistrationRequest.id).where(
            RegistrationRequest.address == address,
            RegistrationRequest.status == RegistrationStatus.PENDING.value,
        ),
    )
    if any(uow.session.scalar(stmt.limit(1)) is not None for stmt in taken):
        raise _unavailable(address)


def _pending_count(uow: UnitOfWork, domain: Domain) -> int:
    stmt = (
        select(func.count())
        .select_from(RegistrationRequest)
        .where(
            RegistrationRequest.domain_id == domain.id,
            RegistrationRequest.status == RegistrationStatus.PENDING.value,
        )
    )
    return uow.session.scalar(stmt) or 0


def _check_queue(uow: UnitOfWork, domain: Domain) -> None:
    """At most registration_pending_limit requests wait at once (0: no limit, as for every
    limit of a domain)."""
    limit = domain.registration_pending_limit
    if limit and _pending_count(uow, domain) >= limit:
        raise LimitExceeded(
            "address",
            "limit",
            "too many requests are waiting for a decision in this domain; try again later",
        )


def _client(client_address: str | None) -> str | None:
    if client_address is None:
        return None
    try:
        return str(ipaddress.ip_address(client_address))
    except ValueError:
        raise ValidationError(
            "client_address", "invalid", "the client address is not an IP address"
        ) from None


def _visitor(address: str, client_address: str | None) -> Actor:
    """Who the audit log names for a request: the would-be owner of the address. A mailbox
    user without a mailbox holds no permission at all, so this actor can do nothing else."""
    return Actor(
        username=f"registration:{address}"[:_MAX_ACTOR],
        role=Role.MAILBOX_USER,
        channel=Channel.WEB,
        client_address=client_address,
    )


def admit_visitor(uow: UnitOfWork, client_address: str | None) -> None:
    """Count one registration request of this client (RateLimited past the limit). The face
    commits it on its own, before submit(): a refused request counts as much as an accepted
    one."""
    subject = throttle.registration(uow.settings, client_address)
    throttle.ensure_allowed(uow, [subject])
    throttle.record_failure(uow, [subject])


def submit(
    uow: UnitOfWork, data: RegistrationSubmit, *, client_address: str | None
) -> RegistrationReceipt:
    """A visitor's request for the mailbox `data.address`, waiting for a domain admin."""
    address = normalize_address(data.address, "address")
    _, domain_name = split_address(address)
    check_text(data.name, "name")
    contact = normalize_address(data.contact, "contact", allow_plus=True) if data.contact else ""
    client = _client(client_address)
    domain = _open_domain(uow, domain_name)
    _ensure_available(uow, address)
    _check_queue(uow, domain)
    password_hash = uow.new_password_hash(data.password)
    request = RegistrationRequest(
        domain_id=domain.id,
        address=address,
        name=data.name,
        password_hash=password_hash,
        contact=contact,
        status=RegistrationStatus.PENDING.value,
        client_address=client,
    )
    uow.session.add(request)
    uow.session.flush()
    uow.record(
        _visitor(address, client),
        ChangeKind.CREATE,
        "registration",
        address,
        domain=domain.name,
        after=snapshot(request),
        action="registration.submit",
    )
    return RegistrationReceipt(
        address=address,
        status=RegistrationStatus.PENDING,
        created_at=request.created_at,
    )


def _find(
    uow: UnitOfWork, actor: Actor, request_id: int, permission: Permission, *, lock: bool = False
) -> RegistrationRequest:
    """The request as the actor may see it; NotFound for foreign and missing alike."""
    if not 1 <= request_id <= _MAX_ID:
        raise NotFound("registration", str(request_id))
    stmt = scope(
        select(RegistrationRequest).where(RegistrationRequest.id == request_id),
        actor,
        RegistrationRequest.domain_id,
    )
    if lock:
        # Two moderators deciding at once: the second waits, then sees the first's decision.
        stmt = stmt.with_for_update()
    request = uow.session.scalars(stmt).one_or_none()
    if request is None:
        raise NotFound("registration", str(request_id))
    require(actor, permission, request.domain_id)
    return request


def _ensure_pending(request: RegistrationRequest) -> None:
    if request.status != RegistrationStatus.PENDING.value:
        raise Conflict("id", "decided", f"request {request.id} was {request.status} already")


def _decide(
    uow: UnitOfWork,
    actor: Actor,
    request: RegistrationRequest,
    status: RegistrationStatus,
    reason: str = "",
) -> None:
    before = snapshot(request)
    request.status = status.value
    request.decided_at = utcnow()
    request.decided_by = actor.username
    request.reason = reason
    # The hash has served its purpose (it is the mailbox's now, or nobody's): no stale copy of
    # a credential stays behind in the queue.
    request.password_hash = ""
    uow.session.flush()
    _, domain = split_address(request.address)
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "registration",
        request.address,
        domain=domain,
        before=before,
        after=snapshot(request),
        action=f"registration.{'approve' if status is RegistrationStatus.APPROVED else 'reject'}",
    )


def approve(uow: UnitOfWork, actor: Actor, request_id: int) -> MailboxPublic:
    """Create the requested mailbox with the password the visitor chose."""
    request = _find(uow, actor, request_id, Permission.REGISTRATION_DECIDE, lock=True)
    _ensure_pending(request)
    data = MailboxCreate(address=request.address, name=request.name)
    mailbox = mailboxes.create(uow, actor, data, password_hash=request.password_hash)
    _decide(uow, actor, request, RegistrationStatus.APPROVED)
    return mailbox


def reject(uow: UnitOfWork, actor: Actor, request_id: int, reason: str = "") -> RegistrationPublic:
    request = _find(uow, actor, request_id, Permission.REGISTRATION_DECIDE, lock=True)
    check_text(reason, "reason")
    if len(reason) > _MAX_REASON:
        raise ValidationError("reason", "too_long", f"a reason is at most {_MAX_REASON} characters")
    _ensure_pending(request)
    _decide(uow, actor, request, RegistrationStatus.REJECTED, reason)
    return to_public(request)


def get(uow: UnitOfWork, actor: Actor, request_id: int) -> RegistrationPublic:
    return to_public(_find(uow, actor, request_id, Permission.REGISTRATION_READ))


def _status(value: str) -> str:
    try:
        return RegistrationStatus(value).value
    except ValueError:
        known = ", ".join(status.value for status in RegistrationStatus)
        raise ValidationError("status", "unknown_status", f"status is one of: {known}") from None


def list_requests(
    uow: UnitOfWork,
    actor: Actor,
    *,
    domain: str | None = None,
    status: str | None = RegistrationStatus.PENDING.value,
    limit: int = 50,
    after: str | None = None,
) -> Page[RegistrationPublic]:
    """Requests of the actor's domains (or one of them), oldest first; `status=None` lists
    every status."""
    require(actor, Permission.REGISTRATION_READ)
    check_limit(limit)
    ordering = choose_ordering(None, _ORDERINGS, "created_at")
    position = decode_cursor(ordering, after, str)
    stmt = scope(select(RegistrationRequest), actor, RegistrationRequest.domain_id)
    if domain:
        found = domains.get(uow, actor, domain, Permission.REGISTRATION_READ)
        stmt = stmt.where(RegistrationRequest.domain_id == found.id)
    if status is not None:
        stmt = stmt.where(RegistrationRequest.status == _status(status))
    rows = list(uow.session.scalars(keyset(stmt, ordering, position).limit(limit + 1)))
    page = page_of(rows, limit, ordering.cursor_of)
    return Page([to_public(row) for row in page.items], page.next_cursor)
