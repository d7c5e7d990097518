"""The job queue with real consumers: SQLite (embedded threads) and Redis.

The jobs run here are real work of this module (they read, sum and write files and
report their stages); the worker resolves them by import path exactly as it resolves
``lastknown.workflow:prepare``. Waits are for conditions, bounded; nothing asserts a time.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from lastknown.errors import BatchError, ConflictError
from lastknown.service.jobs import (
    JobQueue,
    JobStore,
    QueueSettings,
    Worker,
    start_embedded_worker,
    stop_embedded_worker,
)
from lastknown.service.jobs.queue import inputs_removed_after_failure
from lastknown.service.jobs.runner import INTERNAL
from lastknown.service.jobs.store import jobs, now_utc

HERE = "test_jobs_queue"
#: Quick sweeps; a stale limit no live job reaches however loaded the machine (the tests of
#: dead workers set their own).
FAST = {"heartbeat_seconds": 0.2, "stale_seconds": 30.0, "sweep_seconds": 0.1}


def write_report(*, out: Path, rows: int, on_stage: Callable[[str], None]) -> None:
    """Read numbers, sum them, write the total: three stages, one line in runs.log a run.
    ``out`` arrives as a Path though the job carries a string (runner.with_paths)."""
    folder = out
    on_stage("read")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "numbers.txt").write_text("\n".join(str(i) for i in range(rows)))
    on_stage("sum")
    total = sum(int(line) for line in (folder / "numbers.txt").read_text().splitlines())
    on_stage("write")
    (folder / "total.txt").write_text(str(total))
    with (folder / "runs.log").open("a") as log:
        log.write("run\n")


def refuse(*, internal: bool, on_stage: Callable[[str], None]) -> None:
    """Fail the way a bad batch fails, or the way a bug fails (both quoting a TIN)."""
    on_stage("check")
    if internal:
        raise KeyError("row of 123456789")
    raise BatchError("batch.toml: `certified` must be true (row of 123-45-6789)")


@inputs_removed_after_failure("request")
def refuse_upload(*, request: str, keep: str, on_stage: Callable[[str], None]) -> None:
    """Fail as a bad submission does; ``request`` names people, ``keep`` does not."""
    on_stage("check")
    raise BatchError(f"{Path(request).name}: no rows")


def rendezvous(*, folder: str, me: str, other: str, on_stage: Callable[[str], None]) -> None:
    """Arrive, then wait for ``other`` to arrive: finishes only if both run at once."""
    on_stage("arrive")
    (Path(folder) / me).touch()
    wait_for(lambda: (Path(folder) / other).exists(), what=f"{other} to run alongside {me}")
    on_stage("leave")


def gated(*, out: str, gate: str, on_stage: Callable[[str], None]) -> None:
    """Note a start, wait until the gate file exists, then write ``done`` (test_jobs_crash)."""
    folder = Path(out)
    on_stage("wait")
    with (folder / "starts.log").open("a") as log:
        log.write("start\n")
    wait_for(lambda: Path(gate).exists(), what="the gate")
    on_stage("write")
    (folder / "done").write_text("done")


def wait_for(condition: Callable[[], object], *, what: str, seconds: float = 60.0) -> None:
    """Poll ``condition`` until true; fail (not a timing assertion: a hang) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def status_of(queue: JobQueue, job_id: str) -> str:
    job = queue.store.get(job_id)
    assert job is not None
    return job.status


def finished(queue: JobQueue, job_id: str) -> Callable[[], bool]:
    return lambda: status_of(queue, job_id) in ("done", "failed")


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobQueue]:
    url = (f"sqlite:///{tmp_path / 'queue.sqlite'}" if request.param == "sqlite"
           else "redis://127.0.0.1:6379/0")
    settings = QueueSettings(url=url, name=f"lk-test-{uuid.uuid4().hex[:10]}", **FAST)
    job_queue = JobQueue(JobStore(f"sqlite:///{tmp_path / 'app.sqlite'}"), settings)
    yield job_queue
    job_queue.huey.flush()  # the test's queue keys, gone from Redis
    assert job_queue.huey.pending_count() == 0
    job_queue.close()
    job_queue.store.close()


@pytest.fixture
def worker(queue: JobQueue) -> Iterator[Worker]:
    started = start_embedded_worker(queue)
    yield started
    stop_embedded_worker(started)


def test_a_job_runs_to_done_with_its_stages(queue: JobQueue, worker: Worker,
                                            tmp_path: Path) -> None:
    job = queue.submit("prepare", f"{HERE}:write_report", {"out": str(tmp_path / "o"),
                       "rows": 10}, batch_id="B-1", agency="ICE", submitted_by="dana",
                       stages_total=3)
    wait_for(finished(queue, job.id), what="the job")
    done = queue.store.get(job.id)
    assert done is not None and (done.status, done.stage, done.stages_done) == ("done",
                                                                                "write", 3)
    assert done.attempts == 1 and done.message is None
    assert (tmp_path / "o" / "total.txt").read_text() == "45"


@pytest.mark.parametrize(("internal", "message"), [
    (False, "BatchError: batch.toml: `certified` must be true (row of ***)"),
    (True, INTERNAL)])
