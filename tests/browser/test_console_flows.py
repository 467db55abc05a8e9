"""The console and the portal in Debian's Chromium, as people use them: first-start setup,
2FA enrolment and a login with a TOTP code, a domain and a mailbox made with preview then apply,
search as you type, quota bars, the audit filter, the portal's password and vacation, and a
registration approved by the admin. Screenshots of the main pages land in
artifacts/screenshots/.

One story per test, on its own fresh server: each step needs the one before.
"""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, text

from tests.browser.console_server import ConsoleServer
from tests.support.browser import screenshot

ADMIN = "ops@example.org"
ADMIN_PASSWORD = "correct horse battery staple"
MAILBOX = "alice@example.org"
MAILBOX_PASSWORD = "alice's first password"


def apply(page: Page, form: str = "form") -> None:
    page.locator(form).locator('button[name="intent"][value="apply"]').click()


def preview(page: Page, form: str = "form") -> None:
    page.locator(form).locator('button[name="intent"][value="preview"]').click()


def set_up(page: Page, server: ConsoleServer) -> None:
    page.goto(server.setup_link())
    expect(page).to_have_title(re.compile("Set up"))
    page.get_by_label("Superadmin username").fill(ADMIN)
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_label("Password again").fill(ADMIN_PASSWORD)
    page.get_by_label("First domain (optional)").fill("example.org")
    screenshot(page, "01-setup")
    page.get_by_role("button", name="Create superadmin").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def enrol_totp(page: Page) -> pyotp.TOTP:
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/account/two-factor")
    page.get_by_role("button", name="Set up two-factor authentication").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    screenshot(page, "03-two-factor-enrolment")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from your app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.locator(".recovery-codes li").count() == 10
    return totp


def log_in_with_totp(page: Page, server: ConsoleServer, totp: pyotp.TOTP) -> None:
    page.goto(server.url("/login"))
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
    # The enrolment used up the current step's code; the next step's is accepted too.
    page.get_by_label("Code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_an_admin_sets_up_enrols_logs_in_and_manages_mail(
    fresh_console_server: ConsoleServer, page: Page
) -> None:
    server = fresh_console_server
    set_up(page, server)
    screenshot(page, "02-dashboard")
    totp = enrol_totp(page)
    page.goto(server.url("/account"))
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Mailwarden")).to_be_visible()
    log_in_with_totp(page, server, totp)

    # A domain: preview shows the plan and changes nothing, apply creates it.
    page.goto(server.url("/domains/new"))
    page.get_by_label("Domain name").fill("shop.example")
    page.get_by_label("Description").fill("The shop's mail")
    preview(page)
    expect(page.get_by_role("heading", name=re.compile("Preview"))).to_be_visible()
    screenshot(page, "04-domain-preview")
    page.goto(server.url("/domains"))
    expect(page.get_by_text("shop.example")).to_have_count(0)
    page.goto(server.url("/domains/new"))
    page.get_by_label("Domain name").fill("shop.example")
    apply(page)
    page.goto(server.url("/domains"))
    expect(page.get_by_role("link", name="shop.example")).to_be_visible()
    screenshot(page, "05-domains")

    # A mailbox, with a field error shown in place first.
    page.goto(server.url("/mailboxes/new"))
    page.get_by_label("Address").fill("not an address")
    preview(page)
    expect(page.locator("#address-error")).to_be_visible()
    page.get_by_label("Address").fill(MAILBOX)
    page.get_by_label("Name").fill("Alice Example")
    page.get_by_label("Password", exact=True).fill(MAILBOX_PASSWORD)
    page.get_by_label("Quota", exact=True).fill("1G")
    preview(page)
    expect(page.locator(".plan")).to_contain_text(MAILBOX)
    screenshot(page, "06-mailbox-preview")
    page.get_by_label("Password", exact=True).fill(MAILBOX_PASSWORD)
    apply(page)
    for local in ("bob", "carol", "dave"):
        page.goto(server.url("/mailboxes/new"))
        page.get_by_label("Address").fill(f"{local}@example.org")
        page.get_by_label("Password", exact=True).fill(MAILBOX_PASSWORD)
        apply(page)

    # Dovecot's quota_clone writes usage into the database; here the test does.
    engine = create_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO quota_usage (username, bytes, messages) VALUES (:u, :b, 12)"),
            {"u": MAILBOX, "b": 950 * 1024 * 1024},
        )
    engine.dispose()

    # Keyboard first: the first Tab reaches the skip link, which moves focus to the content.
    page.goto(server.url("/mailboxes"))
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    # Search as you type: the rows change without a page load.
    page.goto(server.url("/mailboxes"))
    expect(page.locator("#mailbox-rows tr")).to_have_count(4)
    page.get_by_label("Search").press_sequentially("ali", delay=50)
    expect(page.locator("#mailbox-rows tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=ali"))
    bar = page.locator("#mailbox-rows progress")
    expect(bar).to_have_attribute("value", "93")
    expect(bar).to_have_class(re.compile("high"))
    screenshot(page, "07-mailboxes-search-quota")

    # The audit log, filtered by action.
    page.goto(server.url("/audit"))
    page.get_by_label("Action").fill("mailbox.create")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=mailbox\.create"))
    results = page.locator("#audit-results")
    expect(results).to_contain_text(MAILBOX)
    expect(results).not_to_contain_text("domain.create")
    screenshot(page, "08-audit-filter")


