"""Domains in the console: list, detail with usage, create, edit, remove (each previewed first)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import runtime_of
from mailwarden.domains import service
from mailwarden.domains.schemas import DomainCreate, DomainPublic, DomainUpdate, DomainUsage
from mailwarden.kernel.errors import FieldIssue, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.sizes import parse_size
from mailwarden.kernel.unit_of_work import UnitOfWork

from ..changes import GENERAL, errors_of, form_state, perform, wants_preview
from ..rendering import is_htmx, render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Path(max_length=253)]
Text = Annotated[str, Form(max_length=255)]
Number = Annotated[str, Form(max_length=32)]
Switch = Annotated[str, Form(max_length=8)]
Intent = Annotated[str, Form(max_length=16)]
# Edit forms list the checkboxes they show: an unticked box sends nothing, so its absence
# means "off" only when the form had it.
Shown = Annotated[list[str], Form(max_length=16)]

SORT_LABELS = {
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "created_at": "Oldest first",
    "-created_at": "Newest first",
}
# Service field -> form field, where the form speaks in human sizes.
FORM_NAMES = {"default_mailbox_quota_bytes": "mailbox_quota", "quota_bytes": "quota"}
COUNT_FIELDS = ("max_mailboxes", "max_aliases", "registration_pending_limit")
SIZE_FIELDS = {"mailbox_quota": "default_mailbox_quota_bytes", "quota": "quota_bytes"}
SWITCH_FIELDS = ("active", "backup_mx", "registration_open")
_UNITS = (("P", 1024**5), ("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024))
_DENIED = (PermissionDenied,)


def size_text(size: int) -> str:
    """A size as the form shows it: exact, so that saving unchanged changes nothing."""
    for unit, factor in _UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def is_on(value: str | None) -> bool:
    return value in ("on", "true", "1")


def _count(value: str, field: str, issues: list[FieldIssue]) -> int:
    text = value or "0"
    if not text.isascii() or not text.isdigit():
        issues.append(FieldIssue(field, "invalid_number", "expected a whole number (0 or more)"))
        return 0
    return int(text)


def _size(value: str, field: str, issues: list[FieldIssue]) -> int:
    try:
        return parse_size(value or "0", field)
    except ValidationError as exc:
        issues.extend(exc.issues)
        return 0


def _numbers(values: Mapping[str, str | None]) -> dict[str, int]:
    """The count and size fields that were sent, in service units; every bad one reported."""
    issues: list[FieldIssue] = []
    numbers = {
        field: _count(text, field, issues)
        for field in COUNT_FIELDS
        if (text := values.get(field)) is not None
    }
    for form_field, service_field in SIZE_FIELDS.items():
        if (text := values.get(form_field)) is not None:
            numbers[service_field] = _size(text, form_field, issues)
    if issues:
        raise ValidationError.many(issues)
    return numbers


def _create_data(values: Mapping[str, str]) -> DomainCreate:
    fields: dict[str, Any] = {
        "name": values["name"],
        "description": values["description"],
        "transport": values["transport"],
        **{switch: is_on(values[switch]) for switch in SWITCH_FIELDS},
        **_numbers(values),
    }
    return parse(DomainCreate, fields)


def _update_data(values: Mapping[str, str | None]) -> DomainUpdate:
    """The form's fields as the service's input; the service tells unchanged values (which a
    domain admin may send) from changed ones (which may need a superadmin)."""
    wanted: dict[str, Any] = _numbers(values)
    for field in ("description", "transport"):
        if (text := values.get(field)) is not None:
            wanted[field] = text
    for switch in SWITCH_FIELDS:
        if values.get(switch) is not None:
            wanted[switch] = is_on(values[switch])
    return parse(DomainUpdate, wanted)


def _usage(request: Request, viewer: Viewer, name: str) -> DomainUsage:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.show(uow, viewer.actor, name)


def _active_filter(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@router.get("/domains")
def list_domains(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=253)] = "",
    active: Literal["", "yes", "no"] = "",
    sort: Annotated[str, Query(max_length=32)] = "",
    after: Annotated[str, Query(max_length=2048)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    filters = {"q": q, "active": active, "sort": sort}
    return list_page(
        request,
        viewer,
        "domains",
        filters,
        lambda uow: service.list_domains(
            uow,
            viewer.actor,
            limit=limit,
            after=after or None,
            search=q or None,
            active=_active_filter(active),
            sort=sort or None,
        ),
        title="Domains",
        extra={"sort_labels": SORT_LABELS},
    )


def list_page(
    request: Request,
    viewer: Viewer,
    area: str,
    filters: dict[str, str],
    read: Callable[[UnitOfWork], Any],
    *,
    title: str,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A list page of `area`, or only its results when the search box asks (HTMX).

    A filter the service refuses (a bad cursor, a domain the viewer cannot see) is shown above
    the empty results rather than as an error page, so typing on never loses the form.
    """
    errors: dict[str, list[str]] = {}
    page = None
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            page = read(uow)
    except (ValidationError, NotFound) as exc:
        errors = errors_of(exc, {"search": "q", "cursor": GENERAL})
    context = {
        "title": title,
        "filters": filters,
        "items": page.items if page else [],
        "next_cursor": page.next_cursor if page else None,
        "after": request.query_params.get("after", ""),
        "errors": errors,
        **(extra or {}),
    }
    fragment = is_htmx(request) and request.headers.get("hx-target") == "results"
    template = f"{area}/_results.html" if fragment else f"{area}/list.html"
    # A search-as-you-type answer keeps status 200 so that HTMX shows the message in place.
    status = 422 if errors and not fragment else 200
    response = render(request, template, context, viewer=viewer, status_code=status)
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


