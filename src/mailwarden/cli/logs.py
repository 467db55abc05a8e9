"""`mailwarden logs ...`: what Postfix and Dovecot did, from their logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mailwarden.kernel.errors import MailwardenError
from mailwarden.logs import LocalLogFile, LogSource, LogSummary, rotated_set, summarize
from mailwarden.logs.engine import parse_since
from mailwarden.logs.sources import order_rotated
from mailwarden.logs.summary import detail_to_list, ranked

from .exits import fail
from .lazy import SubCommand, lazy_group
from .options import Json
from .output import console, print_fields, print_json, print_table, size

app = typer.Typer(
    help="Mail log analytics: Postfix and Dovecot traffic, rejects and logins.",
    no_args_is_help=True,
    cls=lazy_group({"ingest": SubCommand("logs_ingest", "ingest", {"epilog": "@INGEST_EPILOG"})}),
)

# Logs smaller than this are read before a progress bar would be worth drawing.
_PROGRESS_FROM = 64 << 20

SUMMARY_EPILOG = (
    "Counts follow pflogsumm (Debian's `pflogsumm`) exactly: received, delivered, forwarded, "
    "deferred (deferrals), bounced, rejected, reject warnings, held, discarded, bytes "
    "received/delivered, senders, recipients and their domains; per day and per hour of "
    "day; top senders, recipients and domains; reject, deferral and bounce reasons. On top: "
    "SMTP AUTH failures (smtpd SASL warnings) and Dovecot logins and authentication "
    'failures. In the per-day and per-hour tables, as in pflogsumm\'s, "deferred" counts '
    'deferrals and "rejected" includes reject warnings, held and discarded mail; the hour '
    "table sums all days (pflogsumm shows the daily average). --since skips each log up to "
    "its first line at or after that time.\n\n"
    "FILE may be plain or gzip-compressed; files of one rotated set (mail.log.2.gz, "
    "mail.log.1, mail.log) are read oldest first whatever order they are given in, and "
    "--rotated adds the rotated siblings of each FILE. Classic syslog stamps carry no year: "
    "it is the year of the file's modification time, or the year before for a later month. "
    "Big plain files are read by several processes at once (--workers).\n\n"
    "Examples:\n\n"
    "  mailwarden logs summary /var/log/mail.log --rotated --since 7d\n\n"
    "  mailwarden logs summary mail.log.1 mail.log --top 20\n\n"
    "  mailwarden logs summary /var/log/mail.log --json\n\n"
    "  mailwarden logs summary --host mx1 --since 24h"
)


def local_sources(files: Sequence[Path], *, rotated: bool) -> list[LogSource]:
    """The local files named on the command line, as sources in reading order."""
    paths: list[Path] = []
    for file in files:
        for path in rotated_set(file) if rotated else [file]:
            if path not in paths:
                paths.append(path)
    return [LocalLogFile(path) for path in order_rotated(paths)]


def summarize_sources(
    sources: Sequence[LogSource],
    *,
    since: datetime | None,
    top: int,
    as_json: bool,
    workers: int | None = None,
) -> None:
    """Read `sources` and print the report: the seam for sources from elsewhere (hosts)."""
    with _ProgressBar(sources) as bar:
        try:
            result = summarize(sources, since=since, workers=workers, progress=bar.advance)
        except (MailwardenError, OSError, EOFError) as exc:
            bar.stop()
            fail(str(exc))
    print_summary(result, top=top, as_json=as_json)


def print_summary(result: LogSummary, *, top: int, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict(top=top or None))
    else:
        print_report(result, top or None)


@app.command("summary", epilog=SUMMARY_EPILOG)
def summary(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Log files: plain or .gz, rotated ones included.", show_default=False),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Instead of FILE: the logs of this registered host (`mailwarden host add`), "
            "with their rotated siblings, read locally or over SSH.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Skip each log up to this time: 2024-03-01, 2024-03-01T12:00, 24h, 7d.",
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=0, max=100_000, help="Entries per list (0: all).")] = 10,
    rotated: Annotated[
        bool, typer.Option("--rotated", help="Also read the rotated siblings of each FILE.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Processes reading in parallel (default: one per CPU)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Summarise Postfix and Dovecot mail logs, the way pflogsumm does."""
    if (host is None) == (not files):
        fail("give log FILEs or --host NAME (one of them)")
    try:
        start = parse_since(since) if since is not None else None
        if host is not None:
            # Only --host needs the database and the host registry: a summary of files stays
            # free of their imports.
            from mailwarden.logs import service as logs_service

            from .context import read

            found = read(
                ctx, lambda uow, actor: logs_service.summarize_host(uow, actor, host, since=start)
            )
            print_summary(found, top=top, as_json=json_output)
            return
        sources = local_sources(files or [], rotated=rotated)
    except MailwardenError as exc:
        fail(str(exc))
    summarize_sources(sources, since=start, top=top, as_json=json_output, workers=workers)


