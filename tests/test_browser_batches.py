"""The disclosure flow in Chromium, as its people do it: the agency's analyst uploads the
demo's sample request, the disclosure officer reviews it (counts, policy, the sample's
weight bars) and approves or denies it, the analyst downloads what was released (another
agency's analyst finds nothing there), and the auditor finds the download in the access
log. No page, and no file of the package,
carries a TIN of the master."""

from __future__ import annotations

import csv
import io
import re
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from bench.served import Served
from playwright.sync_api import Page, expect

from browsing import PREPARE_MS, screenshot, sign_in

TIN = re.compile(r"(?<!\d)\d{9}(?!\d)")


@pytest.fixture(scope="module")
def master_tins(server: Served) -> set[str]:
    master = server.demo / "synth" / "master"
    pattern = str(master / "**" / "*.parquet") if master.is_dir() else str(master)
    tins = {row[0] for row in duckdb.sql(
        f"SELECT DISTINCT tin FROM read_parquet('{pattern}')").fetchall()}
    assert len(tins) > 1000
    return tins


def assert_no_tin(text: str, tins: set[str], where: str) -> None:
    leaked = set(TIN.findall(text)) & tins
    assert not leaked, f"{len(leaked)} TIN(s) of the master in {where}"


def submit_sample(page: Page, server: Served, batch_id: str, shots: Path | None) -> None:
    """As the signed-in submitter: the submit form, filled from the demo's batch.toml."""
    batch = tomllib.loads((server.sample / "batch.toml").read_text(encoding="utf-8"))
    page.get_by_role("navigation").get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Submit a request").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Submit a request")
    page.get_by_label("Request file").set_input_files(server.sample / "request.csv")
    page.get_by_label("Batch id").fill(batch_id)
    page.get_by_label("Requesting official").fill(batch["requesting_official"])
    page.get_by_label("Official's title").fill(batch["official_title"])
    page.get_by_label("Reason for the request").fill(batch["reason"])
    page.get_by_label("I certify").check()
    if shots:
        screenshot(page, shots, "batch-new")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Batch {batch_id}")
    # the page refreshes itself while the batch is prepared
    expect(page.locator(".st")).to_have_text("held for review", timeout=PREPARE_MS)


def open_review(page: Page, batch_id: str) -> None:
    """As the signed-in officer: from the review queue to the batch's review page."""
    page.get_by_role("navigation").get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Review queue").first.click()
    held = page.locator("table").first
    held.get_by_role("link", name=batch_id).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Batch {batch_id}")


