"""Mailboxes in the console: the list (search as you type, filters, keyset pages), a mailbox's
page, and its changes (create, edit, password, remove and restore, auto-reply, forwarding, app
passwords), each previewed as a dry run before it is applied.

The list is the page of big domains: one page is one `list_mailboxes` query (usage included),
with no total count and no offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailwarden.aliases import service as aliases
from mailwarden.api.context import runtime_of
from mailwarden.apppasswords import service as apppasswords
from mailwarden.domains import service as domains
from mailwarden.forwarding import service as forwarding
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import MailwardenError
from mailwarden.kernel.passwords import generate_password
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.sizes import parse_size
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic, MailboxUpdate
from mailwarden.vacation import service as vacation

from .. import mail_settings
from ..changes import GENERAL, Outcome, errors_of, form_state, perform, wants_preview
from ..rendering import is_htmx, render
from ..sessions import AdminViewer, Viewer

router = APIRouter(include_in_schema=False)

T = TypeVar("T")

PAGE_SIZE = 50
# The domain filter is a drop-down when the actor's domains fit in one such page.
DOMAIN_CHOICES = 100
# A mailbox page shows this many aliases delivering to it, with a note when there are more.
ALIASES_SHOWN = 20

Address = Annotated[str, Path(max_length=254)]
# Generous bounds: the service's own limits (255 characters for a name, say) answer with
# field errors in place, which a refused request could not.
Line = Annotated[str, Form(max_length=1024)]
Secret = Annotated[str, Form(max_length=4096)]
Flag = Annotated[str, Form(max_length=8)]
LongText = Annotated[str, Form(max_length=256 * 1024)]
Intent = Annotated[str, Form(max_length=16)]

SORT_CHOICES = [
    ("address", "Address A to Z"),
    ("-address", "Address Z to A"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
]
ACTIVE_CHOICES = [("", "Active and inactive"), ("yes", "Active only"), ("no", "Inactive only")]
SHOW_CHOICES = [("", "In use"), ("removed", "Removed (restorable)")]
_ACTIVE_VALUES = {"yes": True, "no": False}
_SIZE_UNITS = (("P", 5), ("T", 4), ("G", 3), ("M", 2), ("K", 1))
# How the services (`targets[2]`) and the schema (`targets.2`) name one forwarding target.


def _read(request: Request) -> UnitOfWork:
    return runtime_of(request).unit_of_work(dry_run=True)


def _mailbox_url(address: str, suffix: str = "", notice: str = "") -> str:
    url = f"/mailboxes/{quote(address, safe='@')}{suffix}"
    return f"{url}?notice={notice}" if notice else url


def _done(address: str, notice: str) -> Response:
    """After a change: back to the mailbox's page, which says what happened."""
    return RedirectResponse(_mailbox_url(address, notice=notice), status_code=303)


def _exact_size(size: int) -> str:
    """A size as the form shows it: exact, so saving an unchanged form changes nothing
    (`1.5 GiB` rounded to one decimal would not read back as the same number)."""
    if size == 0:
        return "0"
    for unit, power in _SIZE_UNITS:
        if size % 1024**power == 0:
            return f"{size // 1024**power} {unit}iB"
    return str(size)


def _checked(value: str) -> bool:
    return value == "on"


def _chosen_password(generate: bool, password: str) -> tuple[str, dict[str, list[str]]]:
    """The password to set (generated, or as typed), or the error of asking for both."""
    if generate and password:
        return "", {"password": ["Leave this empty when a password is generated."]}
    return (generate_password() if generate else password), {}


def _form_page(
    request: Request,
    viewer: Viewer,
    template: str,
    context: dict[str, Any],
    outcome: Outcome[Any] | None = None,
) -> Response:
    """A change form again: with the plan of a preview, or with the errors of a refusal."""
    context = form_state(outcome) | context
    status = 422 if outcome and outcome.errors else 200
    return render(request, template, context, viewer=viewer, status_code=status)


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListFilters:
    q: str
    domain: str
    active: str
    sort: str
    show: str

    def url(self, cursor: str | None = None) -> str:
        """The list with these filters (and a page's cursor): what the paging links point at."""
        params = {
            "q": self.q,
            "domain": self.domain,
            "active": self.active,
            "sort": "" if self.sort == "address" else self.sort,
            "show": self.show,
            "cursor": cursor or "",
        }
        query = urlencode({name: value for name, value in params.items() if value})
        return f"/mailboxes?{query}" if query else "/mailboxes"

    def values(self) -> dict[str, str]:
        return {
            "q": self.q,
            "domain": self.domain,
            "active": self.active,
            "sort": self.sort,
            "show": self.show,
        }


