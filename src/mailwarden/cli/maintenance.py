"""`mailwarden maintenance`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mailwarden.db.types import utcnow
from mailwarden.kernel.addresses import display_address, display_domain
from mailwarden.maintenance import service
from mailwarden.maintenance.service import Outcome, PurgeCursor, PurgedMailbox, PurgeResult

from .context import mutate
from .exits import EXIT_FOLLOW_UP_FAILED
from .options import DryRun, Json
from .output import console, print_json, when

app = typer.Typer(help="Periodic housekeeping: purge removed mailboxes.", no_args_is_help=True)

# Below this many due mailboxes a progress bar would only flicker.
_PROGRESS_FROM = 20


def _detail(entry: PurgedMailbox) -> str:
    match entry.outcome:
        case Outcome.DELETED:
            return "maildir deleted"
        case Outcome.ARCHIVED:
            return f"maildir archived to {entry.archive}"
        case Outcome.MISSING if entry.archive is not None:
            return f"no maildir on disk (archived earlier to {entry.archive})"
        case Outcome.MISSING:
            return "no maildir on disk"
        case Outcome.WOULD_DELETE:
            return "would delete the maildir"
        case Outcome.WOULD_ARCHIVE:
            return "would archive the maildir, then delete it"
        case Outcome.FAILED:
            return f"maildir left in place, mailbox kept for the next purge: {entry.error}"
        case Outcome.WOULD_FAIL:
            return f"maildir would be left in place, mailbox kept: {entry.error}"


def _describe(entry: PurgedMailbox) -> str:
    where = entry.path or entry.maildir
    retry = " (retry)" if entry.previous_error else ""
    return f"  - {display_address(entry.address)}{retry} ({where}): {_detail(entry)}"


class _ProgressBar:
    """A bar on stderr while maildirs are deleted; only on a terminal, only for many."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._progress: Progress | None = None
        self._task: Any = None

    def advance(self, result: PurgeResult, _entry: PurgedMailbox) -> None:
        if not self._enabled:
            return
        if self._progress is None:
            # The total is known once the first call has counted what is due.
            if result.due < _PROGRESS_FROM:
                self._enabled = False
                return
            self._progress = Progress(
                TextColumn("purging"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("purge", total=result.due)
        self._progress.advance(self._task)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command(
    "purge",
    epilog="Run it from cron or a systemd timer on the mail host, as a user that may delete "
    "the maildirs (root or the vmail user), for example in /etc/cron.d/mailwarden:\n\n"
    "  30 3 * * * root mailwarden maintenance purge\n\n"
    "or a systemd service with ExecStart=mailwarden maintenance purge, started by a timer "
    "with OnCalendar=daily.\n\n"
    "Grace period: `mailwarden mailbox remove` stops delivery and login at once and keeps the "
    "mailbox restorable (`mailwarden mailbox restore`) for MAILWARDEN_DELETION_GRACE_HOURS "
    "(default 48); only mailboxes removed longer ago than that are purged. A domain removed "
    "with `mailwarden domain remove --cascade` is deleted together with its last mailbox.\n\n"
    "What happens to the mail: MAILWARDEN_REMOVED_MAIL_ACTION=delete (the default) deletes "
    "the maildir under MAILWARDEN_MAIL_ROOT; =archive first writes it to "
    "ADDRESS-REMOVEDTIME.tar.gz (mode 0600) in MAILWARDEN_ARCHIVE_DIR (default: archive/ in "
    "the data directory; an existing archive is never overwritten), then deletes it. Paths "
    "that are not strictly inside the mail root are never touched. A mailbox's row is deleted "
    "only after its maildir is gone: a maildir that cannot be handled keeps its mailbox "
    "(`mailwarden mailbox list --removed`), and with it the address, and the next purge "
    "tries again. --dry-run makes the same checks and only inspects the maildirs.\n\n"
    "Exit status: 0 done, also when nothing was due (a dry run exits 0 unless refused). "
    "1 refused or stopped: a refusal (not permitted, mail root or archive directory "
    "unusable) comes before anything is touched; an error later in the run (the database "
    "gone, say) stops it: what was purged by then stays purged, the rest waits for the next "
    "run. 3 finished, but some maildirs could not be handled: each is named on stderr with "
    "the reason, its mailbox is kept, and the next run tries it again.\n\n"
    "Examples:\n\n"
    "  mailwarden maintenance purge --dry-run\n\n"
    "  mailwarden maintenance purge --json",
)
def purge(ctx: typer.Context, dry_run: DryRun = False, json_output: Json = False) -> None:
    """Delete mailboxes removed longer ago than the grace period, with their mail."""
    # One moment for every transaction of this run, so the set of due mailboxes is fixed.
    now = utcnow()
    bar = _ProgressBar(enabled=Console(stderr=True).is_terminal)
    results: list[PurgeResult] = []
    cursor: PurgeCursor | None = None
    try:
        while True:
            result = _purge_once(ctx, dry_run, now, cursor, bar)
            results.append(result)
            if not json_output:
                _print_lines(result, first=len(results) == 1)
            if result.next_after is None:
                break
            cursor = result.next_after
    finally:
        bar.stop()
    run = PurgeResult.combined(results)
    if json_output:
        print_json(run.as_dict())
    else:
        console.print(_summary(run), markup=False)
    if not run.dry_run and run.failed:
        _warn_kept(run)


def _warn_kept(run: PurgeResult) -> None:
    """After the report: the mailboxes left for the next run, on stderr, and exit 3."""
    for entry in run.mailboxes:
        if entry.kept:
            typer.echo(
                f"mailwarden: warning: kept mailbox {display_address(entry.address)} for the "
                f"next purge: {entry.error}",
                err=True,
            )
    raise typer.Exit(EXIT_FOLLOW_UP_FAILED)


def _purge_once(
    ctx: typer.Context,
    dry_run: bool,
    now: datetime,
    cursor: PurgeCursor | None,
    bar: _ProgressBar,
) -> PurgeResult:
    """One service call: at most its limit of mailboxes, their rows in one transaction."""
    result, _ = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.purge(uow, actor, now=now, after=cursor, progress=bar.advance),
    )
    return result


def _print_lines(result: PurgeResult, *, first: bool) -> None:
    if first and result.dry_run:
        console.print("Dry run: nothing was changed.", markup=False)
    for entry in result.mailboxes:
        console.print(_describe(entry), markup=False)


def _summary(run: PurgeResult) -> str:
    before = f"removed before {when(run.cutoff)} UTC"
    if not run.mailboxes:
        return f"Nothing to purge: no mailbox was {before} (grace period {run.grace_hours} hours)."
    noun = "mailbox" if run.purged == 1 else "mailboxes"
    if run.dry_run:
        text = (
            f"Dry run: {run.purged} {noun} {before} would be purged; maildirs: "
            f"{run.count(Outcome.WOULD_DELETE)} to delete, {run.count(Outcome.WOULD_ARCHIVE)} "
            f"to archive, {run.count(Outcome.MISSING)} not on disk, "
            f"{run.failed} that would be left in place (their mailboxes kept)."
        )
        domains = "would be deleted with their last mailbox"
    else:
        text = (
            f"Purged {run.purged} {noun} {before}; maildirs: {run.count(Outcome.DELETED)} "
            f"deleted, {run.archived} archived, {run.count(Outcome.MISSING)} not on disk, "
            f"{run.failed} failed."
        )
        if run.failed:
            kept = "mailbox" if run.failed == 1 else "mailboxes"
            text += f" {run.failed} {kept} kept for the next purge (see the warnings)."
        domains = "deleted with their last mailbox"
    if run.domains:
        names = ", ".join(display_domain(name) for name in run.domains)
        text += f" Domains {domains}: {names}."
    return text
