"""Vacation auto-replies: stored here, applied as the mailbox's Sieve script after commit.

Audit entries hold the subject in full but the body only as its length and SHA-256: a body may
be 64 KiB, which would swamp a plan or an audit listing, and the audit log usually outlives the
auto-reply, so it keeps no more personal text than it needs. The hash still shows whether and
when the text changed, and proves which text was set (`sha256sum` of a saved copy);
`vacation show` has the current text.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import date
from typing import Any

from mailwarden.forwarding.models import Forward
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import describe_character
from mailwarden.kernel.errors import Conflict, FieldIssue, ValidationError
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.stack.sieve import sync
from mailwarden.stack.sieve.script import MAX_DAYS, MIN_DAYS, SCRIPT_NAME

from .models import Vacation
from .schemas import SieveStatus, VacationPublic, VacationSet

MAX_SUBJECT_CHARS = 255
# 60 KiB of UTF-8: a round limit below what the `body` column holds everywhere (a MariaDB TEXT
# column takes at most 65,535 bytes) and far above any auto-reply people write.
MAX_BODY_BYTES = 60 * 1024
# Line and paragraph separators are not controls, but would break a header line all the same.
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def _subject_issues(subject: str) -> list[FieldIssue]:
    if subject.strip() == "":
        return [FieldIssue("subject", "required", "a subject is required")]
    issues = []
    if len(subject) > MAX_SUBJECT_CHARS:
        issues.append(
            FieldIssue(
                "subject",
                "too_long",
                f"is {len(subject)} characters long; at most {MAX_SUBJECT_CHARS}",
            )
        )
    for ch in subject:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _LINE_SEPARATORS:
            issues.append(
                FieldIssue(
                    "subject",
                    "control_character",
                    f"contains {describe_character(ch)}; a subject is one line without control "
                    "characters",
                )
            )
            break
    return issues


def _normalize_body(body: str) -> str:
    """Line ends become LF; the text is otherwise kept as given."""
    return body.replace("\r\n", "\n").replace("\r", "\n")


def _body_issues(body: str) -> list[FieldIssue]:
    if body.strip() == "":
        return [FieldIssue("body", "required", "a message text is required")]
    for index, ch in enumerate(body):
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            line = body.count("\n", 0, index) + 1
            return [
                FieldIssue(
                    "body",
                    "control_character",
                    f"line {line} contains {describe_character(ch)}; only text, tabs and line "
                    "breaks are allowed",
                )
            ]
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        return [
            FieldIssue(
                "body",
                "too_long",
                f"is {size} bytes long (UTF-8); at most {MAX_BODY_BYTES} (60 KiB)",
            )
        ]
    return []


def _schedule_issues(starts_on: date | None, ends_on: date | None, days: int) -> list[FieldIssue]:
    issues = []
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        issues.append(
            FieldIssue(
                "ends_on",
                "before_start",
                f"the end date {ends_on.isoformat()} lies before the start date "
                f"{starts_on.isoformat()}",
            )
        )
    if not MIN_DAYS <= days <= MAX_DAYS:
        issues.append(
            FieldIssue(
                "interval_days",
                "out_of_range",
                f"is {days}; one reply per sender every {MIN_DAYS} to {MAX_DAYS} days",
            )
        )
    return issues


def snapshot(vacation: Vacation) -> dict[str, Any]:
    """The audit view: the subject in full, the body as its length and SHA-256 only."""
    return {
        "enabled": vacation.enabled,
        "subject": vacation.subject,
        "body_chars": len(vacation.body),
        "body_sha256": hashlib.sha256(vacation.body.encode("utf-8")).hexdigest(),
        "starts_on": None if vacation.starts_on is None else vacation.starts_on.isoformat(),
        "ends_on": None if vacation.ends_on is None else vacation.ends_on.isoformat(),
        "interval_days": vacation.interval_days,
    }


def to_public(address: str, vacation: Vacation | None) -> VacationPublic:
    if vacation is None:
        return VacationPublic(
            address=address,
            enabled=False,
            subject=None,
            body=None,
            starts_on=None,
            ends_on=None,
            interval_days=None,
            updated_at=None,
        )
    return VacationPublic(
        address=address,
        enabled=vacation.enabled,
        subject=vacation.subject,
        body=vacation.body,
        starts_on=vacation.starts_on,
        ends_on=vacation.ends_on,
        interval_days=vacation.interval_days,
        updated_at=vacation.updated_at,
    )


def get_vacation(uow: UnitOfWork, actor: Actor, address: str) -> VacationPublic:
    """The mailbox's auto-reply; disabled with every field None when it never had one."""
    mailbox, _ = mailboxes.find_live(uow, actor, address, Permission.VACATION_READ)
    return to_public(mailbox.address, uow.session.get(Vacation, mailbox.id))


