"""`mailwarden maintenance`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mailwarden.db.types import utcnow
from mailwarden.kernel.addresses import display_address
from mailwarden.maintenance import service
from mailwarden.maintenance.service import Outcome, PurgeCursor, PurgedMailbox, PurgeResult

from .context import mutate
from .options import DryRun, Json
from .output import console, print_json, when

app = typer.Typer(help="Periodic housekeeping: purge removed mailboxes.", no_args_is_help=True)

# Below this many due mailboxes a progress bar would only flicker.
_PROGRESS_FROM = 20

_LINE = {
    Outcome.DELETED: "maildir deleted",
    Outcome.MISSING: "no maildir on disk",
    Outcome.WOULD_DELETE: "would delete the maildir",
    Outcome.PENDING: "maildir not handled",
}


def _describe(entry: PurgedMailbox) -> str:
    if entry.outcome is Outcome.ARCHIVED:
        detail = f"maildir archived to {entry.archive}"
    elif entry.outcome is Outcome.WOULD_ARCHIVE:
        detail = "would archive the maildir, then delete it"
    elif entry.outcome in (Outcome.FAILED, Outcome.WOULD_FAIL):
        detail = f"maildir left in place: {entry.error}"
    else:
        detail = _LINE[entry.outcome]
    where = entry.path or entry.maildir
    return f"  - {display_address(entry.address)} ({where}): {detail}"


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
    "(default 48); only mailboxes removed longer ago than that are purged.\n\n"
    "What happens to the mail: MAILWARDEN_REMOVED_MAIL_ACTION=delete (the default) deletes "
    "the maildir under MAILWARDEN_MAIL_ROOT; =archive first writes it to "
    "ADDRESS-REMOVEDTIME.tar.gz (mode 0600) in MAILWARDEN_ARCHIVE_DIR (default: archive/ in "
    "the data directory), then deletes it. Paths that are not strictly inside the mail root "
    "are never touched.\n\n"
    "Exit status: 0 done (also when nothing was due), 1 refused (nothing purged), 3 rows "
    "purged but some maildirs could not be handled (each is named on stderr and left in "
    "place).\n\n"
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
    run = _combined(results)
    if json_output:
        print_json(run.as_dict())
    else:
        console.print(_summary(run), markup=False)


def _purge_once(
    ctx: typer.Context,
    dry_run: bool,
    now: datetime,
    cursor: PurgeCursor | None,
    bar: _ProgressBar,
) -> PurgeResult:
    """One transaction: at most the service's limit of mailboxes."""
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


def _combined(results: list[PurgeResult]) -> PurgeResult:
    """The run as one result, whatever number of transactions it took."""
    first = results[0]
    return PurgeResult(
        dry_run=first.dry_run,
        cutoff=first.cutoff,
        grace_hours=first.grace_hours,
        action=first.action,
        due=first.due,
        mailboxes=[entry for result in results for entry in result.mailboxes],
    )


def _summary(run: PurgeResult) -> str:
    before = f"removed before {when(run.cutoff)} UTC"
    if run.purged == 0:
        return f"Nothing to purge: no mailbox was {before} (grace period {run.grace_hours} hours)."
    noun = "mailbox" if run.purged == 1 else "mailboxes"
    if run.dry_run:
        return (
            f"Dry run: {run.purged} {noun} {before} would be purged; maildirs: "
            f"{run.count(Outcome.WOULD_DELETE)} to delete, {run.count(Outcome.WOULD_ARCHIVE)} "
            f"to archive, {run.count(Outcome.MISSING)} not on disk, "
            f"{run.count(Outcome.WOULD_FAIL)} that would be left in place."
        )
    return (
        f"Purged {run.purged} {noun} {before}; maildirs: {run.count(Outcome.DELETED)} deleted, "
        f"{run.archived} archived, {run.count(Outcome.MISSING)} not on disk, "
        f"{run.failed} failed."
    )