class _ProgressBar:
    """Bytes read, on stderr, when stderr is a terminal and the logs are big."""

    def __init__(self, sources: Sequence[LogSource]) -> None:
        plain = [source.plain_path for source in sources]
        total = sum(path.stat().st_size for path in plain if path is not None)
        known = all(path is not None for path in plain)
        self._progress: Progress | None = None
        self._task: Any = None
        if sys.stderr.isatty() and os.environ.get("TERM") != "dumb" and total >= _PROGRESS_FROM:
            self._progress = Progress(
                TextColumn("reading logs"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("logs", total=total if known else None)

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, nbytes)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# --- the text report --------------------------------------------------------------------------


def _count(value: int) -> str:
    return f"{value:,}"


def print_report(result: LogSummary, top: int | None) -> None:
    totals = result.totals
    span = (
        f"{result.first:%Y-%m-%d %H:%M:%S} .. {result.last:%Y-%m-%d %H:%M:%S}"
        if result.first and result.last
        else "(no dated lines)"
    )
    console.print("Grand totals", style="bold", markup=False)
    print_fields(
        [
            ("logs", ", ".join(result.sources)),
            ("span", f"{span} ({result.days} days, {size(result.bytes_read)} read)"),
            ("received", _count(totals.received)),
            ("delivered", _count(totals.delivered)),
            ("forwarded", _count(totals.forwarded)),
            ("deferred", f"{_count(totals.deferred)} ({_count(totals.deferrals)} deferrals)"),
            ("bounced", _count(totals.bounced)),
            ("rejected", _count(totals.rejected)),
            ("reject warnings", _count(totals.reject_warnings)),
            ("held", _count(totals.held)),
            ("discarded", _count(totals.discarded)),
            ("bytes received", f"{_count(totals.bytes_received)} ({size(totals.bytes_received)})"),
            (
                "bytes delivered",
                f"{_count(totals.bytes_delivered)} ({size(totals.bytes_delivered)})",
            ),
            ("senders", _count(len(result.senders))),
            ("sending domains", _count(len(result.sending_domains))),
            ("recipients", _count(len(result.recipients))),
            ("recipient domains", _count(len(result.recipient_domains))),
            ("SMTP AUTH failures", _count(result.smtp_auth_failures.total)),
            ("Dovecot logins", _per_key(result.dovecot.logins)),
            ("Dovecot auth failures", _per_key(result.dovecot.auth_failures)),
        ]
    )
    traffic = ("received", "delivered", "deferred", "bounced", "rejected")
    if result.per_day:
        console.print()
        print_table(
            ("day", *traffic),
            (
                (
                    f"{day:%Y-%m-%d}",
                    *_traffic_cells(counts.received, counts.delivered, counts.deferrals),
                    _count(counts.bounced),
                    _count(counts.rejected_column),
                )
                for day, counts in sorted(result.per_day.items())
            ),
            title="Per day",
        )
        print_table(
            ("hour", *traffic),
            (
                (
                    f"{hour:02d}:00-{hour + 1:02d}:00",
                    *_traffic_cells(counts.received, counts.delivered, counts.deferrals),
                    _count(counts.bounced),
                    _count(counts.rejected_column),
                )
                for hour, counts in enumerate(result.per_hour_of_day)
            ),
            title=f"Per hour of day ({result.days} days)",
        )
    _ranking("Top senders (messages)", "sender", result.senders, top)
    _ranking("Top senders (bytes)", "sender", result.sender_bytes, top, in_bytes=True)
    _ranking("Top recipients (messages)", "recipient", result.recipients, top)
    _ranking("Top recipients (bytes)", "recipient", result.recipient_bytes, top, in_bytes=True)
    _ranking("Top sending domains (messages)", "domain", result.sending_domains, top)
    _ranking("Top recipient domains (messages)", "domain", result.recipient_domains, top)
    _reasons("Reject reasons", detail_to_list(result.rejects, top), top)
    _reasons("Reject warnings", detail_to_list(result.reject_warnings, top), top)
    _reasons("Deferral reasons (by delivery agent)", _flat(result.deferral_reasons), top)
    _reasons("Bounce reasons (by relay)", _flat(result.bounce_reasons), top)
    _ranking("SMTP AUTH failures by client", "client", result.smtp_auth_failures.clients, top)
    _ranking("Dovecot auth failures by client", "rip", result.dovecot.auth_failure_clients, top)
    _ranking("Dovecot auth failures by user", "user", result.dovecot.auth_failure_users, top)


def _traffic_cells(*values: int) -> list[str]:
    return [_count(value) for value in values]


def _per_key(counter: Mapping[str, int]) -> str:
    if not counter:
        return "0"
    return ", ".join(f"{key} {_count(value)}" for key, value in ranked(counter))


def _ranking(
    title: str, label: str, counter: Mapping[str, int], top: int | None, *, in_bytes: bool = False
) -> None:
    if not counter:
        return
    console.print()
    print_table(
        ("bytes" if in_bytes else "count", label),
        ((size(value) if in_bytes else _count(value), key) for key, value in ranked(counter, top)),
        title=title,
    )


def _flat(groups: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    rows = [
        {"group": group, "reason": reason, "count": count}
        for group, reasons in groups.items()
        for reason, count in reasons.items()
    ]
    rows.sort(key=_by_count)
    return rows


def _reasons(title: str, rows: list[dict[str, Any]], top: int | None) -> None:
    if not rows:
        return
    console.print()
    print_table(
        ("count", "where", "reason"),
        ((_count(row["count"]), row["group"], row["reason"]) for row in rows[:top]),
        title=title,
    )


def _by_count(row: dict[str, Any]) -> tuple[int, str, str]:
    return (-int(row["count"]), str(row["group"]), str(row["reason"]))
