"""Signing in and out, and the administrator's and auditor's pages, walked in Chromium
against ``lastknown serve --demo`` as people use them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browsing import ROOT, SCREENSHOTS, screenshot, sign_in
from lastknown.service.demo import DEMO_AGENCY, DEMO_PASSWORD, DEMO_USERS

HOME_SHOWS = {  # what each role's home page offers
    "submitter": DEMO_AGENCY,
    "officer": "approve or deny with a written reason",
    "auditor": "Verify the ledger",
    "admin": "Agencies",
}


@pytest.mark.parametrize("username", ["submitter", "officer", "auditor", "admin"])
def test_each_demo_role_signs_in_to_its_home(page: Page, shots: Path, username: str) -> None:
    user = next(u for u in DEMO_USERS if u.username == username)
    page.goto("/")  # signed out: sent to the login page
    expect(page).to_have_url(re.compile(r"/login"))
    if username == "submitter":
        screenshot(page, shots, "login")
    sign_in(page, username)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header .who")).to_contain_text(f"{user.display_name} · {username}")
    expect(page.locator("main")).to_contain_text(HOME_SHOWS[username])
    screenshot(page, shots, f"home-{username}")


def test_wrong_password_shows_an_error_and_signs_nobody_in(page: Page, shots: Path) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("officer2")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("p.problem")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("body")).not_to_contain_text("not the password")
    screenshot(page, shots, "login-failed")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_sign_out_ends_the_session(page: Page) -> None:
    sign_in(page, "officer")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_admin_creates_an_agency_and_a_user_and_the_auditor_sees_it(
        new_page: Callable[[], Page], shots: Path) -> None:
    admin = new_page()
    sign_in(admin, "admin")
    admin.get_by_role("navigation").get_by_role("link", name="Agencies").click()
    expect(admin.get_by_role("heading", name="Requesting agencies")).to_be_visible()
    new_agency = admin.locator("form[action='/admin/agencies']")
    new_agency.get_by_label("Name").fill("U.S. Secret Service")
    new_agency.get_by_label("Authorised statutes").fill("18 U.S.C. 3056")
    new_agency.get_by_label("Max rows per batch").fill("250")
    new_agency.get_by_role("button", name="Create agency").click()
    expect(admin.locator("p.notice")).to_have_text("Created.")
    card = admin.locator("section.card", has=admin.get_by_role(
        "heading", name="U.S. Secret Service"))
    expect(card.get_by_label("Max rows per batch")).to_have_value("250")
    screenshot(admin, shots, "admin-agencies")

    admin.get_by_role("navigation").get_by_role("link", name="Users").click()
    new_user = admin.locator("form[action='/admin/users']")
    new_user.get_by_label("Username").fill("usss-analyst")
    new_user.get_by_label("Display name").fill("Una Analyst (USSS)")
    new_user.get_by_label("Role").select_option("submitter")
    new_user.get_by_label("Agency").select_option("U.S. Secret Service")
    new_user.get_by_label("Password").fill("a long enough password")
    new_user.get_by_role("button", name="Create user").click()
    expect(admin.locator("p.notice")).to_have_text("Created.")
    expect(admin.get_by_role("row", name=re.compile("usss-analyst"))).to_be_visible()
    screenshot(admin, shots, "admin-users")

    analyst = new_page()  # the new user, at another desk: a typo first
    analyst.goto("/login")
    analyst.get_by_label("Username").fill("usss-analyst")
    analyst.get_by_label("Password").fill("a long enough passwort")
    analyst.get_by_role("button", name="Sign in").click()
    expect(analyst.locator("p.problem")).to_be_visible()
    sign_in(analyst, "usss-analyst", "a long enough password", "Una Analyst (USSS)")
    expect(analyst.locator("header .who")).to_contain_text("U.S. Secret Service")

    auditor = new_page()
    sign_in(auditor, "auditor")
    auditor.get_by_role("navigation").get_by_role("link", name="Verify ledger").click()
    expect(auditor.locator("p.ok")).to_have_text("The ledger verifies.")
    screenshot(auditor, shots, "auditor-verify")
    auditor.get_by_role("navigation").get_by_role("link", name="Access log").click()
    auditor.get_by_label("User").fill("admin")
    auditor.get_by_role("button", name="Filter").click()
    log = auditor.locator("table tbody")
    expect(log.get_by_role("row", name=re.compile("created user usss-analyst"))).to_be_visible()
    expect(log.get_by_role("row").first).to_contain_text("admin")
    screenshot(auditor, shots, "auditor-access-log")
    auditor.get_by_label("User").fill("usss-analyst")
    auditor.get_by_label("Outcome").select_option("failure")
    auditor.get_by_role("button", name="Filter").click()
    expect(log.get_by_role("row")).to_have_count(1)
    expect(log.get_by_role("row")).to_contain_text("login")
    assert DEMO_PASSWORD not in auditor.content()


def test_screenshots_are_committed_and_shown_in_the_service_doc() -> None:
    doc = (ROOT / "docs" / "SERVICE.md").read_text(encoding="utf-8")
    for name in SCREENSHOTS:
        path = ROOT / "docs" / "screenshots" / f"{name}.png"
        assert path.exists(), f"{path} missing: run the browser tests with LASTKNOWN_SCREENSHOTS=1"
        assert 2_000 < path.stat().st_size < 250_000, path
        assert f"screenshots/{name}.png" in doc, f"docs/SERVICE.md does not show {name}"
