"""The console's mailbox pages: the list (search, filters, keyset pages, quota bars), a
mailbox's page, and its changes, each previewed (nothing changes) before it is applied."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.audit import service as audit
from mailwarden.forwarding import service as forwarding
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import NotFound
from mailwarden.kernel.passwords import Scheme, hash_password, verify_password
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox, QuotaUsage
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxPublic, MailboxUpdate
from mailwarden.vacation import service as vacation
from tests.conftest import UowFactory
from tests.factories.world import GIB, PASSWORD
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator()
MIB = 1024**2
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"
HX = {"HX-Request": "true"}
NEXT_LINK = re.compile(r'<a href="([^"]*)" rel="next">')


def mailbox(make_uow: UowFactory, address: str) -> MailboxPublic:
    with make_uow() as uow:
        return mailboxes.get(uow, OPERATOR, address)


def exists(make_uow: UowFactory, address: str) -> bool:
    try:
        mailbox(make_uow, address)
    except NotFound:
        return False
    return True


def create(make_uow: UowFactory, address: str, name: str = "") -> None:
    with make_uow() as uow:
        data = parse(MailboxCreate, {"address": address, "name": name})
        mailboxes.create(uow, OPERATOR, data, password=PASSWORD)
        uow.finish()


def report_usage(make_uow: UowFactory, address: str, used: int) -> None:
    """What Dovecot's quota_clone writes for a mailbox."""
    with make_uow() as uow:
        uow.session.add(QuotaUsage(username=address, bytes=used, messages=3))
        uow.finish()


def parse_update(values: dict[str, object]) -> MailboxUpdate:
    return parse(MailboxUpdate, values)


def audit_actions(make_uow: UowFactory, address: str) -> list[str]:
    with make_uow() as uow:
        entries = audit.list_entries(uow, OPERATOR, object_key=address).items
    return [entry.action for entry in entries]


# --- the list --------------------------------------------------------------------------------


def test_it_lists_the_mailboxes_with_a_search_form(web: Web) -> None:
    response = web.get("/mailboxes")
    assert response.status_code == 200
    page = response.text
    for address in ("user1@a.example", "postmaster@a.example", "user1@b.example"):
        assert f'href="/mailboxes/{address.replace("@", "%40")}"' in page
    assert 'id="mailbox-rows"' in page
    assert 'hx-get="/mailboxes"' in page
    assert 'hx-target="#mailbox-rows"' in page
    assert "<title>Mailboxes · Mailwarden</title>" in page


def test_search_with_htmx_answers_only_the_rows(web: Web) -> None:
    response = web.get("/mailboxes?q=postmaster", headers=HX)
    assert response.status_code == 200
    fragment = response.text
    assert "<html" not in fragment
    assert "<tbody" not in fragment
    assert fragment.lstrip().startswith("<tr")
    assert "postmaster@a.example" in fragment
    assert "user1@" not in fragment


def test_search_without_javascript_answers_the_whole_page(web: Web) -> None:
    response = web.get("/mailboxes?q=postmaster")
    assert response.status_code == 200
    assert "<html" in response.text
    assert 'value="postmaster"' in response.text
    assert "postmaster@a.example" in response.text
    assert "user1@a.example" not in response.text


def test_a_history_restore_gets_the_whole_page(web: Web) -> None:
    headers = HX | {"HX-History-Restore-Request": "true"}
    response = web.get("/mailboxes?q=postmaster", headers=headers)
    assert response.status_code == 200
    assert "<html" in response.text


def test_filters_by_domain_state_and_order(web: Web, make_uow: UowFactory) -> None:
    create(make_uow, "zed@b.example")
    with make_uow() as uow:
        mailboxes.update(uow, OPERATOR, "zed@b.example", parse_update({"active": False}))
        uow.finish()
    page = web.get("/mailboxes?domain=b.example&active=no").text
    assert "zed@b.example" in page
    assert "user1@b.example" not in page
    assert "user1@a.example" not in page
    page = web.get("/mailboxes?domain=b.example&sort=-address").text
    assert page.index("zed@b.example") < page.index("user1@b.example")