def set_vacation(uow: UnitOfWork, actor: Actor, address: str, data: VacationSet) -> VacationPublic:
    """Enable the auto-reply with exactly these settings (replacing any previous ones)."""
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.VACATION_UPDATE, to_change=True
    )
    body = _normalize_body(data.body)
    issues = (
        _subject_issues(data.subject)
        + _body_issues(body)
        + _schedule_issues(data.starts_on, data.ends_on, data.interval_days)
    )
    if issues:
        raise ValidationError.many(issues)

    vacation = uow.session.get(Vacation, mailbox.id)
    before = None if vacation is None else snapshot(vacation)
    if vacation is None:
        vacation = Vacation(mailbox_id=mailbox.id)
        uow.session.add(vacation)
    vacation.enabled = True
    vacation.subject = data.subject
    vacation.body = body
    vacation.starts_on = data.starts_on
    vacation.ends_on = data.ends_on
    vacation.interval_days = data.interval_days
    uow.session.flush()
    uow.record_saved(
        actor,
        "vacation",
        mailbox.address,
        domain=domain.name,
        before=before,
        after=snapshot(vacation),
    )
    sync.queue_apply(uow, mailbox.id, mailbox.address)
    return to_public(mailbox.address, vacation)


def disable_vacation(uow: UnitOfWork, actor: Actor, address: str) -> VacationPublic:
    """Stop the auto-reply; its text is kept. Disabling a disabled one changes nothing."""
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.VACATION_UPDATE, to_change=True
    )
    vacation = uow.session.get(Vacation, mailbox.id)
    if vacation is not None and vacation.enabled:
        before = snapshot(vacation)
        vacation.enabled = False
        uow.session.flush()
        uow.record_update(
            actor,
            "vacation",
            mailbox.address,
            domain=domain.name,
            before=before,
            after=snapshot(vacation),
        )
    # Applied even when nothing changed: it repairs a script an earlier failure left behind.
    sync.queue_apply(uow, mailbox.id, mailbox.address)
    return to_public(mailbox.address, vacation)


def apply_script(uow: UnitOfWork, actor: Actor, address: str) -> SieveStatus:
    """Upload the mailbox's script again from the stored rows (after a failed upload, say)."""
    mailbox, _ = mailboxes.find_live(
        uow, actor, address, Permission.VACATION_UPDATE, to_change=True
    )
    if not sync.is_configured(uow.settings):
        raise Conflict(
            "managesieve_host",
            "not_configured",
            "no ManageSieve server configured (MAILWARDEN_MANAGESIEVE_HOST); nothing to apply to",
        )
    vacation = uow.session.get(Vacation, mailbox.id)
    forward = uow.session.get(Forward, mailbox.id)
    sync.queue_apply(uow, mailbox.id, mailbox.address)
    return SieveStatus(
        address=mailbox.address,
        script_name=SCRIPT_NAME,
        vacation_enabled=sync.auto_reply_of(vacation) is not None,
        forward_enabled=sync.redirect_of(forward) is not None,
        script=sync.script_for_mailbox(uow.session, mailbox.id),
    )
