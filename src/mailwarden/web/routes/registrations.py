"""The moderation queue of registration requests: domain admins see their domains' requests,
approve one (the mailbox is created with the password its visitor chose) or reject it with a
reason. Both decisions go through a preview first."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import runtime_of
from mailwarden.kernel.errors import NotFound, ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationPublic, RegistrationStatus

from ..changes import Outcome, errors_of, perform, wants_preview
from ..rendering import is_htmx, render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
# The status filter's choices; "all" lists every status.
STATUS_CHOICES = [(status.value, status.value.capitalize()) for status in RegistrationStatus] + [
    ("all", "All")
]
Intent = Annotated[str, Form(max_length=16)]


def _next_link(domain: str, status: str, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    query = {"domain": domain, "status": status, "after": cursor}
    return "/registrations?" + urlencode({k: v for k, v in query.items() if v})


@router.get("/registrations")
def queue(
    request: Request,
    viewer: AdminViewer,
    domain: Annotated[str, Query(max_length=253)] = "",
    status: Annotated[str, Query(max_length=16)] = RegistrationStatus.PENDING.value,
    after: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    errors: dict[str, list[str]] = {}
    page: Page[RegistrationPublic] = Page([], None)
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        try:
            page = registrations.list_requests(
                uow,
                viewer.actor,
                domain=domain or None,
                status=None if status == "all" else status,
                limit=PER_PAGE,
                after=after or None,
            )
        except (ValidationError, NotFound) as exc:
            # An unknown (or foreign) domain or a bad filter: said at the filter, not as a page.
            errors = errors_of(exc, {"name": "domain", "__all__": "domain"})
    context: dict[str, Any] = {
        "title": "Registration requests",
        "page": page,
        "values": {"domain": domain, "status": status},
        "errors": errors,
        "status_choices": STATUS_CHOICES,
        "next_link": _next_link(domain, status, page.next_cursor),
        "first_link": _next_link(domain, status, "") if after else None,
    }
    if is_htmx(request):
        # htmx swaps only successful answers; the fragment carries the filter's error itself.
        return render(request, "registrations/_table.html", context, viewer=viewer)
    status_code = 422 if errors else 200
    return render(
        request, "registrations/list.html", context, viewer=viewer, status_code=status_code
    )


def _detail_page(
    request: Request,
    viewer: Viewer,
    request_id: int,
    *,
    outcome: Outcome[Any] | None = None,
    decision: str = "",
    reason: str = "",
) -> Response:
    """The request with its approve and reject forms; `decision` names the form that was sent
    (its plan or errors show beside it)."""
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        found = registrations.get(uow, viewer.actor, request_id)
    errors = outcome.errors if outcome else {}
    context: dict[str, Any] = {
        "title": f"Request for {found.address}",
        "registration": found,
        "decision": decision,
        "errors": errors,
        "plan": outcome.plan if outcome else [],
        "previewed": outcome.previewed if outcome else False,
        "values": {"reason": reason},
    }
    status_code = 422 if errors else 200
    return render(
        request, "registrations/detail.html", context, viewer=viewer, status_code=status_code
    )


@router.get("/registrations/{request_id}")
def detail(request: Request, viewer: AdminViewer, request_id: int) -> Response:
    return _detail_page(request, viewer, request_id)


@router.post("/registrations/{request_id}/approve")
def approve(
    request: Request, viewer: AdminViewer, request_id: int, intent: Intent = ""
) -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: registrations.approve(uow, actor, request_id),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.ok and not outcome.previewed:
        return RedirectResponse("/registrations?notice=approved", status_code=303)
    return _detail_page(request, viewer, request_id, outcome=outcome, decision="approve")


@router.post("/registrations/{request_id}/reject")
def reject(
    request: Request,
    viewer: AdminViewer,
    request_id: int,
    intent: Intent = "",
    reason: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: registrations.reject(uow, actor, request_id, reason),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.ok and not outcome.previewed:
        return RedirectResponse("/registrations?notice=rejected", status_code=303)
    return _detail_page(
        request, viewer, request_id, outcome=outcome, decision="reject", reason=reason
    )
