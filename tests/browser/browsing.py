"""What the browser walks share: how Chromium is started, signing in, screenshots."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from lastknown.service.demo import DEMO_PASSWORD, DEMO_USERS

CHROMIUM = Path(os.environ.get("LASTKNOWN_CHROMIUM", "/usr/bin/chromium"))
#: What a headless Chromium needs on these machines (no sandbox as root, no GPU, no
#: calls home: the network is closed and background fetches would be refused).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
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
