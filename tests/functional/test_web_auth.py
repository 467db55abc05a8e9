"""Logging in to the console over HTTP: CSRF, throttling, session renewal, the second factor,
logout, the setup link, and the headers every page carries."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from sqlalchemy import Connection, func, select

from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.audit import AuditEntry
from mailwarden.settings import Settings
from mailwarden.setup import service as setup
from mailwarden.twofactor import service as twofactor
from mailwarden.twofactor.models import TotpEnrolment
from mailwarden.websessions.models import WebSession
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.web_helpers import Web, csrf_in, web_on

HOSTILE = '"><script>alert(1)</script>'


def use_cookie(web: Web, value: str) -> None:
    """Send only this console cookie (the jar may hold one per domain the server named)."""
    web.client.cookies.clear()
    web.client.cookies.set("mw_console", value)


def login(web: Web, username: str, password: str = PASSWORD, **extra: str) -> object:
    page = web.get("/login", as_="anonymous")
    token = csrf_in(page.text)
    web.client.cookies.set("mw_csrf", page.cookies.get("mw_csrf") or token)
    data = {"csrf_token": token, "username": username, "password": password, **extra}
    return web.client.post("/login", data=data, follow_redirects=False)


def test_the_login_form_carries_a_csrf_token_and_refuses_a_post_without_it(web: Web) -> None:
    page = web.get("/login", as_="anonymous")
    assert page.status_code == 200
    assert "mw_csrf" in page.headers["set-cookie"]
    web.client.cookies.set("mw_csrf", csrf_in(page.text))
    refused = web.client.post(
        "/login", data={"username": "root", "password": PASSWORD}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert "mw_console" not in refused.headers.get("set-cookie", "")


def test_a_login_starts_a_new_session_whatever_cookie_came_before(
    web: Web, make_uow: UowFactory
) -> None:
    web.client.cookies.set("mw_console", "planted-by-an-attacker")
    response = login(web, "alice")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.cookies.get("mw_console")
    assert cookie and cookie != "planted-by-an-attacker"
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=lax" in response.headers["set-cookie"].lower()
    use_cookie(web, cookie)
    assert web.client.get("/", follow_redirects=False).status_code == 200


def test_a_wrong_password_is_refused_audited_and_the_typed_name_escaped(
    web: Web, make_uow: UowFactory
) -> None:
    response = login(web, HOSTILE, "wrong")
    assert response.status_code == 401
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text
    with make_uow() as uow:
        failed = uow.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "admin.login-failed")
        )
    assert failed == 1
    # The audit page shows the hostile name as text.
    audit = web.get("/audit", as_="superadmin")
    if audit.status_code == 200:
        assert "<script>alert(1)</script>" not in audit.text


def test_logins_are_throttled_per_account(web: Web, settings: Settings) -> None:
    for _ in range(settings.auth_failures_per_account):
        assert login(web, "alice", "wrong").status_code == 401
    blocked = login(web, "alice", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_logout_ends_the_session_on_the_server(web: Web) -> None:
    cookie = login(web, "root").cookies["mw_console"]
    use_cookie(web, cookie)
    token = csrf_in(web.client.get("/").text)
    out = web.client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    use_cookie(web, cookie)
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/login"


def enrol(make_uow: UowFactory, username: str) -> pyotp.TOTP:
    from mailwarden.admins import service as admins

    with make_uow() as uow:
        actor = admins.actor_for(uow, username, Channel.WEB)
        secret = twofactor.begin_enrolment(uow, actor).secret
        totp = pyotp.TOTP(secret)
        twofactor.confirm_enrolment(uow, actor, totp.now())
        # The confirming code is used up; let the next one be the previous step's.
        row = uow.session.get(TotpEnrolment, actor.admin_id)
        assert row is not None
        row.last_used_step -= 2
        uow.finish()
    return totp


def test_an_enrolled_admin_needs_a_code_and_gets_a_new_session_after_it(
    web: Web, make_uow: UowFactory
) -> None:
    totp = enrol(make_uow, "alice")
    first = login(web, "alice")
    assert first.headers["location"] == "/login/verify"
    pending = first.cookies["mw_console"]
    use_cookie(web, pending)
    # Half logged in is not logged in.
    assert web.client.get("/", follow_redirects=False).headers["location"] == "/login/verify"
    form = web.client.get("/login/verify")
    token = csrf_in(form.text)
    wrong = web.client.post("/login/verify", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 401
    done = web.client.post(
        "/login/verify", data={"csrf_token": token, "code": totp.now()}, follow_redirects=False
    )
    assert done.status_code == 303
    whole = done.cookies["mw_console"]
    assert whole != pending
    use_cookie(web, whole)
    assert web.client.get("/", follow_redirects=False).status_code == 200
    use_cookie(web, pending)
    assert web.client.get("/", follow_redirects=False).status_code == 303


@pytest.fixture
def strict_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"require_second_factor": ["domain-admin"]})


def test_a_role_that_requires_2fa_is_sent_to_enrolment(
    world: World, connection: Connection, strict_settings: Settings, make_uow: UowFactory
) -> None:
    with web_on(connection, strict_settings, make_uow) as web:
        response = web.get("/domains", as_="domain_admin_a")
        assert response.headers["location"] == "/account/two-factor"
        assert web.get("/account/two-factor", as_="domain_admin_a").status_code == 200
        assert web.get("/domains", as_="superadmin").status_code != 303


def test_every_page_carries_the_security_headers(web: Web) -> None:
    for persona, path in [("anonymous", "/login"), ("superadmin", "/"), ("mailbox_a", "/portal")]:
        response = web.get(path, as_=persona)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


def test_cookies_are_secure_behind_https(web: Web) -> None:
    web.client.base_url = web.client.base_url.copy_with(scheme="https")
    page = web.client.get("/login")
    assert "__Host-mw_csrf" in page.headers["set-cookie"]
    assert "secure" in page.headers["set-cookie"].lower()


def test_get_requests_change_nothing(web: Web, make_uow: UowFactory) -> None:
    from mailwarden.web.routes import ROUTERS

    def counts() -> tuple[int, int]:
        with make_uow() as uow:
            audit = uow.session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            sessions = uow.session.scalar(select(func.count()).select_from(WebSession)) or 0
        return audit, sessions

    for persona in ("superadmin", "mailbox_a"):
        web.login(persona)
    before = counts()
    paths = sorted(
        {
            route.path
            for router in ROUTERS
            for route in router.routes
            if "GET" in getattr(route, "methods", set()) and "{" not in route.path
        }
    )
    assert len(paths) > 5
    for path in paths:
        persona = "mailbox_a" if path.startswith("/portal") else "superadmin"
        assert web.get(path, as_=persona).status_code < 500, path
    assert counts() == before


@pytest.fixture
def empty_web(connection: Connection, settings: Settings, make_uow: UowFactory) -> Iterator[Web]:
    with web_on(connection, settings, make_uow) as web:
        yield web


def test_the_setup_link_creates_the_first_superadmin_once(
    empty_web: Web, make_uow: UowFactory
) -> None:
    web = empty_web
    assert "Set-up needed" in web.get("/login", as_="anonymous").text
    assert web.get("/setup?token=forged", as_="anonymous").status_code == 403
    with make_uow() as uow:
        token = setup.issue_link_token(uow)
        uow.finish()
    page = web.get(f"/setup?token={token}", as_="anonymous")
    assert page.status_code == 200
    csrf = csrf_in(page.text)
    web.client.cookies.set("mw_csrf", csrf)
    form = {
        "csrf_token": csrf,
        "token": token,
        "username": "first",
        "password": PASSWORD,
        "password_again": "something else",
    }
    mismatch = web.client.post("/setup", data=form)
    assert mismatch.status_code == 422 and "differ" in mismatch.text
    form.update(password_again=PASSWORD, first_domain="first.example")
    done = web.client.post("/setup", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.cookies.get("mw_console")
    again = web.client.post("/setup", data=form, follow_redirects=False)
    assert again.status_code == 422 and "setup is done" in again.text
    with make_uow() as uow:
        actor = Actor.local_operator(Channel.SYSTEM)
        from mailwarden.domains import service as domains

        assert domains.get(uow, actor, "first.example").name == "first.example"