def test_it_pages_with_a_cursor(web: Web, make_uow: UowFactory) -> None:
    stored = hash_password(PASSWORD, Scheme.SHA256_CRYPT)
    with make_uow() as uow:
        for number in range(52):
            data = parse(MailboxCreate, {"address": f"bulk{number:03}@b.example"})
            mailboxes.create(uow, OPERATOR, data, password_hash=stored)
        uow.finish()
    first = web.get("/mailboxes?domain=b.example")
    assert first.status_code == 200
    assert first.text.count('data-label="Address"') == 50
    found = NEXT_LINK.search(first.text)
    assert found, "the first page links to the next one"
    next_url = html.unescape(found.group(1))
    assert "cursor=" in next_url and "domain=b.example" in next_url
    second = web.get(next_url)
    assert second.status_code == 200
    # 52 bulk mailboxes and user1@b.example: 50 on the first page, 3 on the second.
    assert second.text.count('data-label="Address"') == 3
    assert "user1@b.example" in second.text
    assert "bulk049@b.example" not in second.text
    assert NEXT_LINK.search(second.text) is None
    assert "First page" in second.text


def test_a_broken_cursor_is_reported_in_place(web: Web) -> None:
    response = web.get("/mailboxes?cursor=~garbage")
    assert response.status_code == 422
    assert 'class="form-error"' in response.text


def test_quota_bars_show_the_usage_dovecot_reported(web: Web, make_uow: UowFactory) -> None:
    report_usage(make_uow, "user1@a.example", 512 * MIB)
    report_usage(make_uow, "postmaster@a.example", int(0.95 * GIB))
    page = web.get("/mailboxes?domain=a.example").text
    assert 'value="50" max="100" aria-label="Quota used by user1@a.example: 50 %"' in page
    assert "512 MiB of 1 GiB" in page
    assert (
        'value="95" max="100" aria-label="Quota used by postmaster@a.example: 95 %" class="high"'
        in page
    )
    detail = web.get("/mailboxes/user1@a.example").text
    assert '<progress value="50" max="100"' in detail
    assert "3 messages" in detail


def test_a_mailbox_without_reported_usage_says_so(web: Web) -> None:
    page = web.get("/mailboxes?q=user1%40b.example").text
    assert "not reported yet" in page
    assert "<progress" not in page.split('id="mailbox-rows"')[1]


# --- a domain admin's view --------------------------------------------------------------------


def test_a_domain_admin_never_sees_other_domains_mailboxes(web: Web) -> None:
    page = web.get("/mailboxes", as_="domain_admin_a").text
    assert "user1@a.example" in page
    assert "b.example" not in page
    searched = web.get("/mailboxes?q=b.example", as_="domain_admin_a")
    assert searched.status_code == 200
    assert "user1@b.example" not in searched.text
    fragment = web.get("/mailboxes?q=b.example", as_="domain_admin_a", headers=HX).text
    assert "user1@b.example" not in fragment
    assert "No mailbox matches" in fragment
    filtered = web.get("/mailboxes?domain=b.example", as_="domain_admin_a")
    assert filtered.status_code == 422
    assert "user1@b.example" not in filtered.text
    detail = web.get("/mailboxes/user1@b.example", as_="domain_admin_a")
    assert detail.status_code == 404
    assert "user1@b.example" not in detail.text.replace("No mailbox user1@b.example", "")


def test_a_domain_admin_cannot_change_another_domains_mailbox(
    web: Web, make_uow: UowFactory
) -> None:
    for path, data in (
        ("/mailboxes/user1@b.example/edit", {"name": "Taken", "quota": "1G", "active": "on"}),
        ("/mailboxes/user1@b.example/remove", {}),
        ("/mailboxes/user1@b.example/vacation", {"subject": "x", "body": "y"}),
    ):
        response = web.post(path, data | {"intent": "apply"}, as_="domain_admin_a")
        assert response.status_code == 422
        assert "user1@b.example" in response.text  # the refusal names what it did not find
    assert mailbox(make_uow, "user1@b.example").name == ""
    assert mailbox(make_uow, "user1@b.example").removed_at is None
    for page in ("/edit", "/password", "/remove", "/vacation", "/forwarding"):
        assert web.get(f"/mailboxes/user1@b.example{page}", as_="domain_admin_a").status_code == 404


def test_a_post_without_the_session_token_is_refused(web: Web, make_uow: UowFactory) -> None:
    response = web.post(
        "/mailboxes/user1@a.example/remove", {"intent": "apply"}, as_="superadmin", csrf=False
    )
    assert response.status_code == 403
    assert mailbox(make_uow, "user1@a.example").removed_at is None