def test_a_failing_job_is_failed_with_a_message_fit_to_show(
        queue: JobQueue, worker: Worker, internal: bool, message: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="lastknown.jobs")
    job = queue.submit("release", f"{HERE}:refuse", {"internal": internal})
    wait_for(finished(queue, job.id), what="the job")
    failed = queue.store.get(job.id)
    assert failed is not None and (failed.status, failed.message) == ("failed", message)
    assert failed.stage == "check"
    logged = [r for r in caplog.records if r.exc_info and job.id in r.getMessage()]
    assert len(logged) == 1  # the traceback is in the server log, and only there


def test_a_failed_jobs_uploaded_input_is_deleted_after_the_retention_days(
        queue: JobQueue, worker: Worker, tmp_path: Path) -> None:
    request, keep = tmp_path / "request.csv", tmp_path / "batch.json"
    request.write_text("name\nA B\n")
    keep.write_text("{}")
    job = queue.submit("prepare", f"{HERE}:refuse_upload",
                       {"request": str(request), "keep": str(keep)})
    wait_for(finished(queue, job.id), what="the job")
    assert status_of(queue, job.id) == "failed"
    assert queue.expire_failed_inputs() == 0 and request.exists()  # failed just now

    def failed_days_ago(days: float) -> None:
        with queue.store.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job.id).values(
                finished_at=now_utc() - timedelta(days=days)))

    failed_days_ago(queue.settings.failed_input_days - 1)
    queue.sweep()
    assert request.exists()
    failed_days_ago(queue.settings.failed_input_days + 1)
    queue.sweep()  # every sweep expires what is due
    assert not request.exists() and keep.exists()
    assert queue.expire_failed_inputs() == 0  # nothing left to delete
    with pytest.raises(ConflictError, match="deleted then; submit it again"):
        queue.retry(job.id)
    assert status_of(queue, job.id) == "failed"


def test_a_job_whose_function_does_not_exist_fails_as_internal(queue: JobQueue,
                                                               worker: Worker) -> None:
    job = queue.submit("prepare", "lastknown.no_such_module:prepare", {})
    wait_for(finished(queue, job.id), what="the job")
    assert queue.store.get(job.id).message == INTERNAL  # type: ignore[union-attr]


def test_a_duplicate_delivery_runs_the_job_once(queue: JobQueue, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lastknown.jobs")
    job = queue.submit("prepare", f"{HERE}:write_report", {"out": str(tmp_path / "o"),
                                                           "rows": 3})
    queue.send(job.id)  # delivered twice, before any worker runs
    assert queue.huey.pending_count() == 2
    started = start_embedded_worker(queue)
    wait_for(lambda: queue.huey.pending_count() == 0, what="both deliveries taken")
    stop_embedded_worker(started)  # waits for both deliveries to be handled
    assert status_of(queue, job.id) == "done"
    assert (tmp_path / "o" / "runs.log").read_text() == "run\n"
    assert queue.store.get(job.id).attempts == 1  # type: ignore[union-attr]
    assert any("delivery ignored" in r.getMessage() for r in caplog.records)


def test_two_jobs_run_in_parallel_and_both_finish(queue: JobQueue, worker: Worker,
                                                  tmp_path: Path) -> None:
    assert queue.settings.workers == 2
    jobs = [queue.submit("prepare", f"{HERE}:rendezvous",
                         {"folder": str(tmp_path), "me": me, "other": other})
            for me, other in (("a", "b"), ("b", "a"))]
    for job in jobs:
        wait_for(finished(queue, job.id), what="both jobs")
    assert [status_of(queue, job.id) for job in jobs] == ["done", "done"]


def test_a_job_the_queue_never_got_is_sent_by_the_sweep(queue: JobQueue,
                                                        tmp_path: Path) -> None:
    broker_down = JobQueue(queue.store, QueueSettings(url="redis://127.0.0.1:1/0",
                                                      name=queue.settings.name, **FAST))
    job = broker_down.submit("prepare", f"{HERE}:write_report",
                             {"out": str(tmp_path / "o"), "rows": 2})  # recorded, not sent
    broker_down.close()
    assert status_of(queue, job.id) == "queued" and queue.huey.pending_count() == 0
    sweeping = JobQueue(queue.store, replace(queue.settings, stale_seconds=1.0))
    started = start_embedded_worker(sweeping)
    try:
        wait_for(finished(queue, job.id), what="the sweep to send the job")
    finally:
        stop_embedded_worker(started)
        sweeping.close()
    assert status_of(queue, job.id) == "done"


@pytest.mark.postgres
def test_production_postgres_job_table_and_redis_queue(tmp_path: Path) -> None:
    from test_jobs_store import pg_engine

    settings = QueueSettings(url="redis://127.0.0.1:6379/0",
                             name=f"lk-test-{uuid.uuid4().hex[:10]}", **FAST)
    with pg_engine() as engine:
        job_queue = JobQueue(JobStore(engine), settings)
        started = start_embedded_worker(job_queue)
        try:
            job = job_queue.submit("prepare", f"{HERE}:write_report",
                                   {"out": str(tmp_path / "o"), "rows": 4}, stages_total=3)
            wait_for(finished(job_queue, job.id), what="the job")
        finally:
            stop_embedded_worker(started)
            job_queue.huey.flush()
            job_queue.close()
        shown = job_queue.store.get(job.id).public()  # type: ignore[union-attr]
    assert (shown["status"], shown["fraction"]) == ("done", 1.0)
    assert (tmp_path / "o" / "total.txt").read_text() == "6"


def test_the_embedded_worker_leaves_the_servers_signal_handlers_alone(
        queue: JobQueue) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = start_embedded_worker(queue)
    try:
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        stop_embedded_worker(started)
