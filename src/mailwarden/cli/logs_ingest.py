"""`mailwarden logs ingest`: keep hourly traffic of the hosts' mail logs in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostPublic
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.logs import service
from mailwarden.logs.schemas import IngestReport

from .context import mutate, read
from .options import DryRun, Json
from .output import console, print_json

INGEST_EPILOG = (
    "Each run reads only what was logged since the previous one (the position in each log "
    "is stored; a rotated log is finished from where the last run stopped), adds it per clock "
    "hour to the stored traffic, and deletes hours older than the retention. Run it from cron "
    "or a systemd timer, more often than the logs rotate (e.g. every 5 minutes).\n\n"
    "Counts of single lines (received, delivered, deferrals, bounced, rejected) are exact; "
    "bytes and senders of a message whose lines fall into two runs may be missed, as "
    "pflogsumm misses them at the edges of the log it is given.\n\n"
    "Exit status: 0 every host ingested, 1 a host was refused or unreachable.\n\n"
    "Examples:\n\n"
    "  mailwarden logs ingest\n\n"
    "  mailwarden logs ingest --host mx1 --host mx2 --retention-days 30\n\n"
    "  mailwarden logs ingest --host mx1 --dry-run --json"
)


def _every_host(ctx: typer.Context) -> list[str]:
    names: list[str] = []
    after: str | None = None
    while True:
        page = read(ctx, _hosts_after(after))
        names += [host.name for host in page.items]
        if page.next_cursor is None:
            return names
        after = page.next_cursor


def _hosts_after(after: str | None) -> Callable[[UnitOfWork, Actor], Page[HostPublic]]:
    return lambda uow, actor: hosts.list_hosts(uow, actor, limit=500, after=after)


def _describe(report: IngestReport) -> str:
    verb = "would store" if report.dry_run else "stored"
    text = (
        f"{report.host}: read {report.lines} lines from {len(report.files)} file(s); "
        f"{verb} {report.hours_touched} hour(s)"
    )
    if report.hours_skipped_as_expired:
        text += f", skipped {report.hours_skipped_as_expired} older than the retention"
    if report.hours_deleted:
        text += f", deleted {report.hours_deleted} expired hour(s)"
    if report.lost_rotations:
        text += (
            f"; rotated twice since the last run, unread tail lost: "
            f"{', '.join(report.lost_rotations)}"
        )
    return text + "."


def _ingest_one(
    ctx: typer.Context, name: str, retention_days: int | None, dry_run: bool
) -> IngestReport:
    report, _ = mutate(
        ctx,
        dry_run,
        lambda uow, actor: service.ingest(uow, actor, name, retention_days=retention_days),
    )
    return report


def ingest(
    ctx: typer.Context,
    host_names: Annotated[
        list[str] | None,
        typer.Option("--host", help="A host to ingest; repeat for several (default: every host)."),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            min=1,
            max=3660,
            help="Keep this many days of hourly traffic (default: the setting "
            "log_retention_days, 90).",
        ),
    ] = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Add what the hosts logged since the last run to the hourly traffic the console charts."""
    names = host_names or _every_host(ctx)
    reports: list[IngestReport] = []
    failed = False
    for name in names:
        # One transaction per host: a host refused or unreachable keeps the others' runs.
        try:
            report = _ingest_one(ctx, name, retention_days, dry_run)
        except typer.Exit:
            failed = True
            continue
        reports.append(report)
        if not json_output:
            console.print(_describe(report), markup=False)
    if json_output:
        print_json(reports)
    if failed:
        raise typer.Exit(1)
