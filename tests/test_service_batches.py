"""The batch pages and API end to end: submit → prepare (embedded worker) → held →
review → approve → download → ledger verify; deny; agency isolation; the upload limit;
the access log; and a scan of every reply for the master's TINs."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from batch_helpers import (
    SEEN,
    call,
    form_values,
    held_batch,
    request_of,
    running_app,
    service_settings,
    submit_api,
    submit_page,
    wait_settled,
)
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.ledger.models import batches as ledger_batches
from lastknown.disclose.ledger.models import disclosures
from lastknown.service import accounts
from lastknown.service import db as t
from lastknown.service.app import job_queue
from lastknown.service.db import AppDB
from lastknown.service.jobs.store import jobs, now_utc
from lastknown.service.settings import ServiceSettings
from service_helpers import AGENCY_A, login, make_client
from test_workflow import Synth, make_synth


class World:
    def __init__(self, client: TestClient, db: AppDB, settings: ServiceSettings,
                 synth: Synth) -> None:
        self.client, self.db, self.settings, self.synth = client, db, settings, synth

    def ledger_counts(self, batch_id: str | None = None) -> tuple[int, int]:
        """(batch records, disclosures) in the ledger, of one batch or all."""
        ledger = open_ledger(self.settings.deployment.ledger)
        try:
            with ledger.connect() as conn:
                b = sa.select(sa.func.count()).select_from(ledger_batches)
                d = sa.select(sa.func.count()).select_from(disclosures)
                if batch_id:
                    b = b.where(ledger_batches.c.batch_id == batch_id)
                    d = d.where(disclosures.c.batch_id == batch_id)
                return int(conn.execute(b).scalar_one()), int(conn.execute(d).scalar_one())
        finally:
            ledger.close()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, synth: Synth) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("batches")
    settings = service_settings(folder, synth)
    with running_app(settings) as (client, db):
        yield World(client, db, settings, synth)


def test_submit_review_approve_download(world: World) -> None:
    client = world.client
    csrf = login(client, "submitter")
    assert call(client, "GET", "/batches/new").status_code == 200
    sent = submit_page(client, csrf, request_of(world.synth), "SVC-1")
    assert sent.status_code == 303 and sent.headers["location"] == "/batches/SVC-1"
    shown = wait_settled(client, "SVC-1")
    assert shown["status"] == "held" and shown["rows"] is None  # no counts before release
    page = call(client, "GET", "/batches/SVC-1")
    assert "held for review" in page.text and "Download" not in page.text
    assert call(client, "GET", "/batches/SVC-1/package.zip").status_code == 404
    assert world.ledger_counts("SVC-1") == (0, 0)  # nothing disclosed before approval

    login(client, "officer")
    queue = call(client, "GET", "/review")
    assert "/review/SVC-1" in queue.text
    review = call(client, "GET", "/review/SVC-1")
    assert review.status_code == 200
    for expected in ("Expected false matches", "8 U.S.C. 1253(a)(1)", "Each row is the subject",
                     "Rejections by reason", "Sample of matched rows", "<svg", "rival",
                     "Unmatched rows one by one", "Approve and release"):
        assert expected in review.text, expected
    data = call(client, "GET", "/api/batches/SVC-1/review").json()
    rivals = [c["name_masked"] for row in data["sample"] for c in row["candidates"]
              if c["role"] == "rival" and c["name_masked"]]
    assert rivals and all(re.fullmatch(r"[^*\s]\**( [^*\s]\**)*", n) for n in rivals)
    assert data["outcome_counts"]["M"] == data["batch"]["rows_matched"] > 0
    for row in data["unmatched_rows"][:5]:  # each listed unmatched row is on the page
        assert row["request_row_id"] in review.text

    csrf = login(client, "officer")
    done = call(client, "POST", "/review/SVC-1/approve", data={"csrf_token": csrf})
    assert done.status_code == 303
    batches, disclosed = world.ledger_counts("SVC-1")
    assert batches == 1 and disclosed == data["batch"]["rows_matched"]

    login(client, "submitter")
    shown = call(client, "GET", "/api/batches/SVC-1").json()
    assert shown["status"] == "released" and shown["rows"]["matched"] == disclosed
    assert "matched.csv" in shown["files"] and "receipt.json" in shown["files"]
    package = call(client, "GET", "/batches/SVC-1/package.zip")
    assert package.status_code == 200
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        names = archive.namelist()
        assert "svc-1/matched.csv" in names
        for name in names:
            SEEN.append(archive.read(name).decode("utf-8", "replace"))
    one = call(client, "GET", "/batches/SVC-1/files/matched.csv")
    assert one.status_code == 200 and one.text.startswith("request_row_id")
    assert call(client, "GET", "/batches/SVC-1/files/..%2Fstate.json").status_code == 404
    api_zip = call(client, "GET", "/api/batches/SVC-1/package")
    assert api_zip.status_code == 200 and api_zip.content[:2] == b"PK"

    login(client, "auditor")
    verified = call(client, "GET", "/api/ledger/verify").json()
    assert verified["ok"] is True and verified["anchors_checked"] >= 1
    log = call(client, "GET", "/api/access-log?limit=5000").json()
    seen = {(r["username"], r["event_type"], r["object"], r["success"]) for r in log}
    assert ("submitter", "batch_submit", "/batches", False) not in seen
    for row in (("submitter", "batch_page", "/batches/SVC-1", True),
                ("officer", "review_page", "/review/SVC-1", True),
                ("officer", "api_batch_review", "/api/batches/SVC-1/review", True),
                ("officer", "review_approve", "/review/SVC-1/approve", True),
                ("submitter", "batch_download", "/batches/SVC-1/package.zip", True),
                ("submitter", "batch_download_file", "/batches/SVC-1/files/matched.csv", True),
                ("submitter", "api_download_package", "/api/batches/SVC-1/package", True)):
        assert row in seen, row
    details = {r["detail"] for r in log if r["object"] == "/batches/SVC-1/package.zip"}
    assert "downloaded the package of batch SVC-1" in details


def test_deny_discloses_nothing(world: World) -> None:
    client = world.client
    held_batch(client, world.synth, "SVC-2")
    csrf = login(client, "officer")
    same = call(client, "GET", "/api/batches/SVC-2/review").json()["same_file_answered"]
    assert "SVC-1" in {f["batch_id"] for f in same}  # the same file was answered before
    assert "answered or held before:\n<strong class=\"problem\">yes" in call(
        client, "GET", "/review/SVC-2").text
    empty = call(client, "POST", "/review/SVC-2/deny", data={"csrf_token": csrf, "reason": " "})
    assert empty.status_code == 400 and "reason" in empty.text
    denied = call(client, "POST", "/api/batches/SVC-2/deny", headers={"X-CSRF-Token": csrf},
                  json={"reason": "The certification names no investigation."})
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    again = call(client, "POST", "/api/batches/SVC-2/approve", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and again.json()["error"]["code"] == "policy_refused"
    assert world.ledger_counts("SVC-2") == (0, 0)
    login(client, "submitter")
    page = call(client, "GET", "/batches/SVC-2")
    assert "Denied by officer" in page.text and "names no investigation" in page.text
    assert call(client, "GET", "/batches/SVC-2/package.zip").status_code == 404
    assert call(client, "GET", "/api/batches/SVC-2/package").status_code == 404
    assert call(client, "GET", "/api/batches/SVC-2").json()["files"] == []
    with world.db.begin() as conn:
        decided = conn.execute(sa.select(t.access_log.c.detail).where(
            t.access_log.c.event_type == "api_deny_batch",
            t.access_log.c.success.is_(True))).scalars().all()
    assert decided == ["denied batch SVC-2"]


def test_other_agency_sees_404_and_a_submitter_cannot_decide(world: World) -> None:
    client = world.client
    held_batch(client, world.synth, "SVC-3")
    csrf = login(client, "submitter")
    for method, path in (("POST", "/api/batches/SVC-3/approve"),
                         ("POST", "/review/SVC-3/approve"), ("GET", "/review/SVC-3"),
                         ("GET", "/api/batches/SVC-3/review")):
        refused = call(client, method, path, headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403, path
    login(client, "submitter2")
    for path in ("/batches/SVC-3", "/api/batches/SVC-3", "/batches/SVC-3/package.zip",
                 "/api/batches/SVC-3/package", "/batches/NO-SUCH"):
        missing = call(client, "GET", path)
        assert missing.status_code == 404, path
    assert "SVC-3" not in call(client, "GET", "/batches").text
    assert call(client, "GET", "/api/batches").json() == []
    unknown = call(client, "GET", "/api/batches/NO-SUCH").json()
    other = call(client, "GET", "/api/batches/SVC-3").json()
    assert unknown["error"]["message"].replace("NO-SUCH", "X") == \
        other["error"]["message"].replace("SVC-3", "X")  # the same answer: nothing leaks


def test_an_officer_who_submitted_cannot_approve(world: World) -> None:
    client = world.client
    held_batch(client, world.synth, "SVC-4")
    accounts.update_user(world.db, "admin", "submitter", role="officer")
    try:
        csrf = login(client, "submitter")
        refused = call(client, "POST", "/review/SVC-4/approve", data={"csrf_token": csrf})
        assert refused.status_code == 409
        assert "another person must approve" in refused.text
        assert world.ledger_counts("SVC-4") == (0, 0)
    finally:
        accounts.update_user(world.db, "admin", "submitter", role="submitter", agency=AGENCY_A)


def test_a_batch_id_is_answered_once_and_the_form_says_what_to_fix(world: World) -> None:
    client = world.client
    held_batch(client, world.synth, "SVC-5")
    csrf = login(client, "submitter2")  # another agency, the same id: refused, not revealed
    again = submit_api(client, csrf, request_of(world.synth), "svc-5",
                       statutes=["18 U.S.C. 1073"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    bad = submit_api(client, csrf, request_of(world.synth), "SVC-6")  # ICE's statute
    assert bad.status_code == 400 and "18 U.S.C. 1073" in bad.json()["error"]["message"]
    csrf = login(client, "submitter")
    page = submit_page(client, csrf, request_of(world.synth), "SVC-5")
    assert page.status_code == 409 and "new batch id" in page.text
    assert 'value="Dana Example"' in page.text  # what was typed is kept
    with world.db.begin() as conn:
        ids = conn.execute(sa.select(jobs.c.batch_id)).scalars().all()
    assert "SVC-6" not in ids and sorted(ids).count("SVC-5") == 1
    uploads = world.settings.files_dir / "uploads"
    assert all(any(p.suffix == ".json" for p in f.iterdir()) for f in uploads.iterdir())


def test_a_failed_preparation_shows_a_safe_message_and_can_be_retried(world: World) -> None:
    client = world.client
    csrf = login(client, "submitter")
    sent = submit_api(client, csrf, request_of(world.synth), "SVC-7", certified="false")
    assert sent.status_code == 202
    shown = wait_settled(client, "SVC-7")
    assert shown["status"] == "failed" and "certif" in shown["message"].lower()
    page = call(client, "GET", "/batches/SVC-7")
    assert "Retry" in page.text and shown["retryable"] is True
    retried = call(client, "POST", "/api/batches/SVC-7/retry", headers={"X-CSRF-Token": csrf})
    assert retried.status_code == 200
    assert wait_settled(client, "SVC-7")["status"] == "failed"  # the same refusal again
    held = call(client, "POST", "/api/batches/SVC-5/retry", headers={"X-CSRF-Token": csrf})
    assert held.status_code == 409
    # past the retention the request file (it names people) is deleted; retry is refused
    with world.db.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.batch_id == "SVC-7").values(
            finished_at=now_utc() - timedelta(days=world.settings.failed_input_days + 1)))
        spec = conn.execute(sa.select(jobs.c.spec).where(jobs.c.batch_id == "SVC-7")).scalar()
    request = Path(spec["kwargs"]["request"])
    assert request.exists()
    assert job_queue(client.app).expire_failed_inputs() == 1  # what every sweep runs
    assert not request.exists() and (request.parent / "batch.json").exists()
    gone = call(client, "POST", "/api/batches/SVC-7/retry", headers={"X-CSRF-Token": csrf})
    assert gone.status_code == 409 and "submit it again" in gone.json()["error"]["message"]
    assert wait_settled(client, "SVC-7")["retryable"] is False
    page = call(client, "GET", "/batches/SVC-7")
    assert "Retry" not in page.text and "submit the request under a new batch id" in page.text


def test_upload_over_the_limit_is_413_and_leaves_nothing(
        tmp_path: Path, synth: Synth) -> None:
    settings = service_settings(tmp_path, synth, upload_limit_mb=1)
    big = tmp_path / "big.csv"
    big.write_bytes(request_of(synth).read_bytes() + b"x" * (1024 * 1024 + 10))
    with running_app(settings, lifespan=False) as (client, db):
        csrf = login(client, "submitter")
        refused = submit_api(client, csrf, big, "BIG-1")
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "too_large"
        wrong = submit_api(client, csrf, synth.folder / "batch.toml", "BIG-2")
        assert wrong.status_code == 400 and ".csv, .xlsx or .parquet" in wrong.text
        with db.begin() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one() == 0
            logged = conn.execute(sa.select(t.access_log.c.status).where(
                t.access_log.c.object == "/api/batches")).scalars().all()
        assert 413 in logged
    uploads = settings.files_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_the_demo_sample_goes_through_as_printed(_private_user_dirs_per_test: Path) -> None:
    """`serve --demo`'s sample request and batch values, submitted as its printout says."""
    import tomllib

    from lastknown.service.demo import DEMO_PASSWORD
    from lastknown.service.serve import prepare

    settings, folder = prepare(None, demo=True, host="127.0.0.1", app_db=None)
    assert folder is not None
    values = tomllib.loads((folder / "sample" / "batch.toml").read_text(encoding="utf-8"))
    with make_client(settings) as client:
        csrf = login(client, "submitter", DEMO_PASSWORD)
        sent = submit_api(client, csrf, folder / "sample" / "request.xlsx", "DEMO-1",
                          requesting_official=values["requesting_official"],
                          statutes=values["authorised_statutes"])
        assert sent.status_code == 202, sent.text
        assert wait_settled(client, "DEMO-1")["status"] == "held"
    client.app.state.db.close()  # type: ignore[attr-defined]


