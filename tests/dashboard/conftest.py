"""Playwright on Debian's chromium (headless, never downloaded) against a real coordinator over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.coordinator.server import RunningCoordinator
from tests.services import chromium_path

#: Flags for a quiet, self-contained headless chromium: no sandbox (containers), GPU or calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: How long a page may take to show what a test waits for (the screen polls every 1.5 s).
PAGE_TIMEOUT_MS = 10_000
#: Render times measured by the browser, printed at the end of the run (never asserted).
RENDER_TIMES: list[str] = []

expect.set_options(timeout=PAGE_TIMEOUT_MS)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RENDER_TIMES:
        terminalreporter.section("operator screen render times (browser performance API)")
        for line in RENDER_TIMES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[PageOpener]:
    opener = PageOpener(browser)
    yield opener
    opener.close()


@pytest.fixture
def page(open_page: PageOpener, server: RunningCoordinator) -> Page:
    """The screen in pt-BR (the operators' language) on ``server``."""
    return open_page(server.url + "/")


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/`` at the project root (git-ignored): screenshots a person can look at."""
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


class PageOpener:
    """Opens pages in fresh browser contexts (own storage, own language); fails the test on a script error."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def __call__(
        self,
        url: str,
        *,
        locale: str = "pt-BR",
        width: int = 1500,
        height: int = 900,
        prepare: Callable[[Page], object] | None = None,
    ) -> Page:
        """``prepare``: called with the page before it goes to ``url`` (to route its requests, say)."""
        context = self.browser.new_context(locale=locale, viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        if prepare is not None:
            prepare(page)
        page.goto(url)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        assert self.errors == [], f"the page raised script errors: {self.errors}"
