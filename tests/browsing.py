"""The browser tests' fixtures and helpers (a pytest plugin: tests/conftest.py loads it).

The real service in a real browser: ``lastknown serve --demo`` started as a process
(Uvicorn on a free loopback port, the demo seed in a temporary data folder, SQLite and
the embedded worker; bench/served.py) and Debian's Chromium driven by Playwright's sync
API. There is no skip: without Chromium the tests fail and say how to install it
(``make test`` does, through tools/ensure_chromium.sh). Playwright's own browser
download is never used. Waits are Playwright's auto-waiting ``expect`` (30 s on this
loaded machine), never sleeps as assertions.

(A conftest.py of their own in a subfolder would replace the ``conftest`` module that
other tests import helpers from, so the fixtures live here.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bench.served import Served, ServerFailed, serve_demo
from playwright.sync_api import Browser, Page, expect, sync_playwright

from lastknown.service.demo import DEMO_PASSWORD, DEMO_USERS

CHROMIUM = Path(os.environ.get("LASTKNOWN_CHROMIUM", "/usr/bin/chromium"))
#: What a headless Chromium needs on these machines (no sandbox as root, no GPU, no
#: calls home: the network is closed and background fetches would be refused).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
#: Every screenshot the walks take; each is committed as docs/screenshots/NAME.png and
#: shown in docs/SERVICE.md (test_browser_session.py checks both).
SCREENSHOTS = ("login", "login-failed", "home-submitter", "home-officer", "home-auditor",
               "home-admin", "admin-agencies", "admin-users", "auditor-verify",
               "auditor-access-log", "batch-new", "batch-held", "review", "review-sample",
               "batch-released", "auditor-download-logged", "review-denied", "batch-denied")
WAIT_MS = 30_000
#: How long a page may take to show a batch prepared (matching, on a loaded machine).
PREPARE_MS = 240_000
DISPLAY_NAMES = {u.username: u.display_name for u in DEMO_USERS}
expect.set_options(timeout=WAIT_MS)


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """Keep a picture of the page as the user sees it (not compared pixel by pixel)."""
    assert name in SCREENSHOTS, f"add {name!r} to SCREENSHOTS"
    path = folder / f"{name}.png"
    page.screenshot(path=path, animations="disabled")
    assert path.stat().st_size > 2_000, f"{path} is nearly empty"
    return path


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD,
            display_name: str | None = None) -> None:
    """Through the login form, as a person types it; ends on the role's home page."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Welcome, {display_name or DISPLAY_NAMES[username]}")


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
