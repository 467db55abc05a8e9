"""Debian's Chromium under Playwright: launch, screenshots, and the errors a page must not show.

The browser is always /usr/bin/chromium (installed by `python -m tests.support.services`);
Playwright's own browser builds are never downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    WebError,
)

from .services import CHROMIUM

REPO_ROOT = Path(__file__).resolve().parents[2]
# Named by the README; ignored by git (`/artifacts/` in .gitignore).
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Only this machine resolves: a page that pulls anything from a third party (a CDN, fonts)
    # fails its test, whether or not the machine running the suite is online.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# Long enough for a slow CI machine, short enough that a missing element fails quickly.
ACTION_TIMEOUT_MS = 10_000

# `01-setup`, `12-mailbox-list`: stable names, sorted in the order the README shows them.
_SCREENSHOT_NAME = re.compile(r"[0-9]{2}-[a-z0-9]+(?:-[a-z0-9]+)*")


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium; each launch gets a fresh profile in a directory Playwright
    creates and removes (it refuses a `--user-data-dir` argument)."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(
            f"{CHROMIUM} is missing: run `python -m tests.support.services` as root "
            "(it installs Debian's chromium package)"
        )
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )


_EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: .* status of (401|422) ")


@dataclass
class BrowserErrors:
    """What went wrong in the pages of the contexts it watches: console errors (CSP
    violations among them), uncaught exceptions and requests that failed."""

    seen: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("requestfailed", self._on_request_failed)

    def assert_none(self) -> None:
        assert not self.seen, "the browser reported errors:\n" + "\n".join(self.seen)

    def _on_console(self, message: ConsoleMessage) -> None:
        url = message.location["url"]
        # Chromium asks for /favicon.ico by itself on pages that name no icon (JSON, the API
        # docs); its 404 says nothing about the page.
        if message.type != "error" or urlsplit(url).path == "/favicon.ico":
            return
        # A form answered with its errors in place (422) or a refused login (401) is the page
        # working as meant; Chromium still logs the status as an error.
        if _EXPECTED_REFUSAL.search(message.text):
            return
        self.seen.append(f"console error at {url}: {message.text}")

    def _on_web_error(self, error: WebError) -> None:
        self.seen.append(f"uncaught exception: {error.error}")

    def _on_request_failed(self, request: Request) -> None:
        failure = request.failure or "unknown failure"
        # The browser's own cancellation (a navigation away, a closed page), not a failure.
        if failure == "net::ERR_ABORTED":
            return
        self.seen.append(f"request failed: {request.method} {request.url}: {failure}")


@contextmanager
def open_page(browser: Browser, errors: BrowserErrors, **options: Any) -> Iterator[Page]:
    """A page in a fresh context (no cookies, no storage), watched by `errors`; `options` go
    to `Browser.new_context` (viewport, is_mobile, has_touch, base_url, ...)."""
    # Fixed locale, time zone and motion: screenshots come out the same on every machine.
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", reduced_motion="reduce", **options
    )
    try:
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        errors.watch(context)
        yield context.new_page()
    finally:
        # Closing first delivers every event still in flight to `errors`.
        context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as artifacts/screenshots/<name>.png (name like `01-setup`)."""
    stem = name.removesuffix(".png")
    if not _SCREENSHOT_NAME.fullmatch(stem):
        raise ValueError(f"screenshot name {name!r} is not like '01-setup'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{stem}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    return path
