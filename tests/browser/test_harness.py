"""The browser harness itself: Debian's Chromium opens pages of a real `mailwarden serve`,
screenshots land in artifacts/screenshots/, the phone viewport is a phone's, and what goes
wrong in a page fails the test."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.browser.console_server import ConsoleServer
from tests.support.browser import SCREENSHOTS, BrowserErrors, open_page, screenshot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_chromium_reads_healthz_from_a_real_serve_process(
    console_server: ConsoleServer, page: Page
) -> None:
    response = page.goto(console_server.url("/healthz"))
    assert response is not None and response.status == 200
    assert response.json() == {"status": "ok", "database": True}
    assert '"status":"ok"' in page.locator("body").inner_text()

    path = screenshot(page, "00-harness")
    assert path == SCREENSHOTS / "00-harness.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)

    # What the server prints is there for the tests to read.
    console_server.wait_for_output(r'"GET /healthz HTTP/1\.1" 200')


def test_the_phone_page_is_a_touch_screen_390_pixels_wide(phone_page: Page) -> None:
    # As on a real phone, a page without this tag is laid out 980 pixels wide and zoomed out.
    phone_page.set_content('<meta name="viewport" content="width=device-width, initial-scale=1">')
    assert phone_page.viewport_size == {"width": 390, "height": 844}
    assert phone_page.evaluate("window.innerWidth") == 390
    assert phone_page.evaluate("navigator.maxTouchPoints") > 0
    assert phone_page.evaluate("matchMedia('(pointer: coarse)').matches") is True


def test_each_test_starts_alone_in_an_empty_context(browser: Browser, page: Page) -> None:
    assert page.url == "about:blank"
    assert page.context.cookies() == []
    assert page.context.pages == [page]
    # The worker's one browser holds no other context: the previous test's was closed.
    assert browser.contexts == [page.context]


def test_console_errors_exceptions_and_csp_violations_are_reported(
    browser: Browser, console_server: ConsoleServer
) -> None:
    probe = console_server.url("/csp-probe")

    def strict_page(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'self'"},
            body="<p>probe</p><script>document.title = 'inline ran'</script>",
        )

    errors = BrowserErrors()
    with open_page(browser, errors) as page:
        page.set_content("<script>console.error('broken'); throw new Error('uncaught')</script>")
        page.route(probe, strict_page)
        page.goto(probe)
        assert page.title() != "inline ran"
    with pytest.raises(AssertionError, match="the browser reported errors"):
        errors.assert_none()
    assert any("console error" in line and "broken" in line for line in errors.seen)
    assert any(line.startswith("uncaught exception") for line in errors.seen)
    assert any("Content Security Policy" in line for line in errors.seen), errors.seen


@pytest.mark.browser_errors_expected
def test_a_page_cannot_reach_beyond_this_machine(
    console_server: ConsoleServer, page: Page, browser_errors: BrowserErrors
) -> None:
    # Swagger UI loads its scripts from a CDN: here they fail, and the failure is reported.
    page.goto(console_server.url("/api/docs"))
    assert "Swagger UI" in page.title()
    failed = [line for line in browser_errors.seen if line.startswith("request failed")]
    assert failed, browser_errors.seen
    assert all("net::ERR_NAME_NOT_RESOLVED" in line for line in failed), failed


def test_a_fresh_server_has_its_own_database_and_prints_a_setup_link(
    console_server: ConsoleServer, fresh_console_server: ConsoleServer, page: Page
) -> None:
    assert fresh_console_server.base_url != console_server.base_url
    assert fresh_console_server.database_url != console_server.database_url
    response = page.goto(fresh_console_server.url("/healthz"))
    assert response is not None and response.status == 200
    link = fresh_console_server.setup_link()
    assert link.startswith(f"{fresh_console_server.base_url}/setup?token=")
