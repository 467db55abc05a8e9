"""The console's start page: what the admin's domains hold, their quota use, recent changes.

Everything here is counted or read within the actor's scope: a domain admin sees the figures
of its own domains only. Each part is bounded (a few COUNTs, one page of domains, ten entries).
Superadmins also see the mail hosts' health as the monitor stored it (no host is reached).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.audit import service as audit
from mailwarden.db.types import utcnow
from mailwarden.health import service as health
from mailwarden.inventory import service as inventory
from mailwarden.kernel.permissions import Permission, has_permission

from ..rendering import render
from ..sessions import AdminViewer

router = APIRouter(include_in_schema=False)

QUOTA_DOMAINS = 10
RECENT_CHANGES = 10
MAIL_HOSTS = 10
# The dashboard's badge style per health status.
STATUS_BADGE = {
    "ok": "badge-approved",
    "warning": "badge-pending",
    "critical": "badge-rejected",
    "unknown": "badge-off",
}


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never checked"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


@router.get("/")
def dashboard(request: Request, viewer: AdminViewer) -> Response:
    actor = viewer.actor
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        counts = inventory.scoped_counts(uow, actor)
        quota_use = inventory.domain_quota_use(uow, actor, limit=QUOTA_DOMAINS)
        changes = audit.list_entries(uow, actor, limit=RECENT_CHANGES)
        mail_hosts = (
            health.stored(uow, actor, limit=MAIL_HOSTS)
            if has_permission(actor, Permission.HEALTH_READ)
            else None
        )
    now = utcnow()
    context = {
        "title": "Dashboard",
        "counts": counts,
        "quota_use": quota_use,
        "quota_domains": QUOTA_DOMAINS,
        "changes": changes.items,
        "more_changes": changes.next_cursor is not None,
        "mail_hosts": None
        if mail_hosts is None
        else [
            {
                "name": host.host,
                "status": host.status.value,
                "badge": STATUS_BADGE[host.status.value],
                "problems": [item for item in host.checks if item.status.is_problem],
                "checked_at": host.checked_at,
                "age": _age(host.checked_at, now),
            }
            for host in mail_hosts.items
        ],
        "more_mail_hosts": mail_hosts is not None and mail_hosts.next_cursor is not None,
    }
    return render(request, "dashboard.html", context, viewer=viewer)