# --- create ------------------------------------------------------------------------------------

_NEW_DEFAULTS = {
    "name": "",
    "description": "",
    "transport": "",
    "max_mailboxes": "0",
    "max_aliases": "0",
    "mailbox_quota": "0",
    "quota": "0",
    "registration_pending_limit": "20",
    "active": "on",
    "backup_mx": "",
    "registration_open": "",
}


def _form(
    request: Request,
    viewer: Viewer,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    base = form_state(None)
    return render(
        request, "domains/form.html", base | context, viewer=viewer, status_code=status_code
    )


@router.get("/domains/new")
def new_domain(request: Request, viewer: AdminViewer) -> Response:
    return _form(request, viewer, {"title": "New domain", "values": _NEW_DEFAULTS, "domain": None})


@router.post("/domains/new")
def create_domain(
    request: Request,
    viewer: AdminViewer,
    intent: Intent = "",
    name: Text = "",
    description: Text = "",
    transport: Text = "",
    max_mailboxes: Number = "",
    max_aliases: Number = "",
    mailbox_quota: Number = "",
    quota: Number = "",
    registration_pending_limit: Number = "",
    active: Switch = "",
    backup_mx: Switch = "",
    registration_open: Switch = "",
) -> Response:
    values = {
        "name": name,
        "description": description,
        "transport": transport,
        "max_mailboxes": max_mailboxes,
        "max_aliases": max_aliases,
        "mailbox_quota": mailbox_quota,
        "quota": quota,
        "registration_pending_limit": registration_pending_limit or "20",
        "active": active,
        "backup_mx": backup_mx,
        "registration_open": registration_open,
    }
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.create(uow, actor, _create_data(values)),
        preview=wants_preview({"intent": intent}),
        field_names=FORM_NAMES,
        propagate=_DENIED,
    )
    if outcome.errors or outcome.previewed or outcome.result is None:
        context = {
            "title": "New domain",
            "values": values,
            "domain": None,
            **form_state(outcome),
        }
        return _form(request, viewer, context, 422 if outcome.errors else 200)
    return RedirectResponse(f"/domains/{outcome.result.name}?notice=created", status_code=303)


# --- detail and edit ---------------------------------------------------------------------------


@router.get("/domains/{name}")
def show_domain(request: Request, viewer: AdminViewer, name: Name) -> Response:
    usage = _usage(request, viewer, name)
    context = {"title": usage.domain.name_unicode, "usage": usage, "domain": usage.domain}
    return render(request, "domains/detail.html", context, viewer=viewer)


def _edit_values(domain: DomainPublic) -> dict[str, str]:
    return {
        "description": domain.description,
        "transport": domain.transport,
        "max_mailboxes": str(domain.max_mailboxes),
        "max_aliases": str(domain.max_aliases),
        "mailbox_quota": size_text(domain.default_mailbox_quota_bytes),
        "quota": size_text(domain.quota_bytes),
        "registration_pending_limit": str(domain.registration_pending_limit),
        **{switch: "on" if getattr(domain, switch) else "" for switch in SWITCH_FIELDS},
    }


