"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, against a real
`mailwarden serve` process.

- `browser`: one headless Chromium per test worker.
- `page` (1280x800) and `phone_page` (390x844, touch): each in a fresh context. Console
  errors, uncaught exceptions and failed requests fail the test, unless it is marked
  `@pytest.mark.browser_errors_expected` (it then reads them from `browser_errors.seen`).
- `console_server` (one per module) and `fresh_console_server` (one per test): a serve process
  on an empty, migrated SQLite database; see console_server.ConsoleServer.
- Screenshots: `tests.support.browser.screenshot(page, "01-setup")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.console_server import ConsoleServer, running_console_server
from tests.support.browser import DESKTOP, PHONE, BrowserErrors, launch_chromium, open_page

ERRORS_EXPECTED = "browser_errors_expected"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ERRORS_EXPECTED}: the test provokes browser errors and checks browser_errors itself",
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_errors(request: pytest.FixtureRequest) -> Iterator[BrowserErrors]:
    errors = BrowserErrors()
    yield errors
    # The pages' contexts are closed by now (they depend on this fixture), so every event
    # the browser sent has arrived.
    if request.node.get_closest_marker(ERRORS_EXPECTED) is None:
        errors.assert_none()


@pytest.fixture
def page(browser: Browser, browser_errors: BrowserErrors) -> Iterator[Page]:
    with open_page(browser, browser_errors, viewport=DESKTOP) as desktop:
        yield desktop


@pytest.fixture
def phone_page(browser: Browser, browser_errors: BrowserErrors) -> Iterator[Page]:
    with open_page(
        browser, browser_errors, viewport=PHONE, is_mobile=True, has_touch=True
    ) as phone:
        yield phone


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    with running_console_server(tmp_path_factory.mktemp("console")) as server:
        yield server


@pytest.fixture
def fresh_console_server(tmp_path: Path) -> Iterator[ConsoleServer]:
    """A server of this test alone: first start, empty database, setup link not yet used."""
    with running_console_server(tmp_path) as server:
        yield server
