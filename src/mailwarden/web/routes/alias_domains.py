"""Alias domains in the console: list, create, remove (superadmins change them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.alias_domains import service
from mailwarden.alias_domains.schemas import AliasDomainCreate, AliasDomainPublic
from mailwarden.api.context import runtime_of
from mailwarden.kernel.errors import PermissionDenied
from mailwarden.kernel.schemas import parse

from ..changes import form_state, perform, wants_preview
from ..rendering import render
from ..sessions import AdminViewer, Viewer
from .domains import list_page

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Path(max_length=253)]
DomainField = Annotated[str, Form(max_length=253)]
Intent = Annotated[str, Form(max_length=16)]
_DENIED = (PermissionDenied,)


@router.get("/alias-domains")
def list_alias_domains(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=253)] = "",
    target: Annotated[str, Query(max_length=253)] = "",
    after: Annotated[str, Query(max_length=253)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    return list_page(
        request,
        viewer,
        "alias_domains",
        {"q": q, "target": target},
        lambda uow: service.list_alias_domains(
            uow,
            viewer.actor,
            target_domain=target or None,
            search=q or None,
            limit=limit,
            after=after or None,
        ),
        title="Alias domains",
    )


def _form(
    request: Request, viewer: Viewer, context: dict[str, Any], status_code: int = 200
) -> Response:
    base = {"title": "New alias domain", **form_state(None)}
    return render(
        request, "alias_domains/form.html", base | context, viewer=viewer, status_code=status_code
    )


@router.get("/alias-domains/new")
def new_alias_domain(
    request: Request,
    viewer: AdminViewer,
    target: Annotated[str, Query(max_length=253)] = "",
) -> Response:
    return _form(request, viewer, {"values": {"alias_domain": "", "target_domain": target}})


@router.post("/alias-domains/new")
def create_alias_domain(
    request: Request,
    viewer: AdminViewer,
    intent: Intent = "",
    alias_domain: DomainField = "",
    target_domain: DomainField = "",
) -> Response:
    values = {"alias_domain": alias_domain, "target_domain": target_domain}
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.create(uow, actor, parse(AliasDomainCreate, values)),
        preview=wants_preview({"intent": intent}),
        propagate=_DENIED,
    )
    if outcome.errors or outcome.previewed or outcome.result is None:
        context = {
            "values": values,
            **form_state(outcome),
        }
        return _form(request, viewer, context, 422 if outcome.errors else 200)
    return RedirectResponse(
        f"/alias-domains?q={outcome.result.alias_domain}&notice=created", status_code=303
    )


def _get(request: Request, viewer: Viewer, name: str) -> AliasDomainPublic:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.get(uow, viewer.actor, name)


def _delete_page(
    request: Request,
    viewer: Viewer,
    alias_domain: AliasDomainPublic,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    base = {
        "title": f"Remove {alias_domain.alias_domain}",
        "alias_domain": alias_domain,
        "errors": {},
        "plan": [],
        "previewed": False,
    }
    return render(
        request,
        "alias_domains/delete.html",
        base | context,
        viewer=viewer,
        status_code=status_code,
    )


@router.get("/alias-domains/{name}/delete")
def delete_alias_domain_form(request: Request, viewer: AdminViewer, name: Name) -> Response:
    return _delete_page(request, viewer, _get(request, viewer, name), {})


@router.post("/alias-domains/{name}/delete")
def delete_alias_domain(
    request: Request, viewer: AdminViewer, name: Name, intent: Intent = ""
) -> Response:
    alias_domain = _get(request, viewer, name)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, alias_domain.alias_domain),
        preview=wants_preview({"intent": intent}),
        propagate=_DENIED,
    )
    if outcome.errors or outcome.previewed:
        context = form_state(outcome)
        return _delete_page(request, viewer, alias_domain, context, 422 if outcome.errors else 200)
    return RedirectResponse("/alias-domains?notice=deleted", status_code=303)
