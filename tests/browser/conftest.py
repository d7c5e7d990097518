"""The real service in a real browser: ``lastknown serve --demo`` started as a process
(Uvicorn on a free loopback port, the demo seed in a temporary data folder, SQLite and
the embedded worker) and Debian's Chromium driven by Playwright's sync API.

There is no skip: without Chromium these tests fail and say how to install it
(``make test`` does, through tools/ensure_chromium.sh). Playwright's own browser
download is never used. Waits are Playwright's auto-waiting ``expect`` (30 s on this
loaded machine), never sleeps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bench.served import Served, ServerFailed, serve_demo
from browsing import CHROMIUM, CHROMIUM_ARGS, ROOT, WAIT_MS
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`lastknown serve --demo` as a user starts it, in its own data folder."""
    try:
        with serve_demo(tmp_path_factory.mktemp("served")) as served:
            yield served
    except ServerFailed as failure:
        pytest.fail(str(failure))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
                    "`make test` installs it (tools/ensure_chromium.sh); or, as root, "
                    "`apt-get install -y chromium`.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, server: Served) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a page in a fresh browser profile (own cookies), as a second person
    at another desk; all are closed after the test."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(base_url=server.url, viewport={"width": 1100,
                                                                     "height": 720})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: a temp folder, or docs/screenshots when
    ``LASTKNOWN_SCREENSHOTS=1`` (to refresh the committed ones)."""
    if os.environ.get("LASTKNOWN_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")
