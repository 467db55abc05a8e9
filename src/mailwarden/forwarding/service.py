"""Forwarding: stored here, applied as Sieve `redirect` in the mailbox's script after commit.

Targets follow the alias target rules (kernel.addresses.normalize_alias_target: full addresses,
plus-addressing allowed; no pipes, files, :include: or unqualified names), each once, and never
the mailbox itself: keeping a copy is what `keep_copy` is for (a redirect to oneself would be a
loop). Their number is capped by `max_alias_targets` and by what Pigeonhole executes per message
(`sieve_max_redirects`, 4 by default): more would compile, then forward nothing.
"""

from __future__ import annotations

from typing import Any

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import normalize_alias_target
from mailwarden.kernel.errors import FieldIssue, ValidationError
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.stack.sieve import sync
from mailwarden.stack.sieve.script import SIEVE_MAX_REDIRECTS

from .models import Forward
from .schemas import ForwardPublic, ForwardSet

# A mailbox that never had forwarding keeps its mail when forwarding is first set up.
DEFAULT_KEEP_COPY = True


def _targets(uow: UnitOfWork, mailbox_address: str, values: list[str]) -> list[str]:
    """Normalized targets in the order given; every broken rule is reported, not just one."""
    if not values:
        raise ValidationError("targets", "required", "at least one target address is required")
    limit = min(uow.settings.max_alias_targets, SIEVE_MAX_REDIRECTS)
    if len(values) > limit:
        why = (
            f" (the Sieve server runs at most {SIEVE_MAX_REDIRECTS} redirects per message)"
            if limit == SIEVE_MAX_REDIRECTS
            else ""
        )
        raise ValidationError(
            "targets", "too_many_targets", f"{len(values)} targets given; at most {limit}{why}"
        )
    issues: list[FieldIssue] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        field = f"targets[{index}]"
        try:
            target = normalize_alias_target(value, field)
        except ValidationError as exc:
            issues.extend(exc.issues)
            continue
        if target == mailbox_address:
            issues.append(
                FieldIssue(
                    field,
                    "self_target",
                    f"{target} is the mailbox itself; to keep a copy, use keep_copy",
                )
            )
        elif target in seen:
            issues.append(
                FieldIssue(field, "duplicate", f"{target} is already targets[{seen[target]}]")
            )
        else:
            seen[target] = index
    if issues:
        raise ValidationError.many(issues)
    return list(seen)


def snapshot(forward: Forward) -> dict[str, Any]:
    return {
        "enabled": forward.enabled,
        "targets": list(forward.targets),
        "keep_copy": forward.keep_copy,
    }


def to_public(address: str, forward: Forward | None) -> ForwardPublic:
    if forward is None:
        return ForwardPublic(
            address=address,
            enabled=False,
            targets=[],
            keep_copy=DEFAULT_KEEP_COPY,
            updated_at=None,
        )
    return ForwardPublic(
        address=address,
        enabled=forward.enabled,
        targets=list(forward.targets),
        keep_copy=forward.keep_copy,
        updated_at=forward.updated_at,
    )


def get_forward(uow: UnitOfWork, actor: Actor, address: str) -> ForwardPublic:
    """The mailbox's forwarding; disabled without targets when it never had any."""
    mailbox, _ = mailboxes.find_live(uow, actor, address, Permission.FORWARD_READ)
    return to_public(mailbox.address, uow.session.get(Forward, mailbox.id))


def set_forward(uow: UnitOfWork, actor: Actor, address: str, data: ForwardSet) -> ForwardPublic:
    """Enable forwarding to exactly these targets."""
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.FORWARD_UPDATE, to_change=True
    )
    targets = _targets(uow, mailbox.address, data.targets)

    forward = uow.session.get(Forward, mailbox.id)
    before = None if forward is None else snapshot(forward)
    if forward is None:
        forward = Forward(mailbox_id=mailbox.id, keep_copy=DEFAULT_KEEP_COPY)
        uow.session.add(forward)
    forward.enabled = True
    # A new list object: SQLAlchemy notices a replaced JSON value, not one changed in place.
    forward.targets = list(targets)
    if data.keep_copy is not None:
        forward.keep_copy = data.keep_copy
    uow.session.flush()
    uow.record_saved(
        actor,
        "forward",
        mailbox.address,
        domain=domain.name,
        before=before,
        after=snapshot(forward),
    )
    sync.queue_apply(uow, mailbox.id, mailbox.address)
    return to_public(mailbox.address, forward)


def disable_forward(uow: UnitOfWork, actor: Actor, address: str) -> ForwardPublic:
    """Stop forwarding; the targets are kept. Disabling a disabled one changes nothing."""
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.FORWARD_UPDATE, to_change=True
    )
    forward = uow.session.get(Forward, mailbox.id)
    if forward is not None and forward.enabled:
        before = snapshot(forward)
        forward.enabled = False
        uow.session.flush()
        uow.record_update(
            actor,
            "forward",
            mailbox.address,
            domain=domain.name,
            before=before,
            after=snapshot(forward),
        )
    # Applied even when nothing changed: it repairs a script an earlier failure left behind.
    sync.queue_apply(uow, mailbox.id, mailbox.address)
    return to_public(mailbox.address, forward)
