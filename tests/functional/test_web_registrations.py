"""Registration over HTTP: the public page, its throttle, and the console's moderation queue
(domain admins decide on their own domains' requests only, after a preview)."""

from __future__ import annotations

from typing import Any

import pytest

from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import NotFound
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.registrations import service as registrations
from mailwarden.registrations.schemas import RegistrationPublic
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.web_helpers import Web, csrf_in

OPERATOR = Actor.local_operator(Channel.SYSTEM)
WANTED = "newcomer@a.example"
CHOSEN = "my own fine passphrase"
HOSTILE_NAME = "<script>alert(1)</script>"


def send_form(web: Web, page_path: str, action: str, data: dict[str, str]) -> Any:
    """A form before login, as a browser sends it (the pre-session cookie and its token)."""
    web.client.cookies.clear()
    page = web.client.get(page_path)
    assert page.status_code == 200
    return web.client.post(
        action, data={**data, "csrf_token": csrf_in(page.text)}, follow_redirects=False
    )


def register(web: Web, address: str = WANTED, **changes: str) -> Any:
    data = {
        "address": address,
        "name": "New Person",
        "password": CHOSEN,
        "password_again": CHOSEN,
        "contact": "me@example.org",
    } | changes
    return send_form(web, "/register", "/register", data)


def requests(make_uow: UowFactory) -> list[RegistrationPublic]:
    with make_uow(dry_run=True) as uow:
        return registrations.list_requests(uow, OPERATOR, status=None, limit=500).items


def the_request(make_uow: UowFactory, address: str = WANTED) -> RegistrationPublic:
    return next(item for item in requests(make_uow) if item.address == address)


def mailbox_exists(make_uow: UowFactory, address: str) -> bool:
    with make_uow(dry_run=True) as uow:
        try:
            mailboxes.get(uow, OPERATOR, address)
        except NotFound:
            return False
    return True


@pytest.fixture
def open_a(world: World, make_uow: UowFactory) -> None:
    """a.example takes requests; its domain admin opens it."""
    with make_uow() as uow:
        domains.update(
            uow, world.domain_admin, "a.example", parse(DomainUpdate, {"registration_open": True})
        )
        uow.finish()


@pytest.fixture
def pending_id(open_a: None, web: Web, make_uow: UowFactory) -> int:
    assert register(web, name=HOSTILE_NAME).status_code == 303
    return the_request(make_uow).id


# --- the public page ---------------------------------------------------------------------------


def test_a_visitor_asks_for_a_mailbox_in_an_open_domain(
    open_a: None, web: Web, make_uow: UowFactory
) -> None:
    form = web.get("/register", as_="anonymous")
    assert form.status_code == 200
    assert 'name="password_again"' in form.text

    response = register(web)

    assert response.status_code == 303
    assert response.headers["location"] == "/register/sent"
    assert web.client.get("/register/sent").status_code == 200
    found = the_request(make_uow)
    assert (found.status.value, found.name, found.contact) == (
        "pending",
        "New Person",
        "me@example.org",
    )
    assert not mailbox_exists(make_uow, WANTED)


def test_a_closed_domain_is_refused_in_place(web: Web, make_uow: UowFactory) -> None:
    response = register(web, "newcomer@b.example")

    assert response.status_code == 422
    assert "registration is not open for this domain" in response.text
    assert 'id="address-error"' in response.text
    assert 'value="newcomer@b.example"' in response.text
    assert requests(make_uow) == []


def test_the_two_passwords_must_match(open_a: None, web: Web, make_uow: UowFactory) -> None:
    response = register(web, password_again=CHOSEN + "?")
    assert response.status_code == 422
    assert "The two passwords differ." in response.text
    assert requests(make_uow) == []


def test_the_registration_form_needs_its_token(
    open_a: None, web: Web, make_uow: UowFactory
) -> None:
    web.client.cookies.clear()
    web.client.get("/register")
    data = {"address": WANTED, "password": CHOSEN, "password_again": CHOSEN}
    assert web.client.post("/register", data=data).status_code == 403
    forged = data | {"csrf_token": "forged"}
    assert web.client.post("/register", data=forged).status_code == 403
    assert requests(make_uow) == []


def test_one_client_gets_a_few_submissions_per_window(
    web: Web, make_uow: UowFactory, settings: Settings
) -> None:
    # Refused ones count too: they are how addresses and domains are probed.
    for _ in range(settings.registrations_per_client):
        assert register(web, "newcomer@b.example").status_code == 422

    response = register(web, "newcomer@b.example")

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many requests" in response.text


