"""The batch service's hard cases: two approvals at once never exceed the official's cap;
a prepare job killed mid-way ends held (re-run) with nothing in the ledger; a release
killed after its commit is delivered when the service starts again; and the main flow on
the production pair, PostgreSQL (app, jobs, ledger) + Redis (queue)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from batch_helpers import (
    held_batch,
    request_of,
    running_app,
    service_settings,
    submit_api,
    wait_settled,
)
from conftest import child_env
from lastknown.disclose.held import held_dir
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.ledger.models import batches as ledger_batches
from lastknown.disclose.ledger.models import disclosures
from lastknown.service import accounts, auth
from lastknown.service import db as t
from lastknown.service.app import job_queue
from lastknown.service.batches import package_folder
from lastknown.service.db import AppDB, open_app_db
from lastknown.service.jobs import JobQueue, JobStore, QueueSettings, Worker
from lastknown.service.jobs.runner import run_job
from lastknown.service.jobs.store import now_utc
from service_helpers import AGENCY_A, login, make_client
from test_ledger_fixtures import PG_URL, pg_problem, pg_schemas
from test_recovery import run_cli
from test_workflow import Synth, make_synth


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


def ledger_counts(ledger_url: str) -> tuple[int, int]:
    ledger = open_ledger(ledger_url)
    try:
        with ledger.connect() as conn:
            return (int(conn.execute(sa.select(sa.func.count()).select_from(ledger_batches))
                        .scalar_one()),
                    int(conn.execute(sa.select(sa.func.count()).select_from(disclosures))
                        .scalar_one()))
    finally:
        ledger.close()


def session_headers(client: TestClient, db: AppDB, username: str) -> dict[str, str]:
    """Headers of a fresh session of ``username`` (cookie and CSRF token), so several
    people can call through one client at once."""
    with db.begin() as conn:
        user_id = conn.execute(sa.select(t.users.c.id).where(
            t.users.c.username == username)).scalar_one()
    token = auth.start_session(db, client.app.state.settings,  # type: ignore[attr-defined]
                               user_id)
    principal = auth.session_principal(db, token)
    assert principal is not None and principal.username == username
    return {"Cookie": f"__Host-lk_session={token}", "X-CSRF-Token": principal.csrf_secret or ""}


def test_two_approvals_at_once_never_exceed_the_officials_cap(
        tmp_path: Path, synth: Synth) -> None:
    settings = service_settings(tmp_path, synth)
    with running_app(settings) as (client, db):
        agency = next(a for a in accounts.list_agencies(db) if a["name"] == AGENCY_A)
        accounts.update_agency(db, "admin", agency["id"],
                               caps={"max_rows_per_official_per_period": 50})
        accounts.create_user(db, client.app.state.hasher,  # type: ignore[attr-defined]
                             "admin", username="officer2", display_name="Second Officer",
                             role="officer", password="correct horse battery")
        first = held_batch(client, synth, "CAP-1")
        second = held_batch(client, synth, "CAP-2")
        assert first["status"] == second["status"] == "held"  # each alone fits under 50
        client.cookies.clear()
        heads = [session_headers(client, db, "officer"), session_headers(client, db, "officer2")]
        barrier = threading.Barrier(2)

        def approve(args: tuple[str, dict[str, str]]) -> Any:
            batch_id, headers = args
            barrier.wait()
            return client.post(f"/api/batches/{batch_id}/approve", headers=headers)

        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(approve, [("CAP-1", heads[0]), ("CAP-2", heads[1])]))
        codes = sorted(r.status_code for r in replies)
        assert codes == [200, 409], [r.text for r in replies]
        refused = next(r for r in replies if r.status_code == 409).json()["error"]
        assert refused["code"] == "policy_refused"
        assert "max_rows_per_official_per_period" in refused["message"]
        released = next(r for r in replies if r.status_code == 200).json()
        recorded = ledger_counts(settings.deployment.ledger)
        assert recorded == (1, released["rows"]["matched"])
        login(client, "auditor")
        assert client.get("/api/ledger/verify").json()["ok"] is True


#: A worker process that runs one job and is killed (SIGKILL, by itself) at ``point``:
#: after matching (before anything is held) or just after the batch was held.
KILLED_WORKER = textwrap.dedent("""
    import os, signal, sys
    import lastknown.workflow as workflow
    from lastknown.service.jobs import JobStore
    from lastknown.service.jobs.runner import run_job

    app_db, job_id, point = sys.argv[1:4]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "matched":
        real_stages = workflow.run_stages
        def run_stages(*args, **kwargs):
            real_stages(*args, **kwargs)
            die()
        workflow.run_stages = run_stages
    else:
        real_prepare = workflow.prepare
        def prepare(*args, **kwargs):
            real_prepare(*args, **kwargs)
            die()
        workflow.prepare = prepare
    run_job(JobStore("sqlite:///" + app_db, create=False), job_id, "doomed",
            heartbeat_seconds=0.2)