@router.get("/domains/{name}/edit")
def edit_domain_form(request: Request, viewer: AdminViewer, name: Name) -> Response:
    domain = _usage(request, viewer, name).domain
    context = {
        "title": f"Edit {domain.name_unicode}",
        "values": _edit_values(domain),
        "domain": domain,
    }
    return _form(request, viewer, context)


@router.post("/domains/{name}/edit")
def edit_domain(
    request: Request,
    viewer: AdminViewer,
    name: Name,
    intent: Intent = "",
    shown: Shown = [],  # noqa: B006 - FastAPI copies the default per request
    description: Annotated[str | None, Form(max_length=255)] = None,
    transport: Annotated[str | None, Form(max_length=255)] = None,
    max_mailboxes: Annotated[str | None, Form(max_length=32)] = None,
    max_aliases: Annotated[str | None, Form(max_length=32)] = None,
    mailbox_quota: Annotated[str | None, Form(max_length=32)] = None,
    quota: Annotated[str | None, Form(max_length=32)] = None,
    registration_pending_limit: Annotated[str | None, Form(max_length=32)] = None,
    active: Switch = "",
    backup_mx: Switch = "",
    registration_open: Switch = "",
) -> Response:
    domain = _usage(request, viewer, name).domain
    switches = {"active": active, "backup_mx": backup_mx, "registration_open": registration_open}
    submitted: dict[str, str | None] = {
        "description": description,
        "transport": transport,
        "max_mailboxes": max_mailboxes,
        "max_aliases": max_aliases,
        "mailbox_quota": mailbox_quota,
        "quota": quota,
        "registration_pending_limit": registration_pending_limit,
        **{switch: value for switch, value in switches.items() if switch in shown},
    }
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.update(uow, actor, domain.name, _update_data(submitted)),
        preview=wants_preview({"intent": intent}),
        field_names=FORM_NAMES,
        propagate=_DENIED,
    )
    if outcome.errors or outcome.previewed:
        shown_values = _edit_values(domain) | {k: v for k, v in submitted.items() if v is not None}
        for switch in shown:
            shown_values[switch] = switches.get(switch, "")
        context = {
            "title": f"Edit {domain.name_unicode}",
            "values": shown_values,
            "domain": domain,
            **form_state(outcome),
        }
        return _form(request, viewer, context, 422 if outcome.errors else 200)
    return RedirectResponse(f"/domains/{domain.name}?notice=updated", status_code=303)


# --- remove ------------------------------------------------------------------------------------


def _delete_page(
    request: Request, viewer: Viewer, usage: DomainUsage, context: dict[str, Any], status: int = 200
) -> Response:
    base = {
        "title": f"Remove {usage.domain.name_unicode}",
        "usage": usage,
        "domain": usage.domain,
        "cascade": False,
        "errors": {},
        "plan": [],
        "previewed": False,
    }
    return render(request, "domains/delete.html", base | context, viewer=viewer, status_code=status)


@router.get("/domains/{name}/delete")
def delete_domain_form(request: Request, viewer: AdminViewer, name: Name) -> Response:
    return _delete_page(request, viewer, _usage(request, viewer, name), {})


@router.post("/domains/{name}/delete")
def delete_domain(
    request: Request,
    viewer: AdminViewer,
    name: Name,
    intent: Intent = "",
    cascade: Switch = "",
) -> Response:
    usage = _usage(request, viewer, name)
    with_cascade = is_on(cascade)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, usage.domain.name, cascade=with_cascade),
        preview=wants_preview({"intent": intent}),
        field_names={"domain": GENERAL},
        propagate=_DENIED,
    )
    if outcome.errors or outcome.previewed or outcome.result is None:
        context = {
            "cascade": with_cascade,
            "removal": outcome.result,
            **form_state(outcome),
        }
        return _delete_page(request, viewer, usage, context, 422 if outcome.errors else 200)
    notice = "deleted" if outcome.result.deleted else "removing"
    return RedirectResponse(f"/domains?notice={notice}", status_code=303)