def test_a_mailbox_user_and_a_visitor_use_the_portal_and_an_admin_approves(
    fresh_console_server: ConsoleServer, page: Page, browser: Browser
) -> None:
    server = fresh_console_server
    set_up(page, server)
    page.goto(server.url("/mailboxes/new"))
    page.get_by_label("Address").fill(MAILBOX)
    page.get_by_label("Password", exact=True).fill(MAILBOX_PASSWORD)
    apply(page)
    page.goto(server.url("/domains/example.org/edit"))
    page.get_by_label(re.compile("Visitors may ask for a mailbox")).check()
    apply(page)

    # The mailbox user, in a browser of its own.
    portal = browser.new_context().new_page()
    portal.goto(server.url("/portal/login"))
    portal.get_by_label("Email address").fill(MAILBOX)
    portal.get_by_label("Password").fill(MAILBOX_PASSWORD)
    portal.get_by_role("button", name="Log in").click()
    expect(portal.get_by_role("heading", name=re.compile(MAILBOX))).to_be_visible()
    screenshot(portal, "09-portal-overview")
    portal.goto(server.url("/portal/password"))
    portal.get_by_label("Current password").fill(MAILBOX_PASSWORD)
    portal.get_by_label("New password", exact=True).fill("alice's second password")
    portal.get_by_label("New password again").fill("alice's second password")
    portal.get_by_role("button", name="Change password").click()
    expect(portal.get_by_role("status")).to_contain_text("password")
    portal.goto(server.url("/portal/vacation"))
    portal.get_by_label("Send automatic replies").check()
    portal.get_by_label("Subject").fill("Away <until Monday>")
    portal.get_by_label("Message").fill("I read mail again on Monday.")
    portal.get_by_role("button", name="Save").click()
    portal.goto(server.url("/portal/vacation"))
    expect(portal.get_by_label("Subject")).to_have_value("Away <until Monday>")
    screenshot(portal, "10-portal-vacation")
    portal.context.close()

    # A visitor asks for a mailbox.
    visitor = browser.new_context().new_page()
    visitor.goto(server.url("/register"))
    visitor.get_by_label("Email address you would like").fill("newbie@example.org")
    visitor.get_by_label("Your name").fill("New Person")
    visitor.get_by_label("Password", exact=True).fill("newbie's own password")
    visitor.get_by_label("Password again").fill("newbie's own password")
    screenshot(visitor, "11-register")
    visitor.get_by_role("button", name="Send request").click()
    expect(visitor).to_have_url(re.compile("/register/sent"))
    visitor.context.close()

    # The admin approves it: preview first, then apply.
    page.goto(server.url("/registrations"))
    page.get_by_role("link", name="newbie@example.org").click()
    preview(page, 'form[action$="/approve"]')
    expect(page.locator(".plan")).to_contain_text("newbie@example.org")
    screenshot(page, "12-registration-approval")
    apply(page, 'form[action$="/approve"]')
    expect(page.get_by_role("status")).to_contain_text("Approved")

    # The new mailbox logs in to the portal with the password its owner chose.
    newbie = browser.new_context().new_page()
    newbie.goto(server.url("/portal/login"))
    newbie.get_by_label("Email address").fill("newbie@example.org")
    newbie.get_by_label("Password").fill("newbie's own password")
    newbie.get_by_role("button", name="Log in").click()
    expect(newbie.get_by_role("heading", name=re.compile("newbie@example.org"))).to_be_visible()
    newbie.context.close()


def test_the_mailbox_list_works_on_a_phone(
    fresh_console_server: ConsoleServer, phone_page: Page
) -> None:
    set_up(phone_page, fresh_console_server)
    phone_page.goto(fresh_console_server.url("/mailboxes"))
    menu = phone_page.locator(".nav-menu > summary")
    expect(menu).to_be_visible()
    menu.click()
    expect(phone_page.get_by_role("link", name="Audit log")).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    screenshot(phone_page, "13-phone-menu")
