"""Mail hosts in the console (superadmins: the service refuses everyone else).

Adding an SSH host is preview-then-apply like every change, with one more guarantee: the
preview fetches the server's key and shows its fingerprint, and the apply button carries that
fingerprint, so the host is added only if the server still presents the very key the admin saw
(a typed fingerprint wins over the fetched one).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.api.context import runtime_of
from mailwarden.hosts import service
from mailwarden.hosts.schemas import HostCheck, HostCreate, HostPublic, HostUpdate
from mailwarden.kernel.errors import PermissionDenied, ValidationError
from mailwarden.kernel.pagination import Page
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.schemas import parse

from ..changes import Outcome, errors_of, form_state, perform, wants_preview
from ..rendering import render
from ..sessions import AdminViewer, Viewer
from .admins import placed

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
# Not a form mistake: the error page (403) answers these.
REFUSED: Final = (PermissionDenied,)
Name = Annotated[str, Path(max_length=63)]
Text = Annotated[str, Form(max_length=1024)]
Lines = Annotated[str, Form(max_length=20_000)]

PATH_FIELDS: Final = (
    ("postfix_config_dir", "Postfix configuration directory", "/etc/postfix"),
    ("postfix_command_dir", "Postfix commands directory", "/usr/sbin"),
    ("dovecot_config", "dovecot.conf", "/etc/dovecot/dovecot.conf"),
    ("doveadm", "doveadm", "/usr/bin/doveadm"),
    ("mail_root", "Mail root", "/var/vmail"),
    ("probe_address", "Probe address (SMTP/IMAP banners)", "127.0.0.1, or the SSH host"),
)
PORT_FIELDS: Final = (("smtp_port", "SMTP port", "25"), ("imap_port", "IMAP port", "143"))
_CREATE_FIELDS: Final = {
    "name",
    "transport",
    "ssh_target",
    "ssh_key_file",
    "host_key_fingerprint",
    "log_paths",
    *(name for name, _label, _hint in PATH_FIELDS + PORT_FIELDS),
}
_EDIT_FIELDS: Final = _CREATE_FIELDS - {"name", "transport", "ssh_target", "ssh_key_file"}


def _port(value: str, field: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit() or len(value.strip()) > 5:
        raise ValidationError(field, "invalid_port", "a port is a number between 1 and 65535")
    return int(value)


def _paths(form: dict[str, str]) -> dict[str, Any]:
    """The path fields given (empty ones keep their value), as HostPaths takes them."""
    fields: dict[str, Any] = {
        name: form[name] for name, _label, _hint in PATH_FIELDS if form.get(name, "")
    }
    for name, _label, _hint in PORT_FIELDS:
        if (port := _port(form.get(name, ""), name)) is not None:
            fields[name] = port
    logs = [line.strip() for line in form.get("log_paths", "").splitlines() if line.strip()]
    if logs:
        fields["log_paths"] = logs
    return fields


def _values_of(host: HostPublic) -> dict[str, str]:
    values = {name: str(getattr(host, name)) for name, _l, _h in PATH_FIELDS + PORT_FIELDS}
    values["log_paths"] = "\n".join(host.log_paths)
    return values


# --- list and detail ----------------------------------------------------------------------


@router.get("/hosts")
def list_hosts(
    request: Request, viewer: AdminViewer, after: Annotated[str, Query(max_length=63)] = ""
) -> Response:
    errors: dict[str, list[str]] = {}
    page: Page[HostPublic] = Page([], None)
    try:
        with runtime_of(request).unit_of_work(dry_run=True) as uow:
            page = service.list_hosts(uow, viewer.actor, limit=PAGE_SIZE, after=after or None)
    except ValidationError as exc:
        errors = placed(errors_of(exc), set())
    context = {"title": "Hosts", "page": page, "after": after, "errors": errors}
    return render(
        request, "hosts/list.html", context, viewer=viewer, status_code=422 if errors else 200
    )


def _read(request: Request, viewer: Viewer, name: str) -> HostPublic:
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        return service.get(uow, viewer.actor, name)


def _detail(
    request: Request, viewer: Viewer, host: HostPublic, check: HostCheck | None = None
) -> Response:
    context = {"title": f"Host {host.name}", "host": host, "check": check}
    return render(request, "hosts/detail.html", context, viewer=viewer)


@router.get("/hosts/new")
def new_host(request: Request, viewer: AdminViewer) -> Response:
    # No service runs for an empty form: the permission is asked here, as the service would.
    require(viewer.actor, Permission.HOST_CREATE)
    return _new_page(request, viewer, {"transport": "local"})


@router.get("/hosts/{name}")
def show_host(request: Request, viewer: AdminViewer, name: Name) -> Response:
    return _detail(request, viewer, _read(request, viewer, name))


@router.post("/hosts/{name}/check")
def check_host(request: Request, viewer: AdminViewer, name: Name) -> Response:
    """Runs commands on the host but changes nothing: the result is shown on the detail page."""
    host = _read(request, viewer, name)
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        result = service.check(uow, viewer.actor, name)
    return _detail(request, viewer, host, result)


# --- add ----------------------------------------------------------------------------------


def _new_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    outcome: Outcome[HostPublic] | None = None,
) -> Response:
    previewed = outcome.result if outcome and outcome.ok and outcome.previewed else None
    context = {
        "title": "Add a host",
        "values": values,
        "path_fields": PATH_FIELDS,
        "port_fields": PORT_FIELDS,
        **form_state(outcome),
        "errors": placed(outcome.errors, _CREATE_FIELDS) if outcome else {},
        # The key the server presented during the preview: applying pins it.
        "presented_fingerprint": previewed.host_key_fingerprint if previewed else None,
    }
    status = 200 if outcome is None or outcome.ok else 422
    return render(request, "hosts/new.html", context, viewer=viewer, status_code=status)


@router.post("/hosts/new")
def create_host(
    request: Request,
    viewer: AdminViewer,
    name: Text = "",
    transport: Text = "local",
    ssh_target: Text = "",
    ssh_key_file: Text = "",
    host_key_fingerprint: Text = "",
    pinned_fingerprint: Text = "",
    postfix_config_dir: Text = "",
    postfix_command_dir: Text = "",
    dovecot_config: Text = "",
    doveadm: Text = "",
    mail_root: Text = "",
    probe_address: Text = "",
    smtp_port: Text = "",
    imap_port: Text = "",
    log_paths: Lines = "",
    intent: Text = "",
) -> Response:
    values = {
        "name": name,
        "transport": transport,
        "ssh_target": ssh_target,
        "ssh_key_file": ssh_key_file,
        "host_key_fingerprint": host_key_fingerprint,
        "postfix_config_dir": postfix_config_dir,
        "postfix_command_dir": postfix_command_dir,
        "dovecot_config": dovecot_config,
        "doveadm": doveadm,
        "mail_root": mail_root,
        "probe_address": probe_address,
        "smtp_port": smtp_port,
        "imap_port": imap_port,
        "log_paths": log_paths,
    }
    preview = wants_preview({"intent": intent})

    def operation(uow: Any, actor: Any) -> HostPublic:
        fields: dict[str, Any] = {"name": name, "transport": transport}
        if transport == "ssh":
            fields["ssh_target"] = ssh_target
            fields["ssh_key_file"] = ssh_key_file or None
            # What the admin typed; else, on apply, the key the preview showed.
            fingerprint = host_key_fingerprint or (None if preview else pinned_fingerprint)
            if fingerprint:
                fields["host_key_fingerprint"] = fingerprint
        fields.update(_paths(values))
        return service.create(uow, actor, parse(HostCreate, fields))

    outcome = perform(request, viewer.actor, operation, preview=preview, propagate=REFUSED)
    if preview or not outcome.ok or outcome.result is None:
        return _new_page(request, viewer, values, outcome)
    return RedirectResponse(f"/hosts/{outcome.result.name}?notice=created", status_code=303)


# --- edit ---------------------------------------------------------------------------------


def _edit_page(
    request: Request,
    viewer: Viewer,
    host: HostPublic,
    values: dict[str, str],
    outcome: Outcome[Any] | None = None,
) -> Response:
    context = {
        "title": f"Edit host {host.name}",
        "host": host,
        "values": values,
        "path_fields": PATH_FIELDS,
        "port_fields": PORT_FIELDS,
        **form_state(outcome),
        "errors": placed(outcome.errors, _EDIT_FIELDS) if outcome else {},
    }
    status = 200 if outcome is None or outcome.ok else 422
    return render(request, "hosts/edit.html", context, viewer=viewer, status_code=status)


@router.get("/hosts/{name}/edit")
def edit_host(request: Request, viewer: AdminViewer, name: Name) -> Response:
    host = _read(request, viewer, name)
    return _edit_page(request, viewer, host, _values_of(host))


@router.post("/hosts/{name}/edit")
def update_host(
    request: Request,
    viewer: AdminViewer,
    name: Name,
    postfix_config_dir: Text = "",
    postfix_command_dir: Text = "",
    dovecot_config: Text = "",
    doveadm: Text = "",
    mail_root: Text = "",
    probe_address: Text = "",
    smtp_port: Text = "",
    imap_port: Text = "",
    log_paths: Lines = "",
    intent: Text = "",
) -> Response:
    host = _read(request, viewer, name)
    values = {
        "postfix_config_dir": postfix_config_dir,
        "postfix_command_dir": postfix_command_dir,
        "dovecot_config": dovecot_config,
        "doveadm": doveadm,
        "mail_root": mail_root,
        "probe_address": probe_address,
        "smtp_port": smtp_port,
        "imap_port": imap_port,
        "log_paths": log_paths,
    }
    preview = wants_preview({"intent": intent})
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.update(uow, actor, name, parse(HostUpdate, _paths(values))),
        preview=preview,
        propagate=REFUSED,
    )
    if preview or not outcome.ok:
        return _edit_page(request, viewer, host, values, outcome)
    return RedirectResponse(f"/hosts/{name}?notice=updated", status_code=303)


# --- remove -------------------------------------------------------------------------------


def _remove_page(
    request: Request, viewer: Viewer, host: HostPublic, outcome: Outcome[Any]
) -> Response:
    context = {
        "title": f"Remove host {host.name}",
        "host": host,
        "errors": placed(outcome.errors, set()),
        "plan": outcome.plan,
        "previewed": outcome.previewed and outcome.ok,
    }
    status = 200 if outcome.ok else 422
    return render(request, "hosts/remove.html", context, viewer=viewer, status_code=status)


@router.get("/hosts/{name}/remove")
def confirm_remove(request: Request, viewer: AdminViewer, name: Name) -> Response:
    host = _read(request, viewer, name)
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, name),
        preview=True,
        propagate=REFUSED,
    )
    return _remove_page(request, viewer, host, outcome)


@router.post("/hosts/{name}/remove")
def remove_host(request: Request, viewer: AdminViewer, name: Name, intent: Text = "") -> Response:
    host = _read(request, viewer, name)
    preview = wants_preview({"intent": intent})
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: service.remove(uow, actor, name),
        preview=preview,
        propagate=REFUSED,
    )
    if preview or not outcome.ok:
        return _remove_page(request, viewer, host, outcome)
    return RedirectResponse("/hosts?notice=deleted", status_code=303)
