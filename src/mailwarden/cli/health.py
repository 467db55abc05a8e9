"""`mailwarden health` and `mailwarden monitor`: the mail hosts' health, now and over time."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Annotated

import typer

from mailwarden.health import service
from mailwarden.health.schemas import HostHealth, MonitorResult, Status
from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostPublic
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.unit_of_work import PlannedChange

from .context import mutate, read
from .exits import EXIT_FOLLOW_UP_FAILED, EXIT_REFUSED, fail
from .options import All, DryRun, Json, Limit
from .output import console, print_json, print_plan, print_table, when
from .paging import emit

HOSTS_PER_PAGE = 100

HEALTH_HELP = (
    "Check mail hosts now: Postfix and Dovecot running, the SMTP and IMAP banners, the queue "
    "(size, oldest message), the disk of the mail root, the certificates of the SMTP and IMAP "
    "listeners (days left; `unknown` when TLS is not offered) and the database. Nothing is "
    "stored; `mailwarden monitor` stores results and raises alerts.\n\n"
    "Thresholds come from the settings (MAILWARDEN_HEALTH_*).\n\n"
    "Exit status: 0 when no check is critical (ok, warning or unknown), 1 when one is (or the "
    "command was refused)."
)
HEALTH_EPILOG = (
    "Without --host every registered host is checked.\n\n"
    "Examples:\n\n  mailwarden health\n\n  mailwarden health --host mx1 --json"
)
MONITOR_HELP = (
    "Check every host (or those named), store the results (for /metrics and the dashboard) "
    "and raise alerts: a check that turns warning or critical opens an incident, which gets "
    "ONE alert, and one recovery notice when the check is ok again. Alerts go to "
    "MAILWARDEN_ALERT_EMAIL_TO (through MAILWARDEN_ALERT_SMTP_HOST:PORT) and to each of "
    "MAILWARDEN_ALERT_WEBHOOKS (a JSON POST); a channel that fails is reported and blocks no "
    "other. Incidents are kept in the database, so `--once` from cron behaves like the loop.\n\n"
    "Exit status (with --once): 0 the round ran, 1 a host could not be monitored, 3 a notice "
    "reached no channel (it is tried again next round)."
)
MONITOR_EPILOG = (
    "Examples:\n\n  mailwarden monitor --once\n\n"
    "  mailwarden monitor --interval 300\n\n"
    "  mailwarden monitor --host mx1 --host mx2 --once --json\n\n"
    "  cron: */5 * * * * mailwarden monitor --once"
)


def _hosts_page(ctx: typer.Context, after: str | None) -> Page[HostPublic]:
    return read(
        ctx, lambda uow, actor: hosts.list_hosts(uow, actor, limit=HOSTS_PER_PAGE, after=after)
    )


def _every_host(ctx: typer.Context) -> Iterator[str]:
    cursor: str | None = None
    while True:
        page = _hosts_page(ctx, cursor)
        yield from (host.name for host in page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _checked(ctx: typer.Context, name: str | None) -> HostHealth:
    return read(ctx, lambda uow, actor: service.run_checks(uow, actor, name))


def _monitored(
    ctx: typer.Context, name: str, dry_run: bool
) -> tuple[MonitorResult, list[PlannedChange]]:
    return mutate(ctx, dry_run, lambda uow, actor: service.monitor_host(uow, actor, name))


def _print_health(results: list[HostHealth]) -> None:
    for health in results:
        when = f"{health.checked_at:%Y-%m-%d %H:%M:%S} UTC" if health.checked_at else "-"
        print_table(
            ["CHECK", "STATUS", "DETAIL"],
            [
                [
                    item.name,
                    item.status.value.upper() if item.status.is_problem else item.status.value,
                    item.detail,
                ]
                for item in health.checks
            ],
            title=f"{health.host}: {health.status.value} (checked {when})",
        )


def health(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Check this host only (default: every host).")
    ] = None,
    json_output: Json = False,
) -> None:
    """Check mail hosts now (see HEALTH_HELP)."""
    if host is not None:
        results = [_checked(ctx, host)]
    else:
        names = list(_every_host(ctx))
        if not names:
            console.print("No hosts. Add one with `mailwarden host add NAME --local`.")
            raise typer.Exit(EXIT_REFUSED)
        results = [_checked(ctx, name) for name in names]
    if json_output:
        print_json(results[0] if host is not None else results)
    else:
        _print_health(results)
    if any(health.status is Status.CRITICAL for health in results):
        raise typer.Exit(1)


def _report(result: MonitorResult) -> None:
    health = result.health
    problems = [item for item in health.checks if item.status.is_problem]
    summary = ", ".join(f"{item.name} {item.status.value}" for item in problems) or "all ok"
    console.print(f"{health.host}: {health.status.value} ({summary})", markup=False)
    for incident in result.opened:
        console.print(
            f"  opened incident {incident.host}/{incident.check} ({incident.status.value}): "
            f"{incident.detail}",
            markup=False,
        )
    for incident in result.resolved:
        console.print(f"  closed incident {incident.host}/{incident.check}", markup=False)
    for delivery in result.deliveries:
        outcome = "sent" if delivery.delivered else f"NOT sent ({delivery.error})"
        console.print(
            f"  {delivery.kind} {delivery.host}/{delivery.check} via {delivery.channel}: {outcome}",
            markup=False,
        )


def _undelivered(result: MonitorResult) -> bool:
    """Whether a notice of this round reached no channel at all."""
    delivered: dict[tuple[str, str], bool] = {}
    for delivery in result.deliveries:
        key = (delivery.kind, delivery.check)
        delivered[key] = delivered.get(key, False) or delivery.delivered
    return not all(delivered.values())


def _round(ctx: typer.Context, names: list[str], dry_run: bool, json_output: bool) -> int:
    """One monitoring round over the hosts; the exit status it earns."""
    status = 0
    for name in names or _every_host(ctx):
        try:
            result, plan = _monitored(ctx, name, dry_run)
        except typer.Exit:
            # Refused for this host (printed already); the other hosts are still monitored.
            status = EXIT_REFUSED
            continue
        if _undelivered(result) and status == 0:
            status = EXIT_FOLLOW_UP_FAILED
        if json_output:
            body = {"dry_run": dry_run, "plan": [change.as_dict() for change in plan]}
            sys.stdout.write(
                json.dumps({**result.model_dump(mode="json"), **body}, ensure_ascii=False) + "\n"
            )
            sys.stdout.flush()
            continue
        _report(result)
        if dry_run:
            print_plan(plan, dry_run=True, as_json=False)
    return status


def monitor(
    ctx: typer.Context,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Monitor this host; repeat for several (default: all)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit (for cron).")] = False,
    interval: Annotated[
        int,
        typer.Option("--interval", min=10, max=86_400, help="Seconds between rounds (loop)."),
    ] = 60,
    dry_run: DryRun = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per host and round, one per line.")
    ] = False,
) -> None:
    """Check hosts, store the results, raise alerts (see MONITOR_HELP)."""
    names = list(host or [])
    if once or dry_run:
        raise typer.Exit(_round(ctx, names, dry_run, json_output))
    try:
        while True:
            started = time.monotonic()
            with contextlib.suppress(typer.Exit):
                # A round that could not run (the database away) was reported; keep watching.
                _round(ctx, names, dry_run, json_output)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


INCIDENTS_HELP = (
    "List the monitor's incidents, newest first: a check of a host that went warning or "
    "critical, when it started, when it was last seen failing and when it was ok again. "
    "Open incidents are still failing. `mailwarden monitor` opens and closes them.\n\n"
    "Exit status: 0 listed (also when there are none), 1 refused (an unknown host, a bad "
    "cursor, not permitted)."
)
INCIDENTS_EPILOG = (
    "Examples:\n\n  mailwarden incidents --open\n\n"
    "  mailwarden incidents --host mx1 --limit 20\n\n"
    "  mailwarden incidents --all --json"
)


def incidents(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Incidents of this host only (default: all).")
    ] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only incidents still failing.")
    ] = False,
    resolved_only: Annotated[
        bool, typer.Option("--resolved", help="Only incidents that are over.")
    ] = False,
    limit: Limit = 50,
    after: Annotated[
        str | None,
        typer.Option("--after", help="Continue after this cursor (printed below a full page)."),
    ] = None,
    every_page: All = False,
    json_output: Json = False,
) -> None:
    if open_only and resolved_only:
        fail("--open and --resolved exclude each other: give one, or neither for both")
    state = "open" if open_only else "resolved" if resolved_only else "all"
    emit(
        lambda cursor: read(
            ctx,
            lambda uow, actor: service.list_incidents(
                uow, actor, host=host, state=state, limit=limit, after=cursor
            ),
        ),
        after=after,
        every_page=every_page,
        as_json=json_output,
        columns=["HOST", "CHECK", "STATUS", "OPENED", "LAST SEEN", "RESOLVED", "DETAIL"],
        row=lambda item: [
            item.host,
            item.check,
            item.status.value,
            when(item.opened_at),
            when(item.last_seen_at),
            when(item.resolved_at) if item.resolved_at else "open",
            item.detail,
        ],
        empty="No incidents.",
    )