# --- moderation --------------------------------------------------------------------------------


def test_the_domain_admin_sees_the_queue_escaped(pending_id: int, web: Web) -> None:
    page = web.get("/registrations", as_="domain_admin_a")

    assert page.status_code == 200
    assert WANTED in page.text
    assert f'href="/registrations/{pending_id}"' in page.text
    assert HOSTILE_NAME not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    detail = web.get(f"/registrations/{pending_id}", as_="domain_admin_a")
    assert detail.status_code == 200
    assert HOSTILE_NAME not in detail.text
    assert "me@example.org" in detail.text
    fragment = web.get(
        "/registrations?status=all&domain=a.example",
        as_="domain_admin_a",
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert WANTED in fragment.text
    assert "<html" not in fragment.text


def test_an_approval_creates_the_mailbox_after_a_preview(
    pending_id: int, web: Web, make_uow: UowFactory
) -> None:
    preview = web.post(
        f"/registrations/{pending_id}/approve", {"intent": "preview"}, as_="domain_admin_a"
    )

    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert WANTED in preview.text
    assert not mailbox_exists(make_uow, WANTED)
    assert the_request(make_uow).status.value == "pending"

    applied = web.post(
        f"/registrations/{pending_id}/approve", {"intent": "apply"}, as_="domain_admin_a"
    )

    assert applied.status_code == 303
    assert applied.headers["location"] == "/registrations?notice=approved"
    assert mailbox_exists(make_uow, WANTED)
    decided = the_request(make_uow)
    assert (decided.status.value, decided.decided_by) == ("approved", "alice")
    # The visitor logs in to the portal with the password chosen at registration.
    login = send_form(
        web, "/portal/login", "/portal/login", {"address": WANTED, "password": CHOSEN}
    )
    assert login.status_code == 303
    assert login.headers["location"] == "/portal"
    assert web.client.get("/portal").status_code == 200


def test_a_decided_request_cannot_be_decided_again(
    pending_id: int, web: Web, make_uow: UowFactory
) -> None:
    path = f"/registrations/{pending_id}"
    assert web.post(f"{path}/approve", {"intent": "apply"}, as_="domain_admin_a").status_code == 303
    again = web.post(f"{path}/reject", {"intent": "apply"}, as_="domain_admin_a")
    assert again.status_code == 422
    assert the_request(make_uow).status.value == "approved"


def test_a_rejection_keeps_its_reason(pending_id: int, web: Web, make_uow: UowFactory) -> None:
    path = f"/registrations/{pending_id}/reject"
    preview = web.post(path, {"intent": "preview", "reason": "unknown"}, as_="domain_admin_a")
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert the_request(make_uow).status.value == "pending"

    applied = web.post(path, {"intent": "apply", "reason": "unknown"}, as_="domain_admin_a")

    assert applied.status_code == 303
    assert applied.headers["location"] == "/registrations?notice=rejected"
    decided = the_request(make_uow)
    assert (decided.status.value, decided.reason) == ("rejected", "unknown")
    assert not mailbox_exists(make_uow, WANTED)


def test_bob_neither_sees_nor_decides_requests_of_a_example(
    pending_id: int, web: Web, make_uow: UowFactory
) -> None:
    queue = web.get("/registrations?status=all", as_="domain_admin_b")
    assert queue.status_code == 200
    assert "a.example" not in queue.text
    assert web.get(f"/registrations/{pending_id}", as_="domain_admin_b").status_code == 404
    filtered = web.get("/registrations?domain=a.example", as_="domain_admin_b")
    assert filtered.status_code == 422
    assert WANTED not in filtered.text
    for decision in ("approve", "reject"):
        response = web.post(
            f"/registrations/{pending_id}/{decision}", {"intent": "apply"}, as_="domain_admin_b"
        )
        assert response.status_code == 404
        assert WANTED not in response.text
    assert the_request(make_uow).status.value == "pending"
    assert not mailbox_exists(make_uow, WANTED)


def test_the_moderation_forms_need_the_session_token(
    pending_id: int, web: Web, make_uow: UowFactory
) -> None:
    response = web.post(
        f"/registrations/{pending_id}/approve",
        {"intent": "apply", "csrf_token": "forged"},
        as_="domain_admin_a",
        csrf=False,
    )
    assert response.status_code == 403
    assert the_request(make_uow).status.value == "pending"
