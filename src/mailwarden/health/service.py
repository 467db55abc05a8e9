"""Health of the mail hosts: run the checks live, keep their latest results, and the monitor's
incidents with one alert each and a recovery notice. Superadmins only: a host carries every
domain's mail.

- `run_checks` reaches the host and its listeners now and returns what it found; it stores
  nothing (`mailwarden health`, GET /api/v1/hosts/{host}/health).
- `stored` reads the latest stored results of the hosts, by name, and reaches no host: it is
  what /metrics, the dashboard and GET /api/v1/health show, with each result's time.
- `list_incidents` pages through the monitor's incidents, newest first (all hosts or one;
  open, resolved or both): what GET /api/v1/health/incidents, `mailwarden incidents` and the
  console's Incidents page show.
- `monitor_host` runs the checks of one host, stores the results, opens an incident when a
  check turns warning or critical and closes it when the check is ok again. Each incident
  gets one alert and, once closed, one recovery notice, through every configured channel.
  A notice is marked sent as soon as one channel delivered it; when none did, the next run
  tries again. Notices go out before the face commits, so a failed commit can repeat an
  alert but never lose one. A dry run sends nothing and stores nothing.
  A result of `unknown` (the check could not tell) neither opens nor closes an incident; a
  warning that turns critical stays the same incident (its status follows, no second alert).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from sqlalchemy import select

from mailwarden.db.types import utcnow
from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.hosts.validation import check_host_name
from mailwarden.inventory import service as inventory
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.stack.hosts import HostError, open_runner

from . import checks
from .alerts import Channel, DeliveryFailed, Notice, channels_from
from .models import HealthIncident, HealthResult
from .schemas import CheckResult, Delivery, HostHealth, IncidentPublic, MonitorResult, Status

# Pending notices sent per host and run: a backlog is worked off over the next runs.
_NOTICES_PER_RUN = 50


def overall(results: Iterable[CheckResult]) -> Status:
    """The worst status among the checks; unknown ones are left aside (TLS not offered is
    no failure), and a host with nothing known is unknown."""
    statuses = {item.status for item in results}
    for status in (Status.CRITICAL, Status.WARNING, Status.OK):
        if status in statuses:
            return status
    return Status.UNKNOWN


def _host_row(uow: UnitOfWork, name: str) -> Host:
    host = uow.session.scalar(select(Host).where(Host.name == check_host_name(name, "host")))
    if host is None:
        raise NotFound("host", name)
    return host


def _checks_of(uow: UnitOfWork, host: Host) -> HostHealth:
    spec = hosts.to_spec(host)
    thresholds = checks.Thresholds.from_settings(uow.settings)
    now = utcnow()
    results: list[CheckResult] = []
    try:
        with open_runner(spec) as runner:
            how = "over SSH" if host.transport == "ssh" else "on this machine"
            results.append(checks.result(checks.CONNECTION, Status.OK, f"reached {how}", now))
            results.append(checks.postfix_running(runner, spec, now))
            results.append(checks.dovecot_running(runner, spec, now))
            results += checks.queue(runner, spec, thresholds, now)
            results.append(checks.disk(runner, spec, thresholds, now))
    except HostError as exc:
        results = [checks.result(checks.CONNECTION, Status.CRITICAL, exc.detail, now)]
        results += [
            checks.result(name, Status.UNKNOWN, "not checked: the host could not be reached", now)
            for name in checks.ON_HOST
        ]
    address, timeout = host.probe_address, thresholds.probe_timeout
    results.append(checks.smtp_banner(address, host.smtp_port, timeout, now))
    results.append(checks.imap_banner(address, host.imap_port, timeout, now))
    results.append(
        checks.certificate_check(
            checks.SMTP_TLS, checks.smtp_certificate, address, host.smtp_port, thresholds, now
        )
    )
    results.append(
        checks.certificate_check(
            checks.IMAP_TLS, checks.imap_certificate, address, host.imap_port, thresholds, now
        )
    )
    results.append(checks.database(inventory.database_reachable(uow), now))
    return HostHealth(host=host.name, status=overall(results), checked_at=now, checks=results)


def run_checks(uow: UnitOfWork, actor: Actor, host: str | None) -> HostHealth:
    """Check a host now (None: the only registered host). Nothing is stored."""
    spec = hosts.spec_for(uow, actor, host, Permission.HEALTH_READ)
    return _checks_of(uow, _host_row(uow, spec.name))


def stored(
    uow: UnitOfWork, actor: Actor, *, limit: int = 50, after: str | None = None
) -> Page[HostHealth]:
    """The latest stored results of the hosts by name (`after`: the last name of the previous
    page); a host the monitor has not checked yet has none."""
    require(actor, Permission.HEALTH_READ)
    check_limit(limit)
    stmt = select(Host)
    if after:
        stmt = stmt.where(Host.name > check_host_name(after, "cursor"))
    rows = list(uow.session.scalars(stmt.order_by(Host.name).limit(limit + 1)))
    shown = rows[:limit]
    by_host: dict[int, list[CheckResult]] = {row.id: [] for row in shown}
    if shown:
        results = uow.session.scalars(
            select(HealthResult)
            .where(HealthResult.host_id.in_(list(by_host)))
            .order_by(HealthResult.host_id, HealthResult.id)
        )
        for item in results:
            by_host[item.host_id].append(_result_public(item))
    page = [
        HostHealth(
            host=row.name,
            status=overall(by_host[row.id]),
            checked_at=min((item.checked_at for item in by_host[row.id]), default=None),
            checks=by_host[row.id],
        )
        for row in shown
    ]
    return Page(items=page, next_cursor=page[-1].host if len(rows) > limit else None)


IncidentState = Literal["all", "open", "resolved"]
INCIDENT_STATES: tuple[IncidentState, ...] = ("all", "open", "resolved")


def list_incidents(
    uow: UnitOfWork,
    actor: Actor,
    *,
    host: str | None = None,
    state: str = "all",
    limit: int = 50,
    after: str | None = None,
) -> Page[IncidentPublic]:
    """The monitor's incidents, newest first: of one host or of all, open (still failing),
    resolved or both. `after` is the `next_cursor` of the previous page."""
    require(actor, Permission.HEALTH_READ)
    check_limit(limit)
    if state not in INCIDENT_STATES:
        raise ValidationError(
            "state", "unknown_state", f"one of {', '.join(INCIDENT_STATES)}, not {state[:20]!r}"
        )
    stmt = select(HealthIncident, Host.name).join(Host, Host.id == HealthIncident.host_id)
    if host is not None:
        stmt = stmt.where(HealthIncident.host_id == _host_row(uow, host).id)
    if state == "open":
        stmt = stmt.where(HealthIncident.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(HealthIncident.resolved_at.is_not(None))
    if after is not None:
        if not after.isdigit() or len(after) > 18:
            raise ValidationError("cursor", "invalid_cursor", "not a cursor of this list")
        stmt = stmt.where(HealthIncident.id < int(after))
    rows = uow.session.execute(stmt.order_by(HealthIncident.id.desc()).limit(limit + 1)).all()
    shown = rows[:limit]
    return Page(
        items=[_incident_public(name, row) for row, name in shown],
        next_cursor=str(shown[-1][0].id) if len(rows) > limit else None,
    )


def _result_public(row: HealthResult) -> CheckResult:
    return CheckResult(
        name=row.check_name,
        status=Status(row.status),
        value=row.value,
        detail=row.detail,
        checked_at=row.checked_at,
    )


def _incident_public(host: str, row: HealthIncident) -> IncidentPublic:
    return IncidentPublic(
        host=host,
        check=row.check_name,
        status=Status(row.status),
        detail=row.detail,
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
    )


def _snapshot(row: HealthIncident) -> dict[str, object]:
    return {
        "status": row.status,
        "detail": row.detail,
        "opened_at": row.opened_at.isoformat(),
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
    }


def _store(uow: UnitOfWork, host: Host, results: Sequence[CheckResult]) -> None:
    existing = {
        row.check_name: row
        for row in uow.session.scalars(select(HealthResult).where(HealthResult.host_id == host.id))
    }
    for item in results:
        row = existing.get(item.name)
        if row is None:
            row = HealthResult(host_id=host.id, check_name=item.name)
            uow.session.add(row)
        row.status = item.status.value
        row.value = item.value
        row.detail = item.detail
        row.checked_at = item.checked_at


def monitor_host(
    uow: UnitOfWork,
    actor: Actor,
    host: str,
    *,
    channels: Sequence[Channel] | None = None,
) -> MonitorResult:
    """One monitoring round for `host`: check, store, open and close incidents, and send
    what is due (see the module docstring). `channels`: the configured ones by default."""
    require(actor, Permission.HEALTH_MONITOR)
    row = _host_row(uow, host)
    health = _checks_of(uow, row)
    now = health.checked_at or utcnow()
    _store(uow, row, health.checks)
    open_incidents = {
        incident.check_name: incident
        for incident in uow.session.scalars(
            select(HealthIncident).where(
                HealthIncident.host_id == row.id, HealthIncident.resolved_at.is_(None)
            )
        )
    }
    opened: list[IncidentPublic] = []
    resolved: list[IncidentPublic] = []
    for item in health.checks:
        incident = open_incidents.get(item.name)
        key = f"{row.name}/{item.name}"
        if item.status.is_problem:
            if incident is None:
                incident = HealthIncident(
                    host_id=row.id,
                    check_name=item.name,
                    status=item.status.value,
                    detail=item.detail,
                    opened_at=now,
                    last_seen_at=now,
                )
                uow.session.add(incident)
                uow.record(
                    actor,
                    ChangeKind.CREATE,
                    "health_incident",
                    key,
                    domain=None,
                    after=_snapshot(incident),
                    action="health.incident.open",
                )
                opened.append(_incident_public(row.name, incident))
            else:
                incident.status = item.status.value
                incident.detail = item.detail
                incident.last_seen_at = now
        elif item.status is Status.OK and incident is not None:
            before = _snapshot(incident)
            incident.resolved_at = now
            incident.last_seen_at = now
            uow.record(
                actor,
                ChangeKind.UPDATE,
                "health_incident",
                key,
                domain=None,
                before=before,
                after=_snapshot(incident),
                action="health.incident.resolve",
            )
            resolved.append(_incident_public(row.name, incident))
    uow.session.flush()
    deliveries: list[Delivery] = []
    if not uow.dry_run:
        deliveries = _notify(
            uow, row, channels if channels is not None else channels_from(uow.settings)
        )
    return MonitorResult(health=health, opened=opened, resolved=resolved, deliveries=deliveries)


def _notify(uow: UnitOfWork, host: Host, channels: Sequence[Channel]) -> list[Delivery]:
    """Send the alerts and recovery notices that are due for `host`, each through every
    channel; mark a notice sent once one channel delivered it."""
    if not channels:
        return []
    alerts = uow.session.scalars(
        select(HealthIncident)
        .where(
            HealthIncident.host_id == host.id,
            HealthIncident.resolved_at.is_(None),
            HealthIncident.alert_sent_at.is_(None),
        )
        .order_by(HealthIncident.id)
        .limit(_NOTICES_PER_RUN)
    ).all()
    # A recovery notice only follows an alert that went out.
    recoveries = uow.session.scalars(
        select(HealthIncident)
        .where(
            HealthIncident.host_id == host.id,
            HealthIncident.resolved_at.is_not(None),
            HealthIncident.alert_sent_at.is_not(None),
            HealthIncident.recovery_sent_at.is_(None),
        )
        .order_by(HealthIncident.id)
        .limit(_NOTICES_PER_RUN)
    ).all()
    deliveries: list[Delivery] = []
    for incident in [*alerts, *recoveries]:
        kind: Literal["alert", "recovery"] = "alert" if incident.resolved_at is None else "recovery"
        notice = Notice(
            kind=kind,
            host=host.name,
            check=incident.check_name,
            status=Status.OK.value if kind == "recovery" else incident.status,
            detail=incident.detail,
            opened_at=incident.opened_at,
            resolved_at=incident.resolved_at,
        )
        delivered = False
        for channel in channels:
            try:
                channel.send(notice)
            except DeliveryFailed as exc:
                deliveries.append(
                    Delivery(
                        kind=kind,
                        host=host.name,
                        check=incident.check_name,
                        channel=channel.name,
                        delivered=False,
                        error=str(exc),
                    )
                )
                continue
            delivered = True
            deliveries.append(
                Delivery(
                    kind=kind,
                    host=host.name,
                    check=incident.check_name,
                    channel=channel.name,
                    delivered=True,
                )
            )
        if delivered:
            if kind == "alert":
                incident.alert_sent_at = utcnow()
            else:
                incident.recovery_sent_at = utcnow()
    uow.session.flush()
    return deliveries