def test_an_agency_system_submits_and_polls_with_its_api_token(world: World) -> None:
    token, _ = accounts.create_token(world.db, "admin", username="submitter", label="ICE system")
    client = world.client
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    with request_of(world.synth).open("rb") as handle:  # no cookie, so no CSRF token needed
        sent = call(client, "POST", "/api/batches", headers=bearer,
                    data=form_values("TOK-1"), files={"file": ("r.csv", handle, "text/csv")})
    assert sent.status_code == 202 and sent.json()["submitted_by"] == "submitter"
    shown = call(client, "GET", "/api/batches/TOK-1", headers=bearer).json()
    assert shown["batch_id"] == "TOK-1" and shown["agency"] == AGENCY_A
    assert call(client, "POST", "/api/batches/TOK-1/approve", headers=bearer).status_code == 403
    other, _ = accounts.create_token(world.db, "admin", username="submitter2", label="USMS")
    assert call(client, "GET", "/api/batches/TOK-1",
                headers={"Authorization": f"Bearer {other}"}).status_code == 404


def test_no_reply_or_table_holds_a_tin(world: World) -> None:
    """Every page of both roles, then everything this module saw and stored."""
    client = world.client
    for who, paths in (("submitter", ("/", "/batches", "/batches/new", "/api/batches",
                                      "/batches/SVC-1", "/batches/SVC-2", "/batches/TOK-1")),
                       ("officer", ("/", "/review", "/review/SVC-1", "/review/SVC-2",
                                    "/review/SVC-3", "/api/batches", "/api/batches/SVC-3",
                                    "/api/batches/SVC-3/review"))):
        login(client, who)
        for path in paths:
            assert call(client, "GET", path).status_code == 200, path
    with world.db.begin() as conn:
        for table in (t.access_log, jobs):
            SEEN.append(repr(conn.execute(sa.select(table)).all()))
    text = "\n".join(SEEN)
    assert "SVC-1" in text and "matched.csv" in text and len(world.synth.tins) > 400
    assert sorted(tin for tin in world.synth.tins if tin in text) == []
