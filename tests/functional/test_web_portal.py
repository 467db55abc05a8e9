"""The self-service portal over HTTP: logging in (a new session, the hash upgraded), the
password, the auto-reply, forwarding and app passwords, always of the session's own mailbox."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from mailwarden.api.context import Runtime
from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.audit import service as audit
from mailwarden.forwarding import service as forwarding
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import PermissionDenied
from mailwarden.kernel.passwords import Scheme
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import selfservice
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.vacation import service as vacations
from mailwarden.vacation.schemas import VacationSet
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.web_helpers import Web, csrf_in
from tests.support.managesieve_server import closed_port

OPERATOR = Actor.local_operator(Channel.SYSTEM)
OWN = "user1@a.example"
OTHER = "user1@b.example"
NEW_PASSWORD = "a brand new passphrase"
HOSTILE_SUBJECT = "<script>alert(1)</script>"
HOSTILE_BODY = "\"'><img src=x onerror=alert(1)>"


def log_in(web: Web, address: str, password: str, **extra: str) -> Any:
    """The login form as a browser fills it in (the pre-session cookie and its token)."""
    page = web.client.get("/portal/login")
    assert page.status_code == 200
    data = {"address": address, "password": password, "csrf_token": csrf_in(page.text), **extra}
    return web.client.post("/portal/login", data=data, follow_redirects=False)


def portal_cookie(response: Any) -> str | None:
    value = response.cookies.get("mw_portal")
    return None if value is None else str(value)


def password_is(make_uow: UowFactory, address: str, password: str) -> bool:
    with make_uow(dry_run=True) as uow:
        try:
            selfservice.authenticate(uow, address, password)
        except PermissionDenied:
            return False
    return True


def stored_scheme(make_uow: UowFactory, address: str) -> str | None:
    with make_uow(dry_run=True) as uow:
        return mailboxes.get(uow, OPERATOR, address).password_scheme


def vacation_of(make_uow: UowFactory, address: str) -> Any:
    with make_uow(dry_run=True) as uow:
        return vacations.get_vacation(uow, OPERATOR, address)


def forward_of(make_uow: UowFactory, address: str) -> Any:
    with make_uow(dry_run=True) as uow:
        return forwarding.get_forward(uow, OPERATOR, address)


def app_password_names(make_uow: UowFactory, address: str) -> list[str]:
    with make_uow(dry_run=True) as uow:
        page = apppasswords.list_app_passwords(uow, OPERATOR, address, limit=500)
    return [item.name for item in page.items]


def vacation_form(**changes: str) -> dict[str, str]:
    return {
        "enabled": "on",
        "subject": "Away",
        "body": "Back on Monday.",
        "starts_on": "",
        "ends_on": "",
        "interval_days": "7",
    } | changes


# --- logging in --------------------------------------------------------------------------------


def test_login_starts_a_new_session_and_upgrades_the_stored_hash(
    web: Web, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        mailboxes.set_password(uow, OPERATOR, OWN, PASSWORD, scheme=Scheme.SHA512_CRYPT)
        uow.finish()
    assert stored_scheme(make_uow, OWN) == "SHA512-CRYPT"
    planted, _ = web.login("mailbox_a")
    web.client.cookies.clear()
    web.client.cookies.set("mw_portal", planted)

    response = log_in(web, OWN.upper(), PASSWORD, next="/portal/vacation")

    assert response.status_code == 303
    assert response.headers["location"] == "/portal/vacation"
    fresh = portal_cookie(response)
    assert fresh and fresh != planted
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    # The settings' scheme (SHA256-CRYPT in tests) replaced the old one; the password stands.
    assert stored_scheme(make_uow, OWN) == "SHA256-CRYPT"
    assert password_is(make_uow, OWN, PASSWORD)
    # The session the browser carried before is over; the new one works.
    with make_uow() as uow:
        assert websessions.resolve(uow, planted, SessionKind.MAILBOX) is None
    web.client.cookies.clear()
    web.client.cookies.set("mw_portal", fresh)
    overview = web.client.get("/portal", follow_redirects=False)
    assert overview.status_code == 200
    assert OWN in overview.text


def test_login_does_not_send_anyone_off_the_portal(web: Web) -> None:
    response = log_in(web, OWN, PASSWORD, next="//evil.example/")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    response = log_in(web, OWN, PASSWORD, next="/domains")
    assert response.headers["location"] == "/portal"


def test_a_wrong_password_is_refused_counted_and_audited(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    response = log_in(web, OWN, "not the password")

    assert response.status_code == 401
    assert "Wrong address or password." in response.text
    assert portal_cookie(response) is None
    assert 'value="user1@a.example"' in response.text
    with make_uow(dry_run=True) as uow:
        entries = audit.list_entries(uow, world.superadmin, action="mailbox.login-failed").items
    assert [entry.object_key for entry in entries] == [OWN]
    assert entries[0].after == {"reason": "password"}


def test_the_login_form_needs_its_token(web: Web) -> None:
    web.client.cookies.clear()
    web.client.get("/portal/login")
    response = web.client.post(
        "/portal/login",
        data={"address": OWN, "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert portal_cookie(response) is None


def test_logout_ends_the_session(web: Web, make_uow: UowFactory) -> None:
    token, _ = web.login("mailbox_a")
    response = web.post("/portal/logout", as_="mailbox_a")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login?notice=logged-out"
    with make_uow() as uow:
        assert websessions.resolve(uow, token, SessionKind.MAILBOX) is None
    assert web.get("/portal", as_="mailbox_a").status_code == 303


def test_an_admin_session_is_no_portal_session_and_the_reverse(web: Web) -> None:
    for persona in ("superadmin", "domain_admin_a"):
        response = web.get("/portal", as_=persona)
        assert response.status_code == 303
        assert response.headers["location"] == "/portal/login"
        refused = web.post("/portal/vacation", vacation_form(), as_=persona)
        assert refused.status_code == 303
        assert refused.headers["location"] == "/portal/login"
    for path in ("/", "/registrations", "/account"):
        response = web.get(path, as_="mailbox_a")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_anonymous_visitors_are_sent_to_the_portal_login(web: Web) -> None:
    response = web.get("/portal/forwarding", as_="anonymous")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login?next=/portal/forwarding"


# --- the overview ------------------------------------------------------------------------------


def test_the_overview_shows_the_own_mailbox_only(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        vacations.set_vacation(
            uow, OPERATOR, OTHER, parse(VacationSet, {"subject": "B away", "body": "b"})
        )
        uow.finish()

    response = web.get(f"/portal?address={OTHER}", as_="mailbox_a")

    assert response.status_code == 200
    page = response.text
    assert "<h1>user1@a.example</h1>" in page
    assert "info@a.example" in page
    assert 'aria-label="Storage used"' in page or "Use not reported yet" in page
    assert "b.example" not in page
    assert "B away" not in page
    assert 'href="/portal/app-passwords"' in page


# --- password ----------------------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one(web: Web, make_uow: UowFactory) -> None:
    response = web.post(
        "/portal/password",
        {
            "current_password": "a wrong guess",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        as_="mailbox_a",
    )

    assert response.status_code == 422
    assert 'id="current_password-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert password_is(make_uow, OWN, PASSWORD)


def test_the_two_new_passwords_must_match(web: Web, make_uow: UowFactory) -> None:
    response = web.post(
        "/portal/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD + "!",
        },
        as_="mailbox_a",
    )
    assert response.status_code == 422
    assert "The two new passwords differ." in response.text
    assert password_is(make_uow, OWN, PASSWORD)


def test_a_password_change_logs_out_the_other_sessions_only(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        mailbox_id = uow.session.query(Mailbox.id).filter(Mailbox.address == OWN).scalar()
        assert mailbox_id is not None
        elsewhere = websessions.start(uow, SessionKind.MAILBOX, mailbox_id)
        uow.finish()
    this, _ = web.login("mailbox_a")

    response = web.post(
        "/portal/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        as_="mailbox_a",
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/portal/password?notice=password"
    assert password_is(make_uow, OWN, NEW_PASSWORD)
    assert not password_is(make_uow, OWN, PASSWORD)
    with make_uow() as uow:
        assert websessions.resolve(uow, elsewhere.token, SessionKind.MAILBOX) is None
        assert websessions.resolve(uow, this, SessionKind.MAILBOX) is not None


def test_the_password_form_needs_the_session_token(web: Web, make_uow: UowFactory) -> None:
    data = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    }
    assert web.post("/portal/password", data, as_="mailbox_a", csrf=False).status_code == 403
    forged = data | {"csrf_token": "forged"}
    assert web.post("/portal/password", forged, as_="mailbox_a", csrf=False).status_code == 403
    assert password_is(make_uow, OWN, PASSWORD)


# --- vacation ----------------------------------------------------------------------------------


def test_a_hostile_auto_reply_is_stored_as_given_and_shown_escaped(
    web: Web, make_uow: UowFactory
) -> None:
    form = vacation_form(subject=HOSTILE_SUBJECT, body=HOSTILE_BODY, ends_on="2031-01-31")
    response = web.post("/portal/vacation", form, as_="mailbox_a")

    assert response.status_code == 303
    assert response.headers["location"] == "/portal/vacation?notice=updated"
    stored = vacation_of(make_uow, OWN)
    assert stored.enabled and stored.subject == HOSTILE_SUBJECT and stored.body == HOSTILE_BODY
    assert stored.ends_on.isoformat() == "2031-01-31"
    for path in ("/portal/vacation", "/portal"):
        page = web.get(path, as_="mailbox_a").text
        assert HOSTILE_SUBJECT not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in web.get("/portal/vacation", as_="mailbox_a").text


def test_vacation_errors_show_at_their_fields_and_nothing_is_stored(
    web: Web, make_uow: UowFactory
) -> None:
    form = vacation_form(
        subject="", starts_on="2031-02-01", ends_on="2031-01-01", interval_days="weekly"
    )
    response = web.post("/portal/vacation", form, as_="mailbox_a")

    assert response.status_code == 422
    for name in ("subject", "interval_days"):
        assert f'id="{name}-error"' in response.text
    assert 'value="2031-02-01"' in response.text
    assert not vacation_of(make_uow, OWN).enabled

    dates = web.post(
        "/portal/vacation",
        vacation_form(starts_on="2031-02-01", ends_on="2031-01-01"),
        as_="mailbox_a",
    )
    assert dates.status_code == 422
    assert 'id="ends_on-error"' in dates.text
    assert not vacation_of(make_uow, OWN).enabled


def test_a_save_the_mail_server_missed_is_said_so(web: Web, make_uow: UowFactory) -> None:
    app = web.client.app
    assert isinstance(app, FastAPI)
    runtime = app.state.runtime
    unreachable = runtime.settings.model_copy(
        update={
            "managesieve_host": "127.0.0.1",
            "managesieve_port": closed_port(),
            "sieve_master_password": SecretStr("never shown anywhere"),
        }
    )
    app.state.runtime = Runtime(unreachable, runtime.sessions)

    response = web.post("/portal/vacation", vacation_form(), as_="mailbox_a")

    assert response.status_code == 200
    assert "the mail server could not be updated" in response.text
    assert "never shown anywhere" not in response.text
    assert vacation_of(make_uow, OWN).enabled


def test_switching_the_auto_reply_off_keeps_its_text(web: Web, make_uow: UowFactory) -> None:
    assert web.post("/portal/vacation", vacation_form(), as_="mailbox_a").status_code == 303
    off = vacation_form(subject="")
    del off["enabled"]
    assert web.post("/portal/vacation", off, as_="mailbox_a").status_code == 303
    stored = vacation_of(make_uow, OWN)
    assert not stored.enabled
    assert stored.subject == "Away"
    assert 'value="Away"' in web.get("/portal/vacation", as_="mailbox_a").text


def test_no_form_field_reaches_another_mailbox(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        apppasswords.create(uow, OPERATOR, OTHER, parse(AppPasswordCreate, {"name": "phone"}))
        uow.finish()

    web.post("/portal/vacation", vacation_form(address=OTHER), as_="mailbox_a")
    web.post(
        "/portal/forwarding",
        {"enabled": "on", "targets": "someone@example.org", "address": OTHER},
        as_="mailbox_a",
    )
    revoke = web.post(
        "/portal/app-passwords/revoke", {"name": "phone", "address": OTHER}, as_="mailbox_a"
    )
    for path in ("/portal/vacation", "/portal/forwarding", "/portal/app-passwords"):
        page = web.get(f"{path}?address={OTHER}", as_="mailbox_a")
        assert page.status_code == 200
        assert "b.example" not in page.text

    # The changes landed on the session's own mailbox; the other one is untouched.
    assert vacation_of(make_uow, OWN).enabled
    assert not vacation_of(make_uow, OTHER).enabled
    assert forward_of(make_uow, OWN).targets == ["someone@example.org"]
    assert forward_of(make_uow, OTHER).targets == []
    assert revoke.status_code == 422
    assert app_password_names(make_uow, OTHER) == ["phone"]


# --- forwarding --------------------------------------------------------------------------------


def test_forwarding_errors_name_their_line(web: Web, make_uow: UowFactory) -> None:
    form = {"enabled": "on", "targets": "friend@example.org\n\n|/bin/sh\n", "keep_copy": "on"}
    response = web.post("/portal/forwarding", form, as_="mailbox_a")

    assert response.status_code == 422
    assert "Line 3:" in response.text
    assert 'id="targets-error"' in response.text
    assert not forward_of(make_uow, OWN).enabled


def test_forwarding_is_saved_and_switched_off(web: Web, make_uow: UowFactory) -> None:
    form = {"enabled": "on", "targets": "friend@example.org\r\nother@example.net"}
    response = web.post("/portal/forwarding", form, as_="mailbox_a")

    assert response.status_code == 303
    stored = forward_of(make_uow, OWN)
    assert stored.enabled
    assert stored.targets == ["friend@example.org", "other@example.net"]
    assert stored.keep_copy is False
    assert "friend@example.org" in web.get("/portal", as_="mailbox_a").text

    assert web.post("/portal/forwarding", {"targets": ""}, as_="mailbox_a").status_code == 303
    stored = forward_of(make_uow, OWN)
    assert not stored.enabled
    assert stored.targets == ["friend@example.org", "other@example.net"]


# --- app passwords -----------------------------------------------------------------------------


def test_an_app_password_is_shown_once_and_can_be_revoked(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/portal/app-passwords", {"name": "phone"}, as_="mailbox_a")

    assert response.status_code == 200
    assert "use it instead of your password in your mail app" in response.text.lower()
    assert app_password_names(make_uow, OWN) == ["phone"]
    secret = response.text.split('<code class="secret">', 1)[1].split("</code>", 1)[0]
    assert len(secret) > 16
    listing = web.get("/portal/app-passwords", as_="mailbox_a").text
    assert "phone" in listing
    assert secret not in listing

    duplicate = web.post("/portal/app-passwords", {"name": "phone"}, as_="mailbox_a")
    assert duplicate.status_code == 422
    assert 'id="name-error"' in duplicate.text

    revoked = web.post("/portal/app-passwords/revoke", {"name": "phone"}, as_="mailbox_a")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/portal/app-passwords?notice=revoked"
    assert app_password_names(make_uow, OWN) == []


def test_an_app_password_name_is_shown_escaped(web: Web, make_uow: UowFactory) -> None:
    response = web.post("/portal/app-passwords", {"name": HOSTILE_BODY}, as_="mailbox_a")
    assert response.status_code == 200
    for page in (response.text, web.get("/portal", as_="mailbox_a").text):
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert app_password_names(make_uow, OWN) == [HOSTILE_BODY]
