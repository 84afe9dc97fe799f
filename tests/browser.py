"""A real browser for tests: Debian's Chromium driven by Playwright's sync API.

Nothing is downloaded: Playwright launches the Chromium at `CHROMIUM_PATH` (default
/usr/bin/chromium; `.ci/run` installs it). Without it the tests that need it skip, except
under CI, where they fail: a browser test that silently skips proves nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# A name this browser resolves to loopback: some pages behave differently on
# localhost/127.0.0.1 than under the host name a clinic would use (Swagger UI, for one).
LOOPBACK_NAME = "clinic.test"


def chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM_PATH", DEFAULT_CHROMIUM)
    return shutil.which(path)


@pytest.fixture(scope="session")
def browser_session() -> Iterator[tuple[Browser, asyncio.AbstractEventLoop | None]]:
    """One Chromium for the session, and the event loop Playwright's sync API runs on."""
    path = chromium_path()
    if path is None:
        wanted = os.environ.get("CHROMIUM_PATH", DEFAULT_CHROMIUM)
        reason = f"no Chromium at {wanted} (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            headless=True,
            # CI runs as root, where Chromium refuses to start sandboxed.
            args=["--no-sandbox", f"--host-resolver-rules=MAP {LOOPBACK_NAME} 127.0.0.1"],
        )
        # While it is open, the sync API marks its own loop as running on this thread, which
        # makes every later async test fail ("cannot be called from a running event loop").
        # So the mark is lent to the tests that use the browser and taken back after each.
        loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)
        try:
            yield browser, loop
        finally:
            asyncio.events._set_running_loop(loop)
            browser.close()


@pytest.fixture
def browser(
    browser_session: tuple[Browser, asyncio.AbstractEventLoop | None],
) -> Iterator[Browser]:
    """The session's Chromium, for one (sync) test; contexts it opens close with the test."""
    browser, loop = browser_session
    asyncio.events._set_running_loop(loop)
    try:
        yield browser
    finally:
        for context in browser.contexts:
            context.close()
        asyncio.events._set_running_loop(None)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies or storage shared between tests)."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass
class Requests:
    """The URL of every request a page made, and of those its browser refused to send."""

    made: list[str] = field(default_factory=list)
    # Refused by the page's Content-Security-Policy: they never reached the network.
    blocked: list[str] = field(default_factory=list)

    def leaving(self, origin: str) -> list[str]:
        """The requests sent beyond `origin` (scheme://host:port); data: and blob: stay put."""
        wanted = urlsplit(origin)[:2]
        return [
            url
            for url in self.made
            if url not in self.blocked
            and urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url)[:2] != wanted
        ]


def record_requests(page: Page) -> Requests:
    """Record, from now on, every request of `page` and of anything it opens; grows live."""
    log = Requests()

    def failed(request: Request) -> None:
        if "csp" in (request.failure or "").lower():
            log.blocked.append(request.url)

    page.context.on("request", lambda request: log.made.append(request.url))
    page.context.on("requestfailed", failed)
    return log
