"""The job table on SQLite and PostgreSQL: every move a job can make, and the ones it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.errors import PipelineError
from lastknown.service.jobs import WORKER_STOPPED, JobStore
from lastknown.service.jobs.store import now_utc
from test_ledger_fixtures import BACKENDS, PG_URL, pg_schemas, search_path

FUNCTION = "test_jobs_queue:write_report"


@contextmanager
def pg_engine() -> Iterator[sa.Engine]:
    """An engine on a fresh PostgreSQL schema of db `test`, dropped afterwards."""
    with pg_schemas("lk_jobs") as (schema,):
        engine = sa.create_engine(PG_URL, connect_args=search_path(schema))
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        sqlite_store = JobStore(f"sqlite:///{tmp_path / 'app.sqlite'}")
        yield sqlite_store
        sqlite_store.close()
        return
    with pg_engine() as engine:
        yield JobStore(engine)
        assert engine.dialect.name == "postgresql"


def test_the_table_is_created_once_and_found_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    job_id = JobStore(url).enqueue("prepare", FUNCTION, {}).id
    assert JobStore(url).get(job_id) is not None  # a second start keeps the jobs


def _job(store: JobStore, **fields: object) -> str:
    return store.enqueue("prepare", FUNCTION, {"out": "/tmp/x", "rows": 3},  # type: ignore[arg-type]
                         **fields).id


def test_a_job_runs_through_its_stages_once(store: JobStore) -> None:
    job_id = _job(store, batch_id="B-1", agency="ICE", submitted_by="dana", stages_total=3)
    queued = store.get(job_id)
    assert queued is not None and queued.status == "queued" and queued.attempts == 0
    assert queued.kwargs == {"out": "/tmp/x", "rows": 3} and queued.function == FUNCTION
    assert queued.max_attempts == 3  # a release gets one: a person retries it
    assert store.enqueue("release", FUNCTION, {}).max_attempts == 1
    claimed = store.claim(job_id, "w1")
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert claimed.worker == "w1" and claimed.started_at is not None
    assert store.claim(job_id, "w2") is None  # a duplicate delivery does nothing
    assert store.set_stage(job_id, "w1", "read") and store.set_stage(job_id, "w1", "match")
    assert not store.set_stage(job_id, "w2", "match")  # only the owner reports
    running = store.get(job_id)
    assert running is not None and (running.stage, running.stages_done) == ("match", 1)
    assert running.fraction == pytest.approx(1 / 3)
    assert store.heartbeat(job_id, "w1") and not store.heartbeat(job_id, "w2")
    assert store.finish(job_id, "w1") and not store.finish(job_id, "w1")
    done = store.get(job_id)
    assert done is not None and done.status == "done" and done.fraction == 1.0
    assert done.stages_done == 3 and done.finished_at is not None
    assert done.finished_at.tzinfo is not None


def test_a_failed_job_is_retried_from_scratch_and_only_once(store: JobStore) -> None:
    job_id = _job(store)
    assert store.claim(job_id, "w1") is not None
    assert store.fail(job_id, "w1", "BatchError: not certified")
    failed = store.get(job_id)
    assert failed is not None and (failed.status, failed.message) == (
        "failed", "BatchError: not certified")
    retried = store.retry(job_id)
    assert retried is not None and retried.status == "queued" and retried.attempts == 0
    assert retried.message is None and store.retry(job_id) is None  # only a failed job
    assert store.retry("no-such-job") is None


def test_stale_jobs_are_requeued_while_attempts_last_then_failed(store: JobStore) -> None:
    spare, last = _job(store, max_attempts=2), _job(store, max_attempts=1)
    for job_id in (spare, last):
        assert store.claim(job_id, "dead") is not None
    assert store.recover_stale(now_utc() - timedelta(hours=1)).requeued == []  # still alive
    recovery = store.recover_stale(now_utc() + timedelta(seconds=1))
    assert (recovery.requeued, recovery.failed) == ([spare], [last])
    assert store.recover_stale(now_utc() + timedelta(seconds=1)).requeued == []  # done once
    assert not store.finish(spare, "dead")  # the dead worker's late word is not taken
    requeued, failed = store.get(spare), store.get(last)
    assert requeued is not None and requeued.status == "queued" and requeued.worker is None
    assert failed is not None and (failed.status, failed.message) == ("failed", WORKER_STOPPED)
    assert store.claim(spare, "next") is not None and store.get(spare).attempts == 2  # type: ignore[union-attr]


def test_jobs_waiting_without_a_run_are_found(store: JobStore) -> None:
    job_id = _job(store)
    later = now_utc() + timedelta(seconds=1)
    assert store.waiting_since(now_utc() - timedelta(hours=1)) == []
    assert store.waiting_since(later) == [job_id]
    assert store.touch_queued(job_id) and store.claim(job_id, "w") is not None
    assert store.waiting_since(later) == [] and not store.touch_queued(job_id)


def test_jobs_are_listed_by_agency_and_submitter_newest_first(store: JobStore) -> None:
    first = _job(store, agency="ICE", submitted_by="dana")
    second = _job(store, agency="ICE", submitted_by="lee")
    other = _job(store, agency="CBP", submitted_by="kim")
    assert [j.id for j in store.list_jobs(agency="ICE")] == [second, first]
    assert [j.id for j in store.list_jobs(submitted_by="kim")] == [other]
    assert [j.id for j in store.list_jobs(agency="CBP", submitted_by="dana")] == []
    assert len(store.list_jobs(limit=2)) == 2 and len(store.list_jobs(status="queued")) == 3


@pytest.mark.parametrize(("kind", "function", "kwargs"), [
    ("prepare", FUNCTION, {"when": now_utc()}),   # not JSON
    ("publish", FUNCTION, {}),                     # unknown kind
    ("release", "no colon", {}),                   # not an import path
])
def test_a_job_that_could_not_run_is_refused(store: JobStore, kind: str, function: str,
                                             kwargs: dict[str, object]) -> None:
    with pytest.raises(PipelineError):
        store.enqueue(kind, function, kwargs)
    assert store.list_jobs() == []