def test_submit_review_approve_download_and_the_auditor_sees_it(
        new_page: Callable[[], Page], server: Served, shots: Path, tmp_path: Path,
        master_tins: set[str]) -> None:
    seen: list[tuple[str, str]] = []  # every page the three people saw

    submitter = new_page()
    sign_in(submitter, "submitter")
    submit_sample(submitter, server, "WALK-APPROVE", shots)
    seen.append(("submitter: held", submitter.content()))
    screenshot(submitter, shots, "batch-held")

    officer = new_page()
    sign_in(officer, "officer")
    open_review(officer, "WALK-APPROVE")
    expect(officer.get_by_role("heading", name="Outcomes", exact=True)).to_be_visible()
    expect(officer.get_by_role("heading", name="Policy", exact=True)).to_be_visible()
    bars = officer.locator("svg.bars").first  # the per-comparison weights as a bar chart
    expect(bars).to_be_visible()
    expect(bars.locator("rect").first).to_be_visible()
    seen.append(("officer: review", officer.content()))
    screenshot(officer, shots, "review")
    bars.scroll_into_view_if_needed()
    screenshot(officer, shots, "review-sample")
    officer.get_by_role("button", name="Approve and release").click()
    expect(officer.locator("h1 .st")).to_have_text("released")
    seen.append(("officer: approved", officer.content()))

    submitter.reload()
    expect(submitter.locator("p.ok")).to_contain_text("approved by officer")
    seen.append(("submitter: released", submitter.content()))
    screenshot(submitter, shots, "batch-released")
    with submitter.expect_download() as download:
        submitter.get_by_role("link", name="Download the package (zip)").click()
    package = tmp_path / "package.zip"
    download.value.save_as(package)
    with zipfile.ZipFile(package) as archive:
        files = {Path(name).name: archive.read(name) for name in archive.namelist()}
    assert {"matched.csv", "unmatched.csv", "rejected.csv", "receipt.json"} <= set(files)
    for name, content in files.items():
        if not name.endswith(".xlsx"):
            assert_no_tin(content.decode("utf-8"), master_tins, f"the package's {name}")
    matched = list(csv.DictReader(io.StringIO(files["matched.csv"].decode("utf-8"))))
    assert matched, "the sample request should match some rows"
    assert not any("tin" in column.lower() for column in matched[0])
    for row in matched:
        assert row["street"] and row["city"] and row["state"] and row["zip"], row

    other_agency = new_page()  # the Marshals' analyst: as if the batch did not exist
    sign_in(other_agency, "submitter2")
    answers = []
    for batch_id in ("WALK-APPROVE", "NO-SUCH-BATCH"):
        for path in (f"/batches/{batch_id}", f"/batches/{batch_id}/package.zip"):
            response = other_agency.goto(path)
            assert response is not None and response.status == 404, path
            answers.append(other_agency.locator("main").inner_text().replace(batch_id, "X"))
    assert answers[:2] == answers[2:]  # the same as for a batch that does not exist

    auditor = new_page()
    sign_in(auditor, "auditor")
    auditor.get_by_role("navigation").get_by_role("link", name="Access log").click()
    auditor.get_by_label("User").fill("submitter")
    auditor.get_by_role("button", name="Filter").click()
    download_row = auditor.get_by_role("row", name=re.compile(
        "downloaded the package of batch WALK-APPROVE"))
    expect(download_row).to_be_visible()
    expect(download_row).to_contain_text("200 ok")
    seen.append(("auditor: access log", auditor.content()))
    screenshot(auditor, shots, "auditor-download-logged")
    auditor.get_by_role("navigation").get_by_role("link", name="Verify ledger").click()
    expect(auditor.locator("p.ok")).to_have_text("The ledger verifies.")
    for where, html in seen:
        assert_no_tin(html, master_tins, where)


def test_submit_then_deny_discloses_nothing(new_page: Callable[[], Page], server: Served,
                                             shots: Path, master_tins: set[str]) -> None:
    submitter = new_page()
    sign_in(submitter, "submitter")
    submit_sample(submitter, server, "WALK-DENY", None)

    officer = new_page()
    sign_in(officer, "officer")
    open_review(officer, "WALK-DENY")
    reason = "The certification names no investigation for these rows"
    officer.get_by_label("Reason for denying").fill(reason)
    officer.get_by_role("button", name="Deny").click()
    expect(officer.locator("h1 .st")).to_have_text("denied")
    expect(officer.locator("main")).to_contain_text(reason)
    expect(officer.get_by_role("button", name="Approve and release")).to_have_count(0)
    officer.get_by_text("Denied by officer").scroll_into_view_if_needed()
    screenshot(officer, shots, "review-denied")

    submitter.reload()
    expect(submitter.locator("p.problem")).to_contain_text(reason)
    expect(submitter.locator("main")).to_contain_text("Nothing of this batch was disclosed.")
    expect(submitter.get_by_role("link", name=re.compile("Download"))).to_have_count(0)
    screenshot(submitter, shots, "batch-denied")
    assert_no_tin(submitter.content(), master_tins, "the denied batch's page")
    for path in ("/batches/WALK-DENY/package.zip", "/api/batches/WALK-DENY/package"):
        assert submitter.request.get(path).status == 404, path