""")


@pytest.mark.parametrize("point", ["matched", "held"])
def test_a_prepare_killed_mid_way_ends_held_with_nothing_disclosed(
        tmp_path: Path, synth: Synth, point: str) -> None:
    settings = service_settings(tmp_path, synth)
    with running_app(settings, lifespan=False) as (client, db):  # no worker in this process
        csrf = login(client, "submitter")
        job = submit_api(client, csrf, request_of(synth), "KILL-1").json()
        killed = subprocess.run([sys.executable, "-c", KILLED_WORKER, settings.app_db,
                                 job["job_id"], point], env=child_env(), check=False,
                                timeout=600)
        assert killed.returncode == -9
        queue: JobQueue = job_queue(client.app)  # type: ignore[arg-type]
        stuck = queue.store.get(job["job_id"])
        assert stuck is not None and stuck.status == "running" and stuck.worker == "doomed"
        if point == "held":  # the worker died after holding, before finishing the job
            assert call_status(client, "KILL-1") == "held"
        recovery = queue.store.recover_stale(now_utc() + timedelta(seconds=1))
        assert recovery.requeued == [job["job_id"]]
        assert run_job(queue.store, job["job_id"], "second", heartbeat_seconds=1) == "done"
        shown = wait_settled(client, "KILL-1")
        assert shown["status"] == "held", shown
        assert (held_dir(settings.deployment.archive, "KILL-1") / "state.json").is_file()
        assert ledger_counts(settings.deployment.ledger) == (0, 0)
        assert not list((Path(job_request_dir(queue, job["job_id"]))).glob("*.csv"))


def call_status(client: TestClient, batch_id: str) -> str:
    status: str = client.get(f"/api/batches/{batch_id}").json()["status"]
    return status


def job_request_dir(queue: JobQueue, job_id: str) -> str:
    record = queue.store.get(job_id)
    assert record is not None
    return str(Path(record.kwargs["request"]).parent)


def redis_problem() -> str | None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"Redis at 127.0.0.1:6379 unreachable: {type(exc).__name__}"
    return None


@pytest.fixture
def pg_urls() -> Iterator[tuple[str, str]]:
    """(app database URL, ledger URL): two fresh schemas of db `test`, dropped after."""
    problem = pg_problem() or redis_problem()
    if problem:
        pytest.skip(problem)
    with pg_schemas("lk_svc", count=2) as schemas:
        yield tuple(f"{PG_URL}?options=-csearch_path%3D{s}" for s in schemas)  # type: ignore[misc]


@pytest.mark.postgres
def test_the_main_flow_on_postgresql_and_redis(tmp_path: Path, synth: Synth,
                                               pg_urls: tuple[str, str]) -> None:
    app_url, ledger_url = pg_urls
    settings = service_settings(tmp_path, synth, app_db=app_url,
                                queue="redis://127.0.0.1:6379/0")
    settings = settings.with_(deployment=settings.deployment.with_ledger(ledger_url))
    open_ledger(ledger_url, create=True).close()
    db = open_app_db(app_url)
    with running_app(settings, db) as (client, _):
        # production runs `lastknown worker`; here its consumer runs in threads
        queue = JobQueue(JobStore(db.engine, create=False),
                         QueueSettings(url="redis://127.0.0.1:6379/0",
                                       name=f"lk-test-{uuid.uuid4().hex[:8]}"))
        client.app.state.queue = queue  # type: ignore[attr-defined]
        worker = Worker(queue, embedded=True)
        worker.start()
        try:
            held_batch(client, synth, "PG-1")
        finally:
            worker.stop()
        csrf = login(client, "officer")
        review = client.get("/api/batches/PG-1/review").json()
        approved = client.post("/api/batches/PG-1/approve", headers={"X-CSRF-Token": csrf})
        assert approved.status_code == 200, approved.text
        assert ledger_counts(ledger_url) == (1, review["batch"]["rows_matched"])
        login(client, "submitter")
        package = client.get("/batches/PG-1/package.zip")
        assert package.status_code == 200 and package.content[:2] == b"PK"
        login(client, "auditor")
        assert client.get("/api/ledger/verify").json()["ok"] is True
        log = client.get("/api/access-log?event_type=batch_download").json()
        assert [r["username"] for r in log] == ["submitter"]


def test_a_release_killed_after_its_commit_is_delivered_when_the_service_starts(
        tmp_path: Path, synth: Synth) -> None:
    settings = service_settings(tmp_path, synth)
    with running_app(settings) as (client, db):
        held_batch(client, synth, "REL-1")
        d = settings.deployment
        (tmp_path / "lastknown.toml").write_text(
            f'ledger = "{d.ledger}"\narchive = "{d.archive}"\nanchors = "{d.anchors}"\n',
            encoding="utf-8")
        out = package_folder(settings, "REL-1")
        killed = run_cli(["release", "REL-1", "--approver", "officer", "--out", str(out)],
                         cwd=tmp_path, env={"LK_KILL_AT": "committed"}, driver=True)
        assert killed.returncode == 17, killed.stderr[-2000:]
        assert not out.exists()  # committed in the ledger, not yet delivered
        matched = ledger_counts(d.ledger)[1]
        assert matched > 0
    db = open_app_db(settings.app_db)
    with make_client(settings, db) as restarted:  # its start settles the killed release
        login(restarted, "submitter")
        shown = restarted.get("/api/batches/REL-1").json()
        assert shown["status"] == "released" and "matched.csv" in shown["files"]
        assert restarted.get("/batches/REL-1/package.zip").status_code == 200
        login(restarted, "auditor")  # the delivered head went into the anchor file too
        verified = restarted.get("/api/ledger/verify").json()
        assert verified["ok"] is True and verified["anchors_checked"] >= 1
    db.close()
    assert ledger_counts(settings.deployment.ledger) == (1, matched)
