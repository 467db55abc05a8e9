"""Hostile text in every field the console and portal display comes out as text, never markup.

One world full of it (domain descriptions, mailbox names, vacation texts, alias targets' names,
API key names, app password names, registration names, audit entries, failed-login usernames),
then every page of the console and portal is fetched and searched for the raw markup.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate
from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.logins.audit import LoginKind, record_failed_login
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxUpdate
from mailwarden.registrations import service as registrations
from mailwarden.registrations.models import RegistrationRequest
from mailwarden.registrations.schemas import RegistrationSubmit
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import VacationSet
from mailwarden.web.routes import ROUTERS
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
HOSTILE = f"{SCRIPT}{ATTRIBUTE}"
# What must never reach a page: the markup itself.
RAW = re.compile(r"<script>alert|<img src=x")


def poison(make_uow: UowFactory) -> int:
    """Hostile text everywhere a person can write some; returns a registration request id."""
    with make_uow() as uow:
        domains.update(
            uow,
            OPERATOR,
            "a.example",
            parse(DomainUpdate, {"description": HOSTILE[:255], "registration_open": True}),
        )
        mailboxes.update(uow, OPERATOR, "user1@a.example", parse(MailboxUpdate, {"name": HOSTILE}))
        vacation.set_vacation(
            uow,
            OPERATOR,
            "user1@a.example",
            parse(VacationSet, {"subject": HOSTILE, "body": f"{HOSTILE}\n{HOSTILE}"}),
        )
        apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, {"admin": "root", "name": HOSTILE[:100]}))
        apppasswords.create(
            uow, OPERATOR, "user1@a.example", parse(AppPasswordCreate, {"name": HOSTILE[:100]})
        )
        registrations.submit(
            uow,
            parse(
                RegistrationSubmit,
                {"address": "visitor@a.example", "name": HOSTILE, "password": PASSWORD},
            ),
            client_address="192.0.2.1",
        )
        record_failed_login(
            uow, HOSTILE, LoginKind.ADMIN, channel="web", client_address="192.0.2.1", reason="x"
        )
        record_failed_login(
            uow,
            HOSTILE + "@a.example",
            LoginKind.MAILBOX,
            channel="web",
            client_address="192.0.2.1",
            reason="x",
            domain="a.example",
        )
        request_id = uow.session.scalar(select(RegistrationRequest.id))
        uow.finish()
    assert request_id is not None
    return request_id


def pages(request_id: int) -> list[tuple[str, str]]:
    """(persona, path) of every GET page without parameters, plus the poisoned objects' own."""
    plain = sorted(
        {
            route.path
            for router in ROUTERS
            for route in router.routes
            if "GET" in getattr(route, "methods", set()) and "{" not in route.path
        }
    )
    found = [("mailbox_a" if p.startswith("/portal") else "superadmin", p) for p in plain]
    objects = [
        "/domains/a.example",
        "/domains/a.example/edit",
        "/mailboxes/user1@a.example",
        "/mailboxes/user1@a.example/edit",
        "/mailboxes/user1@a.example/vacation",
        f"/registrations/{request_id}",
        "/mailboxes?q=user1",
        "/audit?action=admin.login-failed",
    ]
    found += [("superadmin", path) for path in objects]
    found += [("domain_admin_a", path) for path in ("/", "/audit", *objects)]
    return found


def test_no_page_shows_hostile_text_as_markup(web: Web, make_uow: UowFactory) -> None:
    request_id = poison(make_uow)
    shown = 0
    for persona, path in pages(request_id):
        response = web.get(path, as_=persona)
        assert response.status_code < 500, path
        assert not RAW.search(response.text), f"raw markup on {path} as {persona}"
        # The text itself is there, escaped, on the pages that show the poisoned objects.
        shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert shown >= 10


def test_htmx_fragments_escape_too(web: Web, make_uow: UowFactory) -> None:
    poison(make_uow)
    fragment = {"HX-Request": "true", "HX-Target": "mailbox-rows"}
    for path in ("/mailboxes?q=user1", "/audit?action=admin.login-failed", "/aliases?q=info"):
        response = web.get(path, as_="superadmin", headers=fragment)
        assert response.status_code == 200, path
        assert not RAW.search(response.text), path