# --- creating ----------------------------------------------------------------------------------


def new_mailbox_form(**values: str) -> dict[str, str]:
    return {
        "address": "new@a.example",
        "name": "New Person",
        "quota": "256M",
        "active": "on",
        "password": PASSWORD,
    } | values


def test_create_previews_then_applies(web: Web, make_uow: UowFactory) -> None:
    form = web.get("/mailboxes/new")
    assert form.status_code == 200
    assert 'name="address"' in form.text
    preview = web.post("/mailboxes/new", new_mailbox_form(intent="preview"))
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert "new@a.example" in preview.text
    assert not exists(make_uow, "new@a.example")
    assert audit_actions(make_uow, "new@a.example") == []
    applied = web.post("/mailboxes/new", new_mailbox_form(intent="apply"))
    assert applied.status_code == 303
    assert applied.headers["location"] == "/mailboxes/new@a.example?notice=created"
    created = mailbox(make_uow, "new@a.example")
    assert (created.name, created.quota_bytes, created.active) == ("New Person", 256 * MIB, True)
    assert audit_actions(make_uow, "new@a.example") == ["mailbox.create"]
    shown = web.get(applied.headers["location"])
    assert "Created." in shown.text
    assert PASSWORD not in shown.text


def test_create_takes_the_domains_default_quota_when_none_is_given(
    web: Web, make_uow: UowFactory
) -> None:
    response = web.post("/mailboxes/new", new_mailbox_form(quota="", intent="apply"))
    assert response.status_code == 303
    assert mailbox(make_uow, "new@a.example").quota_bytes == GIB


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address": "not an address"}, "address"),
        ({"address": "new@@a.example"}, "address"),
        ({"quota": "12XB"}, "quota"),
        ({"quota": "-1G"}, "quota"),
        ({"password": "short"}, "password"),
        ({"password": ""}, "password"),
        ({"generate": "on"}, "password"),
        ({"name": "x" * 300}, "name"),
    ],
)
def test_create_shows_errors_in_place(
    changes: dict[str, str], field: str, web: Web, make_uow: UowFactory
) -> None:
    for intent in ("preview", "apply"):
        response = web.post("/mailboxes/new", new_mailbox_form(**changes, intent=intent))
        assert response.status_code == 422
        page = response.text
        assert f'id="{field}-error" class="field-error"' in page
        assert f'aria-describedby="{field}-error"' in page
        assert "Preview: nothing has been changed yet" not in page
    # What was typed stays (passwords excepted).
    if field == "quota":
        assert f'value="{changes["quota"]}"' in page
    assert not exists(make_uow, "new@a.example")


def test_a_domain_admin_cannot_create_in_another_domain(web: Web, make_uow: UowFactory) -> None:
    form = new_mailbox_form(address="new@b.example", intent="apply")
    response = web.post("/mailboxes/new", form, as_="domain_admin_a")
    assert response.status_code == 422
    assert 'class="form-error"' in response.text
    assert not exists(make_uow, "new@b.example")


def test_a_generated_password_is_shown_once(web: Web, make_uow: UowFactory) -> None:
    form = new_mailbox_form(generate="on", password="")
    preview = web.post("/mailboxes/new", form | {"intent": "preview"})
    assert preview.status_code == 200
    assert 'class="secret"' not in preview.text
    assert not exists(make_uow, "new@a.example")
    applied = web.post("/mailboxes/new", form | {"intent": "apply"})
    assert applied.status_code == 200
    found = re.search(r'<code class="secret">([^<]+)</code>', applied.text)
    assert found, "the generated password is on the page"
    password = html.unescape(found.group(1))
    with make_uow() as uow:
        stored = uow.session.scalar(
            select(Mailbox.password_hash).where(Mailbox.address == "new@a.example")
        )
    assert stored is not None and verify_password(password, stored)
    assert "only time" in applied.text
    detail = web.get("/mailboxes/new@a.example").text
    assert found.group(1) not in detail


# --- one mailbox -------------------------------------------------------------------------------


