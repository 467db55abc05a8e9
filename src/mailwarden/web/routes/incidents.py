"""The monitor's incidents in the console (superadmins: the service refuses everyone else).

Newest first, filtered by host and state in the URL (bookmarkable); a filter the service
refuses (an unknown host, a bad cursor) is shown on the page with an empty list.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.health import service
from mailwarden.health.schemas import IncidentPublic
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page

from ..changes import GENERAL, errors_of
from ..rendering import render
from ..sessions import AdminViewer
from .dashboard import STATUS_BADGE

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
STATES: Final = (("all", "All"), ("open", "Open"), ("resolved", "Resolved"))


@router.get("/incidents")
def list_incidents(
    request: Request,
    viewer: AdminViewer,
    host: Annotated[str, Query(max_length=63)] = "",
    state: Literal["all", "open", "resolved"] = "all",
    after: Annotated[str, Query(max_length=18)] = "",
) -> Response:
    errors: dict[str, list[str]] = {}
    page: Page[IncidentPublic] = Page([], None)
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            page = service.list_incidents(
                uow,
                viewer.actor,
                host=host or None,
                state=state,
                limit=PAGE_SIZE,
                after=after or None,
            )
    except ValidationError as exc:
        errors = errors_of(exc)
    except NotFound as exc:
        errors = {GENERAL: [str(exc)]}
    filters = {key: value for key, value in (("host", host), ("state", state)) if value}
    context = {
        "title": "Incidents",
        "page": page,
        "host": host,
        "state": state,
        "states": STATES,
        "filters": filters,
        "after": after,
        "badges": STATUS_BADGE,
        "errors": errors,
    }
    return render(
        request, "incidents/list.html", context, viewer=viewer, status_code=422 if errors else 200
    )
