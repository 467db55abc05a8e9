"""Aliases in the console: list with search-as-you-type, create, edit targets, remove."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.aliases import service
from mailwarden.aliases.schemas import AliasCreate, AliasPublic, AliasUpdate
from mailwarden.api.context import runtime_of
from mailwarden.kernel.schemas import parse

from ..changes import Outcome, form_state, perform, wants_preview
from ..rendering import render
from ..sessions import AdminViewer, Viewer
from .domains import is_on, list_page

router = APIRouter(include_in_schema=False)

Address = Annotated[str, Path(max_length=254)]
Intent = Annotated[str, Form(max_length=16)]
Switch = Annotated[str, Form(max_length=8)]
# Room for the largest target list the settings allow, one address per line.
Targets = Annotated[str, Form(max_length=64 * 1024)]

# Targets are typed one per line or separated by commas.
_SEPARATORS = re.compile(r"\s*[,\r\n]+\s*")
# The service names a bad target by its position ("targets[2]"); the form has one box for all.
_INDEXED = re.compile(r"^(?P<field>[a-z_]+)\[\d+\]$")


def alias_path(address: str) -> str:
    return f"/aliases/{quote(address, safe='@')}"


def split_targets(text: str) -> list[str]:
    return [target for target in _SEPARATORS.split(text.strip()) if target]


def _in_place(outcome: Outcome[Any], boxes: dict[str, str]) -> dict[str, list[str]]:
    """Errors per form box: indexed fields merged, service field names mapped to the form's."""
    errors: dict[str, list[str]] = {}
    for name, messages in outcome.errors.items():
        match = _INDEXED.match(name)
        field = match["field"] if match else name
        errors.setdefault(boxes.get(field, field), []).extend(messages)
    return errors


def _get(request: Request, viewer: Viewer, address: str) -> AliasPublic:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.get(uow, viewer.actor, address)


@router.get("/aliases")
def list_aliases(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=254)] = "",
    domain: Annotated[str, Query(max_length=253)] = "",
    after: Annotated[str, Query(max_length=254)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    return list_page(
        request,
        viewer,
        "aliases",
        {"q": q, "domain": domain},
        lambda uow: service.list_aliases(
            uow,
            viewer.actor,
            domain=domain or None,
            search=q or None,
            limit=limit,
            after=after or None,
        ),
        title="Aliases",
    )


# --- create ------------------------------------------------------------------------------------


def _form(
    request: Request, viewer: Viewer, context: dict[str, Any], status_code: int = 200
) -> Response:
    base = {"title": "New alias", **form_state(None)}
    return render(
        request, "aliases/form.html", base | context, viewer=viewer, status_code=status_code
    )


@router.get("/aliases/new")
def new_alias(
    request: Request,
    viewer: AdminViewer,
    domain: Annotated[str, Query(max_length=253)] = "",
) -> Response:
    # Only a hint: a prefilled "@domain" would make a catch-all of an address left unfinished.
    values = {"address": "", "targets": "", "active": "on"}
    return _form(request, viewer, {"values": values, "domain_hint": domain})


@router.post("/aliases/new")
def create_alias(
    request: Request,
    viewer: AdminViewer,
    intent: Intent = "",
    address: Annotated[str, Form(max_length=254)] = "",
    targets: Targets = "",
    active: Switch = "",
) -> Response:
    values = {"address": address, "targets": targets, "active": active}
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.create(
            uow,
            actor,
            parse(
                AliasCreate,
                {"address": address, "targets": split_targets(targets), "active": is_on(active)},
            ),
        ),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.errors or outcome.previewed or outcome.result is None:
        context = {
            "values": values,
            "errors": _in_place(outcome, {}),
            "plan": outcome.plan,
            "previewed": outcome.previewed,
        }
        return _form(request, viewer, context, 422 if outcome.errors else 200)
    return RedirectResponse(f"{alias_path(outcome.result.address)}?notice=created", status_code=303)


# --- edit --------------------------------------------------------------------------------------


def _edit_page(
    request: Request,
    viewer: Viewer,
    alias: AliasPublic,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    base = {
        "title": f"Alias {alias.address}",
        "alias": alias,
        "values": {"add_targets": "", "active": "on" if alias.active else ""},
        "removing": [],
        "errors": {},
        "plan": [],
        "previewed": False,
    }
    return render(
        request, "aliases/edit.html", base | context, viewer=viewer, status_code=status_code
    )


@router.get("/aliases/{address}")
def edit_alias_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    return _edit_page(request, viewer, _get(request, viewer, address), {})


@router.post("/aliases/{address}")
def edit_alias(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    intent: Intent = "",
    add_targets: Targets = "",
    remove_targets: Annotated[list[str], Form(max_length=1000)] = [],  # noqa: B006
    active: Switch = "",
) -> Response:
    alias = _get(request, viewer, address)
    data = {
        "add_targets": split_targets(add_targets),
        "remove_targets": remove_targets,
        "active": is_on(active),
    }
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.update(uow, actor, alias.address, parse(AliasUpdate, data)),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.errors or outcome.previewed:
        context = {
            "values": {"add_targets": add_targets, "active": active},
            "removing": remove_targets,
            "errors": _in_place(outcome, {"targets": "add_targets", "set_targets": "add_targets"}),
            "plan": outcome.plan,
            "previewed": outcome.previewed,
        }
        return _edit_page(request, viewer, alias, context, 422 if outcome.errors else 200)
    return RedirectResponse(f"{alias_path(alias.address)}?notice=updated", status_code=303)


# --- remove ------------------------------------------------------------------------------------


@router.get("/aliases/{address}/delete")
def delete_alias_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    alias = _get(request, viewer, address)
    context = {
        "title": f"Remove {alias.address}",
        "alias": alias,
        "errors": {},
        "plan": [],
        "previewed": False,
    }
    return render(request, "aliases/delete.html", context, viewer=viewer)


@router.post("/aliases/{address}/delete")
def delete_alias(
    request: Request, viewer: AdminViewer, address: Address, intent: Intent = ""
) -> Response:
    alias = _get(request, viewer, address)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, alias.address),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.errors or outcome.previewed:
        context = {
            "title": f"Remove {alias.address}",
            "alias": alias,
            **form_state(outcome),
        }
        status = 422 if outcome.errors else 200
        return render(request, "aliases/delete.html", context, viewer=viewer, status_code=status)
    return RedirectResponse("/aliases?notice=deleted", status_code=303)