def test_the_mailbox_page_shows_its_settings_and_aliases(web: Web) -> None:
    response = web.get("/mailboxes/user1@a.example")
    assert response.status_code == 200
    page = response.text
    assert "<h1>user1@a.example</h1>" in page
    assert 'href="/aliases/info%40a.example"' in page
    assert 'href="/mailboxes/user1%40a.example/vacation"' in page
    assert 'href="/mailboxes/user1%40a.example/forwarding"' in page
    assert 'href="/mailboxes/user1%40a.example/edit"' in page


def test_a_hostile_mailbox_name_is_escaped(web: Web, make_uow: UowFactory) -> None:
    create(make_uow, "evil@b.example", name=SCRIPT)
    create(make_uow, "evil2@b.example", name=ATTRIBUTE)
    for path in ("/mailboxes?domain=b.example", "/mailboxes/evil@b.example"):
        page = web.get(path).text
        assert SCRIPT not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for path in ("/mailboxes?domain=b.example", "/mailboxes/evil2@b.example"):
        page = web.get(path).text
        assert ATTRIBUTE not in page
        assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    fragment = web.get("/mailboxes?q=evil", headers=HX).text
    assert SCRIPT not in fragment and ATTRIBUTE not in fragment
    edit = web.get("/mailboxes/evil2@b.example/edit").text
    assert ATTRIBUTE not in edit
    assert 'value="&#34;&#39;&gt;&lt;img' in edit


