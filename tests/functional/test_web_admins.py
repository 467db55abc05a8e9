"""The console's admin pages: superadmins only; every change previewed, then applied."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate, AdminPublic
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import NotFound, PermissionDenied
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.twofactor import service as twofactor
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
NEW_PASSWORD = "a brand new passphrase"
HOSTILE = "<script>alert(1)</script>"
_SHOWN_ONCE = re.compile(r'<code class="secret">([^<]+)</code>')


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


def admin(make_uow: UowFactory, username: str) -> AdminPublic:
    return run(make_uow, lambda uow: admins.get(uow, OPERATOR, username))  # type: ignore[no-any-return]


def exists(make_uow: UowFactory, username: str) -> bool:
    try:
        admin(make_uow, username)
    except NotFound:
        return False
    return True


def logs_in(make_uow: UowFactory, username: str, password: str) -> bool:
    try:
        run(make_uow, lambda uow: admins.authenticate(uow, username, password, Channel.WEB))
    except PermissionDenied:
        return False
    return True


CAROL = {
    "username": "carol",
    "role": "domain-admin",
    "domains": "a.example,\nb.example",
    "password": NEW_PASSWORD,
    "active": "on",
}


# --- listing ---------------------------------------------------------------------------------


def test_it_lists_admins_to_a_superadmin(web: Web) -> None:
    response = web.get("/admins")
    assert response.status_code == 200
    for name in ("root", "alice", "bob"):
        assert f'href="/admins/{name}"' in response.text
    assert '<a href="/admins" aria-current="page">Admins</a>' in response.text


def test_it_searches_admins_as_you_type(web: Web) -> None:
    response = web.get("/admins?search=ali", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'href="/admins/alice"' in response.text
    assert 'href="/admins/bob"' not in response.text


def test_it_pages_admins(web: Web, make_uow: UowFactory) -> None:
    def add_many(uow: UnitOfWork) -> None:
        for number in range(55):
            data = AdminCreate(username=f"zz{number:02d}", role=Role.SUPERADMIN)
            admins.create(uow, OPERATOR, data, password=PASSWORD)

    run(make_uow, add_many)
    first = web.get("/admins")
    assert 'href="/admins/zz40"' in first.text
    assert 'href="/admins/zz54"' not in first.text
    found = re.search(r'href="(/admins\?[^"]*after=[^"]+)"', first.text)
    assert found
    second = web.get(found.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert 'href="/admins/zz54"' in second.text
    assert 'href="/admins/alice"' not in second.text


def test_it_shows_a_hostile_search_as_text(web: Web) -> None:
    response = web.get("/admins", params={"search": HOSTILE})
    assert response.status_code == 200
    assert HOSTILE not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


# --- creating --------------------------------------------------------------------------------


def test_it_previews_an_admin_then_creates_it(web: Web, make_uow: UowFactory) -> None:
    preview = web.post("/admins/new", CAROL | {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert "<code>carol</code>" in preview.text
    assert "a.example, b.example" in preview.text
    assert NEW_PASSWORD not in preview.text
    assert not exists(make_uow, "carol")

    applied = web.post("/admins/new", CAROL | {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/admins/carol?notice=created"
    carol = admin(make_uow, "carol")
    assert (carol.role, carol.domains, carol.active) == (
        Role.DOMAIN_ADMIN,
        ["a.example", "b.example"],
        True,
    )
    assert logs_in(make_uow, "carol", NEW_PASSWORD)
    page = web.get("/admins/carol?notice=created")
    assert page.status_code == 200
    assert "Created." in page.text


def test_it_shows_a_generated_password_once(web: Web, make_uow: UowFactory) -> None:
    values = CAROL | {"password": "", "generate": "on", "intent": "apply"}
    response = web.post("/admins/new", values)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    found = _SHOWN_ONCE.search(response.text)
    assert found
    password = found.group(1)
    assert logs_in(make_uow, "carol", password)
    assert password not in web.get("/admins/carol").text
    assert password not in web.get("/admins").text


def test_it_reports_a_duplicate_username_in_place(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/new", CAROL | {"username": "alice", "intent": "apply"})
    assert response.status_code == 422
    assert 'aria-invalid="true" aria-describedby="username-error"' in response.text
    assert "exists already" in response.text
    assert admin(make_uow, "alice").domains == ["a.example"]


def test_it_requires_domains_of_a_domain_admin(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/new", CAROL | {"domains": "", "intent": "preview"})
    assert response.status_code == 422
    assert 'aria-describedby="domains-error"' in response.text
    assert "at least one domain" in response.text
    assert not exists(make_uow, "carol")


def test_it_reports_an_unknown_domain_in_place(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/new", CAROL | {"domains": "a.example, nowhere.example"})
    assert response.status_code == 422
    assert 'class="form-error" role="alert">No domain nowhere.example' in response.text
    assert not exists(make_uow, "carol")


def test_it_refuses_a_typed_and_a_generated_password_together(
    web: Web, make_uow: UowFactory
) -> None:
    response = web.post("/admins/new", CAROL | {"generate": "on", "intent": "apply"})
    assert response.status_code == 422
    assert 'aria-describedby="password-error"' in response.text
    assert not exists(make_uow, "carol")


# --- changing --------------------------------------------------------------------------------


def test_it_previews_then_edits_an_admin(web: Web, make_uow: UowFactory) -> None:
    values = {"role": "domain-admin", "add_domains": "b.example", "active": "on"}
    preview = web.post("/admins/alice/edit", values | {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert admin(make_uow, "alice").domains == ["a.example"]

    applied = web.post("/admins/alice/edit", values | {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/admins/alice?notice=updated"
    assert admin(make_uow, "alice").domains == ["a.example", "b.example"]

    # Unchecked "active" deactivates; a ticked domain is dropped.
    removal = {"role": "domain-admin", "remove_domains": ["a.example"], "intent": "apply"}
    assert web.post("/admins/alice/edit", removal).status_code == 303
    alice = admin(make_uow, "alice")
    assert (alice.domains, alice.active) == (["b.example"], False)


def test_it_refuses_to_leave_a_domain_admin_without_domains(web: Web, make_uow: UowFactory) -> None:
    values = {"role": "domain-admin", "remove_domains": ["a.example"], "active": "on"}
    response = web.post("/admins/alice/edit", values | {"intent": "apply"})
    assert response.status_code == 422
    assert "at least one domain" in response.text
    assert admin(make_uow, "alice").domains == ["a.example"]


def test_it_refuses_to_demote_oneself(web: Web, make_uow: UowFactory) -> None:
    values = {"role": "domain-admin", "add_domains": "a.example", "active": "on"}
    response = web.post("/admins/root/edit", values | {"intent": "apply"})
    assert response.status_code == 422
    assert "cannot demote or deactivate yourself" in response.text
    assert admin(make_uow, "root").role is Role.SUPERADMIN


def test_it_sets_a_password(web: Web, make_uow: UowFactory) -> None:
    preview = web.post("/admins/alice/password", {"password": NEW_PASSWORD})
    assert preview.status_code == 200
    assert logs_in(make_uow, "alice", PASSWORD)

    applied = web.post("/admins/alice/password", {"password": NEW_PASSWORD, "intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/admins/alice?notice=password"
    assert logs_in(make_uow, "alice", NEW_PASSWORD)
    assert not logs_in(make_uow, "alice", PASSWORD)


def test_it_refuses_a_too_short_password(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/alice/password", {"password": "short", "intent": "apply"})
    assert response.status_code == 422
    assert 'aria-describedby="password-error"' in response.text
    assert logs_in(make_uow, "alice", PASSWORD)


def test_it_generates_a_password(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/bob/password", {"generate": "on", "intent": "apply"})
    assert response.status_code == 200
    found = _SHOWN_ONCE.search(response.text)
    assert found
    assert logs_in(make_uow, "bob", found.group(1))


# --- removing and resetting the second factor -----------------------------------------------


def test_it_removes_an_admin_after_a_preview(web: Web, make_uow: UowFactory) -> None:
    confirm = web.get("/admins/bob/delete")
    assert confirm.status_code == 200
    assert "Preview: nothing has been changed yet" in confirm.text
    assert 'value="apply"' in confirm.text
    assert exists(make_uow, "bob")

    removed = web.post("/admins/bob/delete", {"intent": "apply"})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/admins?notice=deleted"
    assert not exists(make_uow, "bob")


def test_it_refuses_to_remove_oneself(web: Web, make_uow: UowFactory) -> None:
    confirm = web.get("/admins/root/delete")
    assert confirm.status_code == 422
    assert "cannot remove yourself" in confirm.text
    assert 'value="apply"' not in confirm.text
    response = web.post("/admins/root/delete", {"intent": "apply"})
    assert response.status_code == 422
    assert exists(make_uow, "root")


def test_it_answers_404_for_an_unknown_admin(web: Web) -> None:
    assert web.get("/admins/nobody").status_code == 404
    assert web.get("/admins/nobody/delete").status_code == 404
    assert web.post("/admins/nobody/delete", {"intent": "apply"}).status_code == 404


def test_it_resets_a_second_factor_after_a_preview(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    bob = world.outsider
    enrolment = run(make_uow, lambda uow: twofactor.begin_enrolment(uow, bob))
    code = pyotp.TOTP(enrolment.secret).now()
    run(make_uow, lambda uow: twofactor.confirm_enrolment(uow, bob, code))
    assert bob.admin_id is not None
    admin_id = bob.admin_id

    confirm = web.get("/admins/bob/two-factor-reset")
    assert confirm.status_code == 200
    assert "Preview: nothing has been changed yet" in confirm.text
    assert run(make_uow, lambda uow: twofactor.is_enrolled(uow, admin_id))

    applied = web.post("/admins/bob/two-factor-reset", {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/admins/bob?notice=2fa-reset"
    assert not run(make_uow, lambda uow: twofactor.is_enrolled(uow, admin_id))


# --- refusals --------------------------------------------------------------------------------

ADMIN_PAGES = [
    "/admins",
    "/admins/new",
    "/admins/alice",
    "/admins/bob",
    "/admins/bob/delete",
    "/admins/bob/two-factor-reset",
]
ADMIN_POSTS: list[tuple[str, dict[str, Any]]] = [
    ("/admins/new", CAROL | {"intent": "apply"}),
    ("/admins/alice/edit", {"role": "superadmin", "active": "on", "intent": "apply"}),
    ("/admins/bob/edit", {"role": "domain-admin", "add_domains": "a.example", "intent": "apply"}),
    ("/admins/bob/password", {"password": NEW_PASSWORD, "intent": "apply"}),
    ("/admins/alice/password", {"password": NEW_PASSWORD, "intent": "apply"}),
    ("/admins/bob/delete", {"intent": "apply"}),
    ("/admins/root/two-factor-reset", {"intent": "apply"}),
]


def test_domain_admin_is_refused_every_admin_page(web: Web) -> None:
    for path in ADMIN_PAGES:
        response = web.get(path, as_="domain_admin_a")
        assert response.status_code == 403, path
        assert "You are not allowed to do this." in response.text


@pytest.mark.parametrize(("path", "values"), ADMIN_POSTS, ids=[p for p, _ in ADMIN_POSTS])
def test_domain_admin_cannot_change_admins(
    web: Web, make_uow: UowFactory, path: str, values: dict[str, Any]
) -> None:
    response = web.post(path, values, as_="domain_admin_a")
    assert response.status_code == 403
    assert not exists(make_uow, "carol")
    alice, bob = admin(make_uow, "alice"), admin(make_uow, "bob")
    assert (alice.role, alice.domains) == (Role.DOMAIN_ADMIN, ["a.example"])
    assert (bob.domains, bob.active) == (["b.example"], True)
    assert logs_in(make_uow, "alice", PASSWORD)
    assert logs_in(make_uow, "bob", PASSWORD)


def test_it_hides_the_admins_entry_from_domain_admins(web: Web) -> None:
    assert 'href="/admins"' not in web.get("/", as_="domain_admin_a").text
    assert 'href="/admins"' in web.get("/", as_="superadmin").text


def test_it_refuses_a_change_without_the_form_token(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/admins/new", CAROL | {"intent": "apply"}, csrf=False)
    assert response.status_code == 403
    assert not exists(make_uow, "carol")


def test_it_sends_anonymous_visitors_to_login(web: Web) -> None:
    response = web.get("/admins", as_="anonymous")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
