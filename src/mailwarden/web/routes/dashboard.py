"""The console's start page: what the admin's domains hold, their quota use, recent changes.

Everything here is counted or read within the actor's scope: a domain admin sees the figures
of its own domains only. Each part is bounded (a few COUNTs, one page of domains, ten entries).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.audit import service as audit
from mailwarden.inventory import service as inventory

from ..rendering import render
from ..sessions import AdminViewer

router = APIRouter(include_in_schema=False)

QUOTA_DOMAINS = 10
RECENT_CHANGES = 10


@router.get("/")
def dashboard(request: Request, viewer: AdminViewer) -> Response:
    actor = viewer.actor
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        counts = inventory.scoped_counts(uow, actor)
        quota_use = inventory.domain_quota_use(uow, actor, limit=QUOTA_DOMAINS)
        changes = audit.list_entries(uow, actor, limit=RECENT_CHANGES)
    context = {
        "title": "Dashboard",
        "counts": counts,
        "quota_use": quota_use,
        "quota_domains": QUOTA_DOMAINS,
        "changes": changes.items,
        "more_changes": changes.next_cursor is not None,
    }
    return render(request, "dashboard.html", context, viewer=viewer)