def test_edit_previews_then_saves(web: Web, make_uow: UowFactory) -> None:
    form = web.get("/mailboxes/user1@a.example/edit")
    assert form.status_code == 200
    assert 'value="1 GiB"' in form.text
    values = {"name": "Jane", "quota": "2G", "active": "on"}
    preview = web.post("/mailboxes/user1@a.example/edit", values | {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert mailbox(make_uow, "user1@a.example").name == ""
    applied = web.post("/mailboxes/user1@a.example/edit", values | {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/mailboxes/user1@a.example?notice=updated"
    saved = mailbox(make_uow, "user1@a.example")
    assert (saved.name, saved.quota_bytes, saved.active) == ("Jane", 2 * GIB, True)
    # Unchecked means inactive.
    web.post("/mailboxes/user1@a.example/edit", {"name": "Jane", "quota": "2G", "intent": "apply"})
    assert mailbox(make_uow, "user1@a.example").active is False


def test_an_unchanged_edit_form_changes_nothing(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        mailboxes.update(
            uow, OPERATOR, "user1@a.example", parse_update({"quota_bytes": 1536 * MIB + 7})
        )
        uow.finish()
    form = web.get("/mailboxes/user1@a.example/edit").text
    quota = re.search(r'name="quota" type="text"\s*value="([^"]*)"', form)
    assert quota and quota.group(1) == str(1536 * MIB + 7)
    preview = web.post(
        "/mailboxes/user1@a.example/edit",
        {"name": "", "quota": quota.group(1), "active": "on", "intent": "preview"},
    )
    assert "this would change nothing" in preview.text


def test_edit_refuses_a_bad_quota_in_place(web: Web, make_uow: UowFactory) -> None:
    response = web.post(
        "/mailboxes/user1@a.example/edit",
        {"name": "Jane", "quota": "12XB", "active": "on", "intent": "apply"},
    )
    assert response.status_code == 422
    assert 'id="quota-error"' in response.text
    assert mailbox(make_uow, "user1@a.example").name == ""


def test_set_password_given_and_generated(web: Web, make_uow: UowFactory) -> None:
    new = "a new fine password"
    both = web.post(
        "/mailboxes/user1@a.example/password",
        {"password": new, "generate": "on", "intent": "apply"},
    )
    assert both.status_code == 422
    assert 'id="password-error"' in both.text
    too_short = web.post(
        "/mailboxes/user1@a.example/password", {"password": "short", "intent": "apply"}
    )
    assert too_short.status_code == 422
    assert 'id="password-error"' in too_short.text
    given = web.post("/mailboxes/user1@a.example/password", {"password": new, "intent": "apply"})
    assert given.status_code == 303
    with make_uow() as uow:
        stored = uow.session.scalar(
            select(Mailbox.password_hash).where(Mailbox.address == "user1@a.example")
        )
    assert stored is not None and verify_password(new, stored)
    generated = web.post(
        "/mailboxes/user1@a.example/password", {"generate": "on", "intent": "apply"}
    )
    assert generated.status_code == 200
    found = re.search(r'<code class="secret">([^<]+)</code>', generated.text)
    assert found
    with make_uow() as uow:
        stored = uow.session.scalar(
            select(Mailbox.password_hash).where(Mailbox.address == "user1@a.example")
        )
    assert stored is not None and verify_password(html.unescape(found.group(1)), stored)
    assert "mailbox.password" in audit_actions(make_uow, "user1@a.example")


def test_remove_is_confirmed_by_its_preview_then_restore(web: Web, make_uow: UowFactory) -> None:
    form = web.get("/mailboxes/user1@a.example/remove")
    assert form.status_code == 200
    assert 'class="danger"' in form.text
    preview = web.post("/mailboxes/user1@a.example/remove", {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert mailbox(make_uow, "user1@a.example").removed_at is None
    removed = web.post("/mailboxes/user1@a.example/remove", {"intent": "apply"})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/mailboxes/user1@a.example?notice=deleted"
    assert mailbox(make_uow, "user1@a.example").removed_at is not None
    detail = web.get(removed.headers["location"]).text
    assert "Removed at" in detail
    assert 'action="/mailboxes/user1%40a.example/restore"' in detail
    listed = web.get("/mailboxes?show=removed").text
    assert "user1@a.example" in listed
    assert "user1@a.example" not in web.get("/mailboxes?domain=a.example").text
    # Removing again is refused in place.
    again = web.post("/mailboxes/user1@a.example/remove", {"intent": "apply"})
    assert again.status_code == 422
    assert "already" in again.text
    preview = web.post("/mailboxes/user1@a.example/restore", {"intent": "preview"})
    assert preview.status_code == 200
    assert mailbox(make_uow, "user1@a.example").removed_at is not None
    restored = web.post("/mailboxes/user1@a.example/restore", {"intent": "apply"})
    assert restored.status_code == 303
    assert restored.headers["location"] == "/mailboxes/user1@a.example?notice=restored"
    assert mailbox(make_uow, "user1@a.example").removed_at is None
    assert audit_actions(make_uow, "user1@a.example")[:2] == ["mailbox.restore", "mailbox.remove"]


def test_a_domain_admin_cannot_remove_the_postmaster(web: Web, make_uow: UowFactory) -> None:
    response = web.post(
        "/mailboxes/postmaster@a.example/remove", {"intent": "apply"}, as_="domain_admin_a"
    )
    assert response.status_code == 422
    assert mailbox(make_uow, "postmaster@a.example").removed_at is None


# --- auto-reply and forwarding ----------------------------------------------------------------


def test_vacation_edit_with_hostile_text_is_escaped(web: Web, make_uow: UowFactory) -> None:
    form = web.get("/mailboxes/user1@a.example/vacation")
    assert form.status_code == 200
    values = {
        "subject": SCRIPT,
        "body": f"Away.\n{ATTRIBUTE}",
        "starts_on": "2030-01-01",
        "ends_on": "2030-01-31",
        "interval_days": "3",
    }
    preview = web.post("/mailboxes/user1@a.example/vacation", values | {"intent": "preview"})
    assert preview.status_code == 200
    assert SCRIPT not in preview.text
    with make_uow() as uow:
        assert vacation.get_vacation(uow, OPERATOR, "user1@a.example").enabled is False
    applied = web.post("/mailboxes/user1@a.example/vacation", values | {"intent": "apply"})
    assert applied.status_code == 303
    with make_uow() as uow:
        saved = vacation.get_vacation(uow, OPERATOR, "user1@a.example")
    assert (saved.enabled, saved.subject, saved.interval_days) == (True, SCRIPT, 3)
    assert saved.starts_on is not None and saved.starts_on.isoformat() == "2030-01-01"
    detail = web.get("/mailboxes/user1@a.example").text
    assert SCRIPT not in detail and ATTRIBUTE not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail
    edit = web.get("/mailboxes/user1@a.example/vacation").text
    assert SCRIPT not in edit and ATTRIBUTE not in edit
    off = web.post("/mailboxes/user1@a.example/vacation/disable", {"intent": "apply"})
    assert off.status_code == 303
    with make_uow() as uow:
        assert vacation.get_vacation(uow, OPERATOR, "user1@a.example").enabled is False


def test_vacation_errors_are_shown_in_place(web: Web, make_uow: UowFactory) -> None:
    values = {
        "subject": "",
        "body": "Away.",
        "starts_on": "2030-02-01",
        "ends_on": "2030-01-01",
        "interval_days": "many",
        "intent": "apply",
    }
    response = web.post("/mailboxes/user1@a.example/vacation", values)
    assert response.status_code == 422
    assert 'id="interval_days-error"' in response.text
    values["interval_days"] = "7"
    response = web.post("/mailboxes/user1@a.example/vacation", values)
    assert response.status_code == 422
    assert 'id="subject-error"' in response.text
    assert 'id="ends_on-error"' in response.text
    with make_uow() as uow:
        assert vacation.get_vacation(uow, OPERATOR, "user1@a.example").subject is None


def test_forwarding_edit(web: Web, make_uow: UowFactory) -> None:
    assert web.get("/mailboxes/user1@a.example/forwarding").status_code == 200
    values = {"targets": "one@elsewhere.example\r\n\r\ntwo@elsewhere.example", "keep_copy": "on"}
    preview = web.post("/mailboxes/user1@a.example/forwarding", values | {"intent": "preview"})
    assert preview.status_code == 200
    with make_uow() as uow:
        assert forwarding.get_forward(uow, OPERATOR, "user1@a.example").enabled is False
    applied = web.post("/mailboxes/user1@a.example/forwarding", values | {"intent": "apply"})
    assert applied.status_code == 303
    with make_uow() as uow:
        saved = forwarding.get_forward(uow, OPERATOR, "user1@a.example")
    assert (saved.enabled, saved.targets, saved.keep_copy) == (
        True,
        ["one@elsewhere.example", "two@elsewhere.example"],
        True,
    )
    detail = web.get("/mailboxes/user1@a.example").text
    assert "two@elsewhere.example" in detail
    bad = web.post(
        "/mailboxes/user1@a.example/forwarding",
        {"targets": "ok@elsewhere.example\n|/bin/sh", "intent": "apply"},
    )
    assert bad.status_code == 422
    assert 'id="targets-error"' in bad.text
    assert "Line 2:" in bad.text
    off = web.post("/mailboxes/user1@a.example/forwarding/disable", {"intent": "apply"})
    assert off.status_code == 303
    with make_uow() as uow:
        assert forwarding.get_forward(uow, OPERATOR, "user1@a.example").enabled is False


# --- app passwords -----------------------------------------------------------------------------


def test_app_passwords_are_listed_and_revoked_after_a_preview(
    web: Web, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        created = apppasswords.create(
            uow, OPERATOR, "user1@a.example", AppPasswordCreate(name=f"phone {SCRIPT}")
        )
        uow.finish()
    detail = web.get("/mailboxes/user1@a.example").text
    assert created.id in detail
    assert created.password not in detail
    assert SCRIPT not in detail
    path = f"/mailboxes/user1@a.example/app-passwords/{created.id}/revoke"
    preview = web.post(path, {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text

    def names() -> list[str]:
        with make_uow() as uow:
            page = apppasswords.list_app_passwords(uow, OPERATOR, "user1@a.example")
        return [item.name for item in page.items]

    assert names() == [f"phone {SCRIPT}"]
    revoked = web.post(path, {"intent": "apply"})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/mailboxes/user1@a.example?notice=revoked"
    assert names() == []


def test_one_page_is_one_query_of_the_mailboxes_table(
    web: Web, make_uow: UowFactory, connection: Connection
) -> None:
    stored = hash_password(PASSWORD, Scheme.SHA256_CRYPT)
    with make_uow() as uow:
        for number in range(30):
            data = parse(MailboxCreate, {"address": f"many{number:02}@b.example"})
            mailboxes.create(uow, OPERATOR, data, password_hash=stored)
            uow.session.add(
                QuotaUsage(username=f"many{number:02}@b.example", bytes=MIB, messages=1)
            )
        uow.finish()
    web.login("superadmin")
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        response = web.get("/mailboxes?q=many", headers=HX)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert response.text.count('data-label="Address"') == 30
    reads = [s for s in seen if re.search(r"\bFROM mailboxes\b", s)]
    assert len(reads) == 1, reads
    # The usage comes with the page (an outer join), and nothing counts the whole table.
    assert "quota_usage" in reads[0]
    assert "count(" not in reads[0].lower()
