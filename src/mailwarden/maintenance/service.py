"""Maintenance: `purge` deletes mailboxes whose grace period after removal has ended.

A purge has two halves. In the transaction: the mailbox rows (their vacation and forwarding rows
go with them through ON DELETE CASCADE), their quota_usage rows, and one audit entry per mailbox.
After the commit: each maildir is deleted, or archived as a .tar.gz first
(`removed_mail_action = "archive"`), through `stack.maildirs`, which refuses any path that is not
strictly inside the mail root. A maildir that cannot be handled is reported as FollowUpFailed
(the CLI warns and exits 3) and left as it was.

Removed mailboxes are walked oldest first along ix_mailboxes_deleted_at, in batches; one call
handles at most `limit` of them, so a large backlog is several short transactions rather than
one long one (`next_after` says where the next call continues).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, or_, select

from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import split_address
from mailwarden.kernel.errors import Conflict, FollowUpFailed, ValidationError
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox, QuotaUsage
from mailwarden.stack import maildirs

DEFAULT_PURGE_LIMIT = 500
MAX_PURGE_LIMIT = 5000
# Rows fetched (and locked) per query: bounded memory whatever the backlog.
_BATCH = 100
# Characters kept in archive file names; anything else (none in a valid address) becomes '_'.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9@._=+-]")


class Outcome(StrEnum):
    # Real run: the row is deleted; the maildir is handled once the transaction has committed.
    PENDING = "pending"
    DELETED = "deleted"
    ARCHIVED = "archived"
    # No maildir on disk: the mailbox never received mail nor logged in.
    MISSING = "missing"
    # The maildir was left in place; `error` says why.
    FAILED = "failed"
    # Dry run: what the real run would do with the maildir as it is now.
    WOULD_DELETE = "would_delete"
    WOULD_ARCHIVE = "would_archive"
    WOULD_FAIL = "would_fail"


@dataclass(slots=True)
class PurgedMailbox:
    address: str
    domain: str
    maildir: str
    removed_at: datetime
    outcome: Outcome
    # The absolute maildir path once it has been checked, and the archive written, if any.
    path: str | None = None
    archive: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "domain": self.domain,
            "maildir": self.maildir,
            "removed_at": self.removed_at.isoformat(),
            "outcome": self.outcome.value,
            "path": self.path,
            "archive": self.archive,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PurgeCursor:
    """Where a purge stopped: the next call continues after this (removed_at, id)."""

    removed_at: datetime
    mailbox_id: int


@dataclass(slots=True)
class PurgeResult:
    dry_run: bool
    # Mailboxes removed at or before this moment were due.
    cutoff: datetime
    grace_hours: int
    # "delete" or "archive" (settings.removed_mail_action).
    action: str
    # How many removed mailboxes were due when this call began (all of them, not only this
    # call's share): what a progress bar counts towards.
    due: int
    mailboxes: list[PurgedMailbox] = field(default_factory=list)
    # Set when `limit` stopped this call before every due mailbox was handled.
    next_after: PurgeCursor | None = None

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for entry in self.mailboxes if entry.outcome in outcomes)

    @property
    def purged(self) -> int:
        """Mailbox rows deleted (on a dry run: that would be deleted)."""
        return len(self.mailboxes)

    @property
    def archived(self) -> int:
        return self.count(Outcome.ARCHIVED)

    @property
    def failed(self) -> int:
        return self.count(Outcome.FAILED, Outcome.WOULD_FAIL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "cutoff": self.cutoff.isoformat(),
            "grace_hours": self.grace_hours,
            "action": self.action,
            "due": self.due,
            "purged": self.purged,
            "archived": self.archived,
            "deleted": self.count(Outcome.DELETED),
            "missing": self.count(Outcome.MISSING),
            "failed": self.failed,
            "mailboxes": [entry.as_dict() for entry in self.mailboxes],
        }


# Called once per mailbox as soon as its maildir has been handled (or previewed, on a dry run).
Progress = Callable[[PurgeResult, PurgedMailbox], None]


def purge(
    uow: UnitOfWork,
    actor: Actor,
    *,
    now: datetime | None = None,
    limit: int = DEFAULT_PURGE_LIMIT,
    after: PurgeCursor | None = None,
    progress: Progress | None = None,
) -> PurgeResult:
    """Delete up to `limit` mailboxes removed more than `deletion_grace_hours` before `now`.

    On a dry run the rows are deleted and rolled back as usual, and each maildir is only
    inspected: the result says what the real run would do with it.
    """
    require(actor, Permission.MAINTENANCE_PURGE)
    if not 1 <= limit <= MAX_PURGE_LIMIT:
        raise ValidationError(
            "limit", "out_of_range", f"limit must be between 1 and {MAX_PURGE_LIMIT}"
        )
    moment = utcnow() if now is None else now
    if moment.tzinfo is None:
        raise ValidationError("now", "naive_datetime", "give `now` with a time zone (UTC)")
    settings = uow.settings
    cutoff = moment - timedelta(hours=settings.deletion_grace_hours)
    due_clause = Mailbox.deleted_at <= cutoff
    result = PurgeResult(
        dry_run=uow.dry_run,
        cutoff=cutoff,
        grace_hours=settings.deletion_grace_hours,
        action=settings.removed_mail_action,
        due=uow.session.scalar(select(func.count()).select_from(Mailbox).where(due_clause)) or 0,
    )
    cursor = after
    while len(result.mailboxes) < limit:
        wanted = min(_BATCH, limit - len(result.mailboxes))
        stmt = select(Mailbox).where(due_clause)
        if cursor is not None:
            stmt = stmt.where(
                or_(
                    Mailbox.deleted_at > cursor.removed_at,
                    and_(Mailbox.deleted_at == cursor.removed_at, Mailbox.id > cursor.mailbox_id),
                )
            )
        # Locked, so that a restore racing this purge waits and then finds the row gone.
        stmt = stmt.order_by(Mailbox.deleted_at, Mailbox.id).limit(wanted + 1).with_for_update()
        rows = list(uow.session.scalars(stmt))
        batch = rows[:wanted]
        if not batch:
            break
        if not result.mailboxes and not uow.dry_run:
            _preflight(uow)
        last = batch[-1]
        assert last.deleted_at is not None  # selected by deleted_at <= cutoff
        cursor = PurgeCursor(last.deleted_at, last.id)
        _purge_batch(uow, actor, batch, result, progress)
        if len(rows) <= wanted:
            break
        if len(result.mailboxes) >= limit:
            result.next_after = cursor
    return result


def _preflight(uow: UnitOfWork) -> None:
    """Refuse the whole purge, with nothing changed, when its maildir work cannot succeed.

    Rows deleted while the maildirs cannot follow would leave mail on disk that no row
    explains: a missing mail root usually means this is not the mail host.
    """
    settings = uow.settings
    try:
        maildirs.mail_root_of(settings.mail_root)
    except FollowUpFailed as problem:
        raise Conflict(
            "mail_root",
            "unusable",
            f"{problem}; nothing was purged (run the purge on the mail host)",
        ) from None
    if settings.removed_mail_action == "archive":
        try:
            maildirs.check_archive_dir(settings.effective_archive_dir)
        except FollowUpFailed as problem:
            raise Conflict(
                "archive_dir",
                "unusable",
                f"{problem}; nothing was purged (see MAILWARDEN_ARCHIVE_DIR)",
            ) from None


def _purge_batch(
    uow: UnitOfWork,
    actor: Actor,
    batch: list[Mailbox],
    result: PurgeResult,
    progress: Progress | None,
) -> None:
    settings = uow.settings
    entries: list[tuple[PurgedMailbox, str | None]] = []
    for mailbox in batch:
        assert mailbox.deleted_at is not None
        _, domain = split_address(mailbox.address)
        entry = PurgedMailbox(
            address=mailbox.address,
            domain=domain,
            maildir=mailbox.maildir,
            removed_at=mailbox.deleted_at,
            outcome=Outcome.PENDING,
        )
        # Asked before the delete below, so that mailboxes of this batch count as sharers too.
        entries.append((entry, _sharer(uow, mailbox)))
        uow.record(
            actor,
            ChangeKind.DELETE,
            "mailbox",
            mailbox.address,
            domain=domain,
            before=mailboxes.snapshot(mailbox)
            | {
                "removed_at": mailbox.deleted_at.isoformat(),
                "maildir_action": settings.removed_mail_action,
            },
            action="mailbox.purge",
        )
    addresses = [mailbox.address for mailbox in batch]
    # Set-based: vacations and forwards go with the rows through ON DELETE CASCADE.
    uow.session.execute(delete(QuotaUsage).where(QuotaUsage.username.in_(addresses)))
    uow.session.execute(delete(Mailbox).where(Mailbox.id.in_([m.id for m in batch])))
    uow.session.flush()
    for entry, sharer in entries:
        result.mailboxes.append(entry)
        if uow.dry_run:
            _preview(uow, entry, sharer)
            if progress is not None:
                progress(result, entry)
        else:
            uow.after_commit(_maildir_work(uow, result, entry, sharer, progress))


def _sharer(uow: UnitOfWork, mailbox: Mailbox) -> str | None:
    """Another mailbox whose maildir is this one, lies inside it, or contains it, if any.

    Deleting the tree would then delete that mailbox's mail too. Not something mailwarden
    writes (every maildir comes from the template), but rows can be imported or edited by hand.
    """
    try:
        parts = maildirs.relative_parts(mailbox.maildir)
    except FollowUpFailed:
        return None  # an unsafe path is refused after commit, with its own reason
    own = "/".join(parts)
    ancestors = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    stmt = (
        select(Mailbox.address)
        .where(
            Mailbox.id != mailbox.id,
            or_(
                Mailbox.maildir.in_(ancestors + [path + "/" for path in ancestors]),
                Mailbox.maildir.startswith(own + "/", autoescape=True),
            ),
        )
        .order_by(Mailbox.address)
        .limit(1)
    )
    return uow.session.scalar(stmt)


def _shared_failure(entry: PurgedMailbox, sharer: str) -> FollowUpFailed:
    return FollowUpFailed(
        f"maildir {entry.maildir!r} of {entry.address}",
        f"overlaps the maildir of mailbox {sharer}; left in place",
    )


def _archive_name(entry: PurgedMailbox) -> str:
    stamp = entry.removed_at.strftime("%Y%m%dT%H%M%SZ")
    return _UNSAFE_IN_NAME.sub("_", f"{entry.address}-{stamp}")


def _preview(uow: UnitOfWork, entry: PurgedMailbox, sharer: str | None) -> None:
    """Dry run: inspect the maildir, change nothing."""
    if sharer is not None:
        entry.outcome, entry.error = Outcome.WOULD_FAIL, str(_shared_failure(entry, sharer))
        return
    try:
        path, state = maildirs.probe(uow.settings.mail_root, entry.maildir)
    except FollowUpFailed as failure:
        entry.outcome, entry.error = Outcome.WOULD_FAIL, str(failure)
        return
    entry.path = str(path)
    if state is maildirs.MaildirState.MISSING:
        entry.outcome = Outcome.MISSING
    elif uow.settings.removed_mail_action == "archive":
        entry.outcome = Outcome.WOULD_ARCHIVE
    else:
        entry.outcome = Outcome.WOULD_DELETE


def _maildir_work(
    uow: UnitOfWork,
    result: PurgeResult,
    entry: PurgedMailbox,
    sharer: str | None,
    progress: Progress | None,
) -> Callable[[], None]:
    settings = uow.settings

    def run() -> None:
        try:
            if sharer is not None:
                raise _shared_failure(entry, sharer)
            if settings.removed_mail_action == "archive":
                path, state, archive = maildirs.archive(
                    settings.mail_root,
                    entry.maildir,
                    settings.effective_archive_dir,
                    _archive_name(entry),
                )
                entry.archive = None if archive is None else str(archive)
            else:
                path, state = maildirs.remove(settings.mail_root, entry.maildir)
            entry.path = str(path)
            if state is maildirs.MaildirState.MISSING:
                entry.outcome = Outcome.MISSING
            elif entry.archive is not None:
                entry.outcome = Outcome.ARCHIVED
            else:
                entry.outcome = Outcome.DELETED
        except FollowUpFailed as failure:
            entry.outcome, entry.error = Outcome.FAILED, str(failure)
            raise
        finally:
            if progress is not None:
                progress(result, entry)

    return run