def _wants_fragment(request: Request) -> bool:
    # History restores (back button, with htmx's history cache off) need the whole page.
    return is_htmx(request) and request.headers.get("hx-history-restore-request") != "true"


def _domain_choices(uow: UnitOfWork, actor: Actor) -> list[tuple[str, str]] | None:
    """The domains for a drop-down filter; None when there are too many (a text field then)."""
    page = domains.list_domains(uow, actor, limit=DOMAIN_CHOICES)
    if page.next_cursor is not None:
        return None
    return [("", "All domains")] + [(domain.name, domain.name_unicode) for domain in page.items]


@router.get("/mailboxes")
def mailbox_list(
    request: Request,
    viewer: AdminViewer,
    q: Annotated[str, Query(max_length=254)] = "",
    domain: Annotated[str, Query(max_length=253)] = "",
    active: Annotated[str, Query(max_length=8)] = "",
    sort: Annotated[str, Query(max_length=64)] = "address",
    show: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    filters = ListFilters(
        q=q,
        domain=domain,
        active=active if active in _ACTIVE_VALUES else "",
        sort=sort or "address",
        show="removed" if show == "removed" else "",
    )
    fragment = _wants_fragment(request)
    items: list[MailboxPublic] = []
    next_cursor: str | None = None
    errors: dict[str, list[str]] = {}
    domain_choices = None
    with _read(request) as uow:
        try:
            page = mailboxes.list_mailboxes(
                uow,
                viewer.actor,
                domain=filters.domain or None,
                search=filters.q or None,
                active=_ACTIVE_VALUES.get(filters.active),
                removed=filters.show == "removed",
                sort=filters.sort,
                limit=PAGE_SIZE,
                after=cursor or None,
            )
            items, next_cursor = page.items, page.next_cursor
        except MailwardenError as exc:
            errors = errors_of(exc, {"search": "q", "cursor": GENERAL})
        if not fragment:
            domain_choices = _domain_choices(uow, viewer.actor)
    context = {
        "title": "Mailboxes",
        "mailboxes": items,
        "filters": filters,
        "values": filters.values(),
        "errors": errors,
        "next_url": filters.url(next_cursor) if next_cursor else None,
        "first_url": filters.url() if cursor else None,
        "domain_choices": domain_choices,
        "sort_choices": SORT_CHOICES,
        "active_choices": ACTIVE_CHOICES,
        "show_choices": SHOW_CHOICES,
    }
    if fragment:
        # htmx swaps only successful answers: a refused search shows its message in the rows.
        return render(request, "mailboxes/_rows.html", context, viewer=viewer)
    return render(
        request,
        "mailboxes/list.html",
        context,
        viewer=viewer,
        status_code=422 if errors else 200,
    )


# --- creating --------------------------------------------------------------------------------


def _new_page(
    request: Request,
    viewer: Viewer,
    values: Mapping[str, Any],
    outcome: Outcome[Any] | None = None,
) -> Response:
    context = {"title": "New mailbox", "values": values}
    return _form_page(request, viewer, "mailboxes/new.html", context, outcome)


@router.get("/mailboxes/new")
def new_mailbox(
    request: Request,
    viewer: AdminViewer,
    domain: Annotated[str, Query(max_length=253)] = "",
) -> Response:
    values = {"address": f"@{domain}" if domain else "", "active": True}
    return _new_page(request, viewer, values)


@router.post("/mailboxes/new")
def create_mailbox(
    request: Request,
    viewer: AdminViewer,
    address: Line = "",
    name: Line = "",
    quota: Line = "",
    active: Flag = "",
    generate: Flag = "",
    password: Secret = "",
    intent: Intent = "",
) -> Response:
    values = {
        "address": address,
        "name": name,
        "quota": quota,
        "active": _checked(active),
        "generate": _checked(generate),
    }
    chosen, errors = _chosen_password(_checked(generate), password)
    if errors:
        return _new_page(request, viewer, values, Outcome(errors=errors))

    def create(uow: UnitOfWork, actor: Actor) -> MailboxPublic:
        data: dict[str, Any] = {"address": address, "name": name, "active": _checked(active)}
        # Left out when empty: the domain's default quota.
        if quota != "":
            data["quota_bytes"] = parse_size(quota, "quota")
        return mailboxes.create(uow, actor, parse(MailboxCreate, data), password=chosen)

    outcome = perform(
        request,
        viewer.actor,
        create,
        preview=wants_preview({"intent": intent}),
        field_names={"quota_bytes": "quota"},
    )
    if outcome.result is None or outcome.previewed:
        return _new_page(request, viewer, values, outcome)
    if _checked(generate):
        context = {
            "title": "Mailbox created",
            "mailbox": outcome.result,
            "password": chosen,
            "heading": "Mailbox created",
        }
        return render(request, "mailboxes/shown_once.html", context, viewer=viewer)
    return _done(outcome.result.address, "created")


# --- one mailbox -----------------------------------------------------------------------------


@router.get("/mailboxes/{address}")
def mailbox_detail(request: Request, viewer: AdminViewer, address: Address) -> Response:
    actor = viewer.actor
    context: dict[str, Any] = {}
    with _read(request) as uow:
        mailbox = mailboxes.get(uow, actor, address)
        # Auto-reply, forwarding, aliases and app passwords belong to a mailbox in use only.
        if mailbox.removed_at is None:
            context = {
                "vacation": vacation.get_vacation(uow, actor, mailbox.address),
                "forward": forwarding.get_forward(uow, actor, mailbox.address),
                "delivering": aliases.delivering_to(
                    uow, actor, mailbox.address, limit=ALIASES_SHOWN
                ),
                "app_passwords": apppasswords.list_app_passwords(uow, actor, mailbox.address),
            }
    context |= {"title": mailbox.address, "mailbox": mailbox}
    return render(request, "mailboxes/detail.html", context, viewer=viewer)


def _mailbox(request: Request, viewer: Viewer, address: str) -> MailboxPublic:
    with _read(request) as uow:
        return mailboxes.get(uow, viewer.actor, address)


def _edit_page(
    request: Request,
    viewer: Viewer,
    address: str,
    values: Mapping[str, Any],
    outcome: Outcome[Any] | None = None,
) -> Response:
    context = {"title": f"Edit {address}", "address": address, "values": values}
    return _form_page(request, viewer, "mailboxes/edit.html", context, outcome)


@router.get("/mailboxes/{address}/edit")
def edit_mailbox(request: Request, viewer: AdminViewer, address: Address) -> Response:
    mailbox = _mailbox(request, viewer, address)
    values = {
        "name": mailbox.name,
        "quota": _exact_size(mailbox.quota_bytes),
        "active": mailbox.active,
    }
    return _edit_page(request, viewer, mailbox.address, values)


@router.post("/mailboxes/{address}/edit")
def update_mailbox(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    name: Line = "",
    quota: Line = "",
    active: Flag = "",
    intent: Intent = "",
) -> Response:
    values = {"name": name, "quota": quota, "active": _checked(active)}

    def update(uow: UnitOfWork, actor: Actor) -> MailboxPublic:
        data: dict[str, Any] = {"name": name, "active": _checked(active)}
        if quota != "":
            data["quota_bytes"] = parse_size(quota, "quota")
        return mailboxes.update(uow, actor, address, parse(MailboxUpdate, data))

    outcome = perform(
        request,
        viewer.actor,
        update,
        preview=wants_preview({"intent": intent}),
        field_names={"quota_bytes": "quota"},
    )
    if outcome.result is None or outcome.previewed:
        return _edit_page(request, viewer, address, values, outcome)
    return _done(outcome.result.address, "updated")


def _password_page(
    request: Request,
    viewer: Viewer,
    address: str,
    values: Mapping[str, Any],
    outcome: Outcome[Any] | None = None,
) -> Response:
    context = {"title": f"Password of {address}", "address": address, "values": values}
    return _form_page(request, viewer, "mailboxes/password.html", context, outcome)


@router.get("/mailboxes/{address}/password")
def password_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    mailbox = _mailbox(request, viewer, address)
    return _password_page(request, viewer, mailbox.address, {})


@router.post("/mailboxes/{address}/password")
def set_password(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    generate: Flag = "",
    password: Secret = "",
    intent: Intent = "",
) -> Response:
    values = {"generate": _checked(generate)}
    chosen, errors = _chosen_password(_checked(generate), password)
    if errors:
        return _password_page(request, viewer, address, values, Outcome(errors=errors))
    outcome = perform(
        request,
        viewer.actor,
        lambda uow, actor: mailboxes.set_password(uow, actor, address, chosen),
        preview=wants_preview({"intent": intent}),
    )
    if outcome.result is None or outcome.previewed:
        return _password_page(request, viewer, address, values, outcome)
    if _checked(generate):
        context = {
            "title": "Password changed",
            "mailbox": outcome.result,
            "password": chosen,
            "heading": "New password set",
        }
        return render(request, "mailboxes/shown_once.html", context, viewer=viewer)
    return _done(outcome.result.address, "password")


# --- confirmed changes: remove, restore, turning things off, revoking --------------------------


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A change whose preview is its confirmation: what it does, and how to ask for it."""

    title: str
    explanation: str
    button: str
    destructive: bool


REMOVE = Confirmation(
    "Remove mailbox",
    "Delivery and login stop at once. The mailbox and its mail are kept until the grace "
    "period ends, and it can be restored until then.",
    "Remove mailbox",
    destructive=True,
)
RESTORE = Confirmation(
    "Restore mailbox",
    "The mailbox receives mail and accepts logins again; the domain's limits must allow it.",
    "Restore mailbox",
    destructive=False,
)
VACATION_OFF = Confirmation(
    "Turn off the auto-reply",
    "No more automatic replies are sent; the text is kept for later.",
    "Turn off",
    destructive=True,
)
FORWARD_OFF = Confirmation(
    "Turn off forwarding",
    "Mail stays in the mailbox and is no longer forwarded; the targets are kept for later.",
    "Turn off",
    destructive=True,
)
REVOKE = Confirmation(
    "Revoke app password",
    "Logins with this app password fail from now on, and the mailbox's open sessions end.",
    "Revoke",
    destructive=True,
)


def _confirm(
    request: Request,
    viewer: Viewer,
    what: Confirmation,
    address: str,
    action: str,
    outcome: Outcome[Any] | None = None,
    subject: str = "",
) -> Response:
    context = {
        "title": what.title,
        "what": what,
        "address": address,
        "action": action,
        "subject": subject,
    }
    return _form_page(request, viewer, "mailboxes/confirm.html", context, outcome)


def _confirmed(
    request: Request,
    viewer: Viewer,
    what: Confirmation,
    address: str,
    suffix: str,
    operation: Callable[[UnitOfWork, Actor], T],
    intent: str,
    *,
    notice: str,
    subject: str = "",
) -> Response:
    outcome = perform(request, viewer.actor, operation, preview=wants_preview({"intent": intent}))
    if outcome.errors or outcome.previewed:
        action = _mailbox_url(address, suffix)
        return _confirm(request, viewer, what, address, action, outcome, subject)
    return _done(address, notice)


@router.get("/mailboxes/{address}/remove")
def remove_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    mailbox = _mailbox(request, viewer, address)
    action = _mailbox_url(mailbox.address, "/remove")
    return _confirm(request, viewer, REMOVE, mailbox.address, action)


@router.post("/mailboxes/{address}/remove")
def remove_mailbox(
    request: Request, viewer: AdminViewer, address: Address, intent: Intent = ""
) -> Response:
    return _confirmed(
        request,
        viewer,
        REMOVE,
        address,
        "/remove",
        lambda uow, actor: mailboxes.remove(uow, actor, address),
        intent,
        notice="deleted",
    )


@router.get("/mailboxes/{address}/restore")
def restore_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    mailbox = _mailbox(request, viewer, address)
    action = _mailbox_url(mailbox.address, "/restore")
    return _confirm(request, viewer, RESTORE, mailbox.address, action)


@router.post("/mailboxes/{address}/restore")
def restore_mailbox(
    request: Request, viewer: AdminViewer, address: Address, intent: Intent = ""
) -> Response:
    return _confirmed(
        request,
        viewer,
        RESTORE,
        address,
        "/restore",
        lambda uow, actor: mailboxes.restore(uow, actor, address),
        intent,
        notice="restored",
    )


@router.post("/mailboxes/{address}/app-passwords/{public_id}/revoke")
def revoke_app_password(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    public_id: Annotated[str, Path(max_length=64)],
    intent: Intent = "",
) -> Response:
    return _confirmed(
        request,
        viewer,
        REVOKE,
        address,
        f"/app-passwords/{quote(public_id, safe='')}/revoke",
        lambda uow, actor: apppasswords.revoke(uow, actor, address, public_id),
        intent,
        notice="revoked",
        subject=public_id,
    )


# --- auto-reply ------------------------------------------------------------------------------


# Each mail setting's page: its title and template.
_SETTING_PAGES = {
    "vacation": ("Auto-reply of", "mailboxes/vacation.html"),
    "forwarding": ("Forwarding of", "mailboxes/forwarding.html"),
}


def _setting_page(
    request: Request,
    viewer: Viewer,
    setting: str,
    address: str,
    values: Mapping[str, Any],
    enabled: bool,
    outcome: Outcome[Any] | None = None,
) -> Response:
    title, template = _SETTING_PAGES[setting]
    context = {
        "title": f"{title} {address}",
        "address": address,
        "values": values,
        "enabled": enabled,
    }
    return _form_page(request, viewer, template, context, outcome)


@router.get("/mailboxes/{address}/vacation")
def vacation_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    with _read(request) as uow:
        current = vacation.get_vacation(uow, viewer.actor, address)
    values = mail_settings.vacation_values(current)
    return _setting_page(request, viewer, "vacation", current.address, values, current.enabled)


@router.post("/mailboxes/{address}/vacation")
def set_vacation(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    subject: Line = "",
    body: LongText = "",
    starts_on: Annotated[str, Form(max_length=32)] = "",
    ends_on: Annotated[str, Form(max_length=32)] = "",
    interval_days: Annotated[str, Form(max_length=16)] = "",
    enabled: Flag = "",
    intent: Intent = "",
) -> Response:
    values = {
        "subject": subject,
        "body": body,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "interval_days": interval_days,
    }

    def save(uow: UnitOfWork, actor: Actor) -> object:
        return mail_settings.save_vacation(uow, actor, address, values)

    outcome = perform(request, viewer.actor, save, preview=wants_preview({"intent": intent}))
    if outcome.result is None or outcome.previewed:
        return _setting_page(
            request, viewer, "vacation", address, values, _checked(enabled), outcome
        )
    return _done(address, "updated")


@router.post("/mailboxes/{address}/vacation/disable")
def disable_vacation(
    request: Request, viewer: AdminViewer, address: Address, intent: Intent = ""
) -> Response:
    return _confirmed(
        request,
        viewer,
        VACATION_OFF,
        address,
        "/vacation/disable",
        lambda uow, actor: vacation.disable_vacation(uow, actor, address),
        intent,
        notice="updated",
    )


# --- forwarding ------------------------------------------------------------------------------


@router.get("/mailboxes/{address}/forwarding")
def forwarding_form(request: Request, viewer: AdminViewer, address: Address) -> Response:
    with _read(request) as uow:
        current = forwarding.get_forward(uow, viewer.actor, address)
    values = mail_settings.forwarding_values(current)
    return _setting_page(request, viewer, "forwarding", current.address, values, current.enabled)


@router.post("/mailboxes/{address}/forwarding")
def set_forwarding(
    request: Request,
    viewer: AdminViewer,
    address: Address,
    targets: LongText = "",
    keep_copy: Flag = "",
    enabled: Flag = "",
    intent: Intent = "",
) -> Response:
    values = {"targets": targets, "keep_copy": _checked(keep_copy)}
    lines = mail_settings.target_lines(targets)

    def save(uow: UnitOfWork, actor: Actor) -> object:
        return mail_settings.save_forward(uow, actor, address, lines, _checked(keep_copy))

    outcome = perform(request, viewer.actor, save, preview=wants_preview({"intent": intent}))
    outcome.errors = mail_settings.targets_in_place(outcome.errors, lines)
    if outcome.result is None or outcome.previewed:
        return _setting_page(
            request, viewer, "forwarding", address, values, _checked(enabled), outcome
        )
    return _done(address, "updated")


@router.post("/mailboxes/{address}/forwarding/disable")
def disable_forwarding(
    request: Request, viewer: AdminViewer, address: Address, intent: Intent = ""
) -> Response:
    return _confirmed(
        request,
        viewer,
        FORWARD_OFF,
        address,
        "/forwarding/disable",
        lambda uow, actor: forwarding.disable_forward(uow, actor, address),
        intent,
        notice="updated",
    )
