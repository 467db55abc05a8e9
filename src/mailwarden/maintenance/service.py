"""Maintenance: `purge` deletes mailboxes whose grace period after removal has ended.

A purge call works in three steps, so that mail is never left on disk without the row that says
whose it is:

1. Read the due mailboxes (oldest first along ix_mailboxes_deleted_at, at most `limit`) and,
   for each, whether its maildir overlaps another mailbox's. Nothing is written. When the unit
   of work holds no change yet (the faces run a purge in one of its own), this read-only
   transaction ends here, so that no lock is held while the disk is worked on: on SQLite every
   transaction holds the database's write lock from BEGIN, which would stop Dovecot's quota
   updates for as long as maildirs are deleted or archived.
2. Handle each maildir, with no transaction open: delete it, or archive it as a .tar.gz first
   (`removed_mail_action = "archive"`), through `stack.maildirs`, which refuses any path that
   is not strictly inside the mail root. A dry run only inspects.
3. Write, in the unit of work's transaction (the face commits it, one per call): for each
   mailbox whose maildir is gone, its row (vacation and forwarding rows follow through ON
   DELETE CASCADE), its quota_usage row and an audit entry. A mailbox whose maildir could not
   be handled keeps its row, so its address stays reserved; `purge_error` says why, and the
   next purge tries again. A domain that `domain remove --cascade` left for the purge is
   deleted with its last mailbox.

An interruption between steps 2 and 3 leaves rows whose maildirs are gone or archived already.
The next purge finds no maildir, which is fine, deletes the rows and names the archives written
earlier; an archive is never overwritten (a second one of the same name gets `-2`).

Before step 1 a pre-flight refuses the whole call, with nothing touched, when the mail root (or
the archive directory) is unusable: the same on a dry run as on a real one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select

from mailwarden.alias_domains.models import AliasDomain
from mailwarden.aliases.models import AliasTarget
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.addresses import split_address
from mailwarden.kernel.errors import Conflict, ValidationError
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import PURGE_ERROR_LENGTH, Mailbox, QuotaUsage
from mailwarden.stack import maildirs

DEFAULT_PURGE_LIMIT = 500
MAX_PURGE_LIMIT = 5000
# Ids per IN (...) list when the rows are written: well below every database's bind limit.
_CHUNK = 500
# Characters kept in archive file names; anything else (none in a valid address) becomes '_'.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9@._=+-]")

T = TypeVar("T")


class Outcome(StrEnum):
    DELETED = "deleted"
    ARCHIVED = "archived"
    # No maildir on disk: never delivered to, or handled by an earlier, interrupted purge.
    MISSING = "missing"
    # The maildir was left in place and the mailbox kept for the next purge; `error` says why.
    FAILED = "failed"
    # Dry run: what the real run would do with the maildir as it is now.
    WOULD_DELETE = "would_delete"
    WOULD_ARCHIVE = "would_archive"
    WOULD_FAIL = "would_fail"


_KEPT = (Outcome.FAILED, Outcome.WOULD_FAIL)


@dataclass(slots=True)
class PurgedMailbox:
    address: str
    domain: str
    maildir: str
    removed_at: datetime
    outcome: Outcome
    # The absolute maildir path once it has been checked, and the archive written, if any (for
    # a maildir found missing: the newest archive an earlier purge wrote for it, if any).
    path: str | None = None
    archive: str | None = None
    error: str | None = None
    # Why the previous purge failed, when this is a retry.
    previous_error: str | None = None

    @property
    def kept(self) -> bool:
        """The row stays (the maildir could not be handled); the next purge retries it."""
        return self.outcome in _KEPT

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "domain": self.domain,
            "maildir": self.maildir,
            "removed_at": self.removed_at.isoformat(),
            "outcome": self.outcome.value,
            "kept": self.kept,
            "path": self.path,
            "archive": self.archive,
            "error": self.error,
            "previous_error": self.previous_error,
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
    # Every mailbox this call handled, purged or kept.
    mailboxes: list[PurgedMailbox] = field(default_factory=list)
    # Domains deleted with their last mailbox (`domain remove --cascade`).
    domains: list[str] = field(default_factory=list)
    # Set when `limit` stopped this call before every due mailbox was handled.
    next_after: PurgeCursor | None = None

    @classmethod
    def combined(cls, results: list[PurgeResult]) -> PurgeResult:
        """A run of several calls (one per batch, same `now`) as one result."""
        first = results[0]
        return cls(
            dry_run=first.dry_run,
            cutoff=first.cutoff,
            grace_hours=first.grace_hours,
            action=first.action,
            due=first.due,
            mailboxes=[entry for result in results for entry in result.mailboxes],
            domains=[name for result in results for name in result.domains],
        )

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for entry in self.mailboxes if entry.outcome in outcomes)

    @property
    def purged(self) -> int:
        """Mailbox rows deleted (on a dry run: that would be deleted)."""
        return sum(1 for entry in self.mailboxes if not entry.kept)

    @property
    def archived(self) -> int:
        return self.count(Outcome.ARCHIVED)

    @property
    def failed(self) -> int:
        """Mailboxes kept because their maildir could not be handled (or would not be)."""
        return self.count(*_KEPT)

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
            "domains": list(self.domains),
        }


# Called once per mailbox as soon as its maildir has been handled (or inspected, on a dry run).
Progress = Callable[[PurgeResult, PurgedMailbox], None]


@dataclass(frozen=True, slots=True)
class _Due:
    """What step 1 read about a due mailbox; compared with the row again in step 3."""

    mailbox_id: int
    domain_id: int
    maildir: str
    removed_at: datetime
    snapshot: dict[str, Any]
    # Another mailbox whose maildir overlaps this one, if any.
    sharer: str | None


def purge(
    uow: UnitOfWork,
    actor: Actor,
    *,
    now: datetime | None = None,
    limit: int = DEFAULT_PURGE_LIMIT,
    after: PurgeCursor | None = None,
    progress: Progress | None = None,
) -> PurgeResult:
    """Purge up to `limit` mailboxes removed more than `deletion_grace_hours` before `now`.

    Each maildir is handled before its row is deleted; one that cannot be handled keeps its row
    (with `purge_error`) for the next purge. On a dry run each maildir is only inspected and
    the rows are written and rolled back as usual: the result says what the real run would do.
    """
    require(actor, Permission.MAINTENANCE_PURGE)
    if not 1 <= limit <= MAX_PURGE_LIMIT:
        raise ValidationError(
            "limit", "out_of_range", f"limit must be between 1 and {MAX_PURGE_LIMIT}"
        )
    moment = utcnow() if now is None else now
    if moment.tzinfo is None:
        raise ValidationError("now", "naive_datetime", "give `now` with a time zone (UTC)")
    _preflight(uow)
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

    # Step 1: read.
    stmt = select(Mailbox).where(due_clause)
    if after is not None:
        stmt = stmt.where(
            or_(
                Mailbox.deleted_at > after.removed_at,
                and_(Mailbox.deleted_at == after.removed_at, Mailbox.id > after.mailbox_id),
            )
        )
    rows = list(uow.session.scalars(stmt.order_by(Mailbox.deleted_at, Mailbox.id).limit(limit + 1)))
    batch = [_read(uow, mailbox, result) for mailbox in rows[:limit]]
    if len(rows) > limit:
        last = batch[-1][0]
        result.next_after = PurgeCursor(last.removed_at, last.mailbox_id)
    if not batch:
        return result
    _end_read_transaction(uow)

    # Step 2: the disk.
    for due, entry in batch:
        if uow.dry_run:
            _inspect(uow, due, entry)
        else:
            _handle(uow, due, entry)
        if progress is not None:
            progress(result, entry)

    # Step 3: the rows.
    _write(uow, actor, batch, result)
    return result


def _preflight(uow: UnitOfWork) -> None:
    """Refuse the whole purge, with nothing touched, when its maildir work cannot succeed.

    Reads only, so a dry run checks exactly what the real run would: a missing mail root
    usually means this is not the mail host, and every maildir would fail.
    """
    settings = uow.settings
    try:
        maildirs.mail_root_of(settings.mail_root)
    except maildirs.MaildirError as problem:
        raise Conflict(
            "mail_root",
            "unusable",
            f"{problem}; nothing was purged (run the purge on the mail host)",
        ) from None
    if settings.removed_mail_action == "archive":
        try:
            maildirs.check_archive_dir(settings.effective_archive_dir)
        except maildirs.MaildirError as problem:
            raise Conflict(
                "archive_dir",
                "unusable",
                f"{problem}; nothing was purged (see MAILWARDEN_ARCHIVE_DIR)",
            ) from None


def _read(uow: UnitOfWork, mailbox: Mailbox, result: PurgeResult) -> tuple[_Due, PurgedMailbox]:
    assert mailbox.deleted_at is not None  # selected by deleted_at <= cutoff
    _, domain = split_address(mailbox.address)
    due = _Due(
        mailbox_id=mailbox.id,
        domain_id=mailbox.domain_id,
        maildir=mailbox.maildir,
        removed_at=mailbox.deleted_at,
        snapshot=mailboxes.snapshot(mailbox),
        sharer=_sharer(uow, mailbox),
    )
    entry = PurgedMailbox(
        address=mailbox.address,
        domain=domain,
        maildir=mailbox.maildir,
        removed_at=mailbox.deleted_at,
        # Until step 2 says otherwise: nothing is deleted unless its maildir was handled.
        outcome=Outcome.WOULD_FAIL if uow.dry_run else Outcome.FAILED,
        previous_error=mailbox.purge_error,
    )
    result.mailboxes.append(entry)
    return due, entry


def _end_read_transaction(uow: UnitOfWork) -> None:
    """Release what step 1 read, so no lock is held while maildirs are handled.

    Only when the unit of work holds no change: a caller that changed something before the
    purge, in the same unit of work, keeps its transaction (and its locks) open instead.
    """
    session = uow.session
    if uow.plan or session.new or session.dirty or session.deleted:
        return
    session.rollback()


def _sharer(uow: UnitOfWork, mailbox: Mailbox) -> str | None:
    """Another mailbox whose maildir is this one, lies inside it, or contains it, if any.

    Deleting the tree would then delete that mailbox's mail too. Not something mailwarden
    writes (every maildir comes from the template), but rows can be imported or edited by hand,
    and the template can change between mailboxes.

    Both lookups use ix_mailboxes_maildir: equality for this maildir and its ancestors, and a
    range for what lies inside it. Every path inside `own/` sorts in [`own/`, `own0`) because
    '0' follows '/' in code point order, which is the column's collation on every database.
    """
    try:
        parts = maildirs.relative_parts(mailbox.maildir)
    except maildirs.MaildirError:
        return None  # an unsafe path is refused when its maildir is handled, with its reason
    own = "/".join(parts)
    ancestors = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    same_or_above = Mailbox.maildir.in_(ancestors + [path + "/" for path in ancestors])
    below = and_(Mailbox.maildir >= own + "/", Mailbox.maildir < own + "0")
    for clause in (same_or_above, below):
        # In index order, so that the first match ends the scan (a maildir such as
        # `example.org/` lies above every mailbox of the domain: no sorting them all).
        stmt = (
            select(Mailbox.address)
            .where(clause, Mailbox.id != mailbox.id)
            .order_by(Mailbox.maildir)
            .limit(1)
        )
        sharer = uow.session.scalar(stmt)
        if sharer is not None:
            return sharer
    return None


def _archive_name(entry: PurgedMailbox) -> str:
    stamp = entry.removed_at.strftime("%Y%m%dT%H%M%SZ")
    return _UNSAFE_IN_NAME.sub("_", f"{entry.address}-{stamp}")


def _shared(due: _Due) -> str:
    return f"overlaps the maildir of mailbox {due.sharer}; left in place"


def _earlier_archive(uow: UnitOfWork, entry: PurgedMailbox) -> str | None:
    if uow.settings.removed_mail_action != "archive":
        return None
    found = maildirs.existing_archives(uow.settings.effective_archive_dir, _archive_name(entry))
    return str(found[-1]) if found else None


def _inspect(uow: UnitOfWork, due: _Due, entry: PurgedMailbox) -> None:
    """Dry run: what the real run would do with the maildir; changes nothing."""
    if due.sharer is not None:
        entry.error = f"maildir {due.maildir!r} {_shared(due)}"
        return
    try:
        path, state = maildirs.probe(uow.settings.mail_root, due.maildir)
    except maildirs.MaildirError as failure:
        entry.error = str(failure)
        return
    entry.path = str(path)
    if state is maildirs.MaildirState.MISSING:
        entry.outcome, entry.archive = Outcome.MISSING, _earlier_archive(uow, entry)
    elif uow.settings.removed_mail_action == "archive":
        entry.outcome = Outcome.WOULD_ARCHIVE
    else:
        entry.outcome = Outcome.WOULD_DELETE


def _handle(uow: UnitOfWork, due: _Due, entry: PurgedMailbox) -> None:
    """Delete or archive the maildir; on failure the entry stays FAILED with the reason."""
    settings = uow.settings
    if due.sharer is not None:
        entry.error = f"maildir {due.maildir!r} {_shared(due)}"
        return
    try:
        if settings.removed_mail_action == "archive":
            path, state, archive = maildirs.archive(
                settings.mail_root,
                due.maildir,
                settings.effective_archive_dir,
                _archive_name(entry),
            )
            entry.archive = None if archive is None else str(archive)
        else:
            path, state = maildirs.remove(settings.mail_root, due.maildir)
    except maildirs.MaildirError as failure:
        entry.error = str(failure)
        return
    entry.path = str(path)
    if state is maildirs.MaildirState.MISSING:
        entry.outcome, entry.archive = Outcome.MISSING, _earlier_archive(uow, entry)
    elif entry.archive is not None:
        entry.outcome = Outcome.ARCHIVED
    else:
        entry.outcome = Outcome.DELETED


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _write(
    uow: UnitOfWork,
    actor: Actor,
    batch: list[tuple[_Due, PurgedMailbox]],
    result: PurgeResult,
) -> None:
    """Step 3: delete the rows whose maildirs are gone, keep the others with the reason."""
    session = uow.session
    # Domains first, then mailboxes: the order in which `domain remove` and `mailbox create`
    # lock them, so that concurrent calls wait for each other instead of deadlocking.
    removed_domains = _lock_removed_domains(uow, {due.domain_id for due, _ in batch})
    ids = [due.mailbox_id for due, _ in batch]
    current: dict[int, Mailbox] = {}
    for id_chunk in _chunks(ids):
        stmt = select(Mailbox).where(Mailbox.id.in_(id_chunk)).with_for_update()
        current.update((row.id, row) for row in session.scalars(stmt))
    gone: list[Mailbox] = []
    for due, entry in batch:
        row = current.get(due.mailbox_id)
        if row is None or row.deleted_at != due.removed_at or row.maildir != due.maildir:
            # Restored, edited or purged by a concurrent run while its maildir was handled.
            entry.outcome = Outcome.WOULD_FAIL if uow.dry_run else Outcome.FAILED
            entry.error = (
                f"mailbox {entry.address} changed while its maildir was handled (restored, "
                "edited or purged by another run); its row is left as it is now"
            )
            continue
        if entry.kept:
            _keep(uow, actor, row, entry)
        else:
            gone.append(row)
            _record_purge(uow, actor, row, due, entry)
    for chunk in _chunks(gone):
        addresses = [row.address for row in chunk]
        # Set-based: vacations and forwards go with the rows through ON DELETE CASCADE.
        session.execute(delete(QuotaUsage).where(QuotaUsage.username.in_(addresses)))
        session.execute(delete(Mailbox).where(Mailbox.id.in_([row.id for row in chunk])))
    session.flush()
    for domain in removed_domains:
        _finish_domain_removal(uow, actor, domain, result)


def _keep(uow: UnitOfWork, actor: Actor, row: Mailbox, entry: PurgedMailbox) -> None:
    """The maildir is still there: the row stays, with the reason, for the next purge."""
    reason = entry.error or "maildir not handled"
    if len(reason) > PURGE_ERROR_LENGTH:
        reason = reason[: PURGE_ERROR_LENGTH - 1] + "…"
    before = {"purge_error": row.purge_error}
    row.purge_error = reason
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "mailbox",
        row.address,
        domain=entry.domain,
        before=before,
        after={"purge_error": reason},
        action="mailbox.purge_failed",
    )


def _record_purge(
    uow: UnitOfWork, actor: Actor, row: Mailbox, due: _Due, entry: PurgedMailbox
) -> None:
    uow.record(
        actor,
        ChangeKind.DELETE,
        "mailbox",
        row.address,
        domain=entry.domain,
        before=due.snapshot
        | {
            "removed_at": due.removed_at.isoformat(),
            "maildir_action": uow.settings.removed_mail_action,
            "maildir_outcome": entry.outcome.value,
            "archive": entry.archive,
        },
        action="mailbox.purge",
    )


def _lock_removed_domains(uow: UnitOfWork, domain_ids: Iterable[int]) -> list[Domain]:
    """The domains among these that `domain remove --cascade` left for the purge, locked."""
    wanted = sorted(domain_ids)
    # Read without a lock first: most purges touch no removed domain and lock none.
    marked = list(
        uow.session.scalars(
            select(Domain.id).where(Domain.id.in_(wanted), Domain.deleted_at.is_not(None))
        )
    )
    if not marked:
        return []
    stmt = select(Domain).where(Domain.id.in_(marked)).order_by(Domain.id).with_for_update()
    return list(uow.session.scalars(stmt))


def _finish_domain_removal(
    uow: UnitOfWork, actor: Actor, domain: Domain, result: PurgeResult
) -> None:
    """Delete a domain removed with --cascade once its last mailbox is purged."""
    session = uow.session
    remaining = select(Mailbox.id).where(Mailbox.domain_id == domain.id).limit(1)
    if session.scalar(remaining) is not None:
        return  # mailboxes still wait for their purge (or for a retry)
    assert domain.deleted_at is not None  # locked as removed
    # The cascade removed these already; anything added to the inactive domain since goes too.
    aliases = domains.alias_count(uow, domain)
    alias_domains = list(
        session.scalars(select(AliasDomain.name).where(AliasDomain.target_domain_id == domain.id))
    )
    before = domains.snapshot(domain) | {
        "removed_at": domain.deleted_at.isoformat(),
        "aliases": aliases,
        "alias_domains": alias_domains,
    }
    session.execute(delete(AliasTarget).where(AliasTarget.domain_id == domain.id))
    session.execute(delete(AliasDomain).where(AliasDomain.target_domain_id == domain.id))
    session.delete(domain)
    session.flush()
    uow.record(
        actor,
        ChangeKind.DELETE,
        "domain",
        domain.name,
        domain=domain.name,
        before=before,
        action="domain.purge",
    )
    result.domains.append(domain.name)
