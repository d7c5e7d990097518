"""`lastknown worker` killed with SIGKILL mid-job: the next worker re-queues and finishes it,
or, with no attempts left, fails it so that a retry can run it.

The job (``test_jobs_queue:gated``) waits for a gate file, so the kill always lands while it
runs; waits are for conditions, bounded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import child_env
from lastknown.service.jobs import WORKER_STOPPED, JobQueue, JobStore, QueueSettings
from test_jobs_queue import FAST, status_of, wait_for


class Workers:
    """`lastknown worker` processes on one job table and queue, all stopped at the end."""

    def __init__(self, tmp_path: Path, queue_url: str) -> None:
        self.tmp_path = tmp_path
        self.database = f"sqlite:///{tmp_path / 'app.sqlite'}"
        self.settings = QueueSettings(url=queue_url, name=f"lk-test-{uuid.uuid4().hex[:10]}",
                                      **FAST)
        self.queue = JobQueue(JobStore(self.database), self.settings)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lastknown.cli", "worker", "--database", self.database,
             "--queue", self.settings.url, "--queue-name", self.settings.name,
             "--workers", "1", "--heartbeat", "0.1", "--stale-after", "2", "--sweep", "0.1"],
            env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # finish running jobs, then exit
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(params=["sqlite", "redis"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workers]:
    url = (f"sqlite:///{tmp_path / 'queue.sqlite'}" if request.param == "sqlite"
           else "redis://127.0.0.1:6379/0")
    running = Workers(tmp_path, url)
    yield running
    running.stop_all()
    running.queue.huey.flush()
    running.queue.close()
    running.queue.store.close()


def _kill_mid_job(workers: Workers, max_attempts: int) -> str:
    out, gate = workers.tmp_path / "out", workers.tmp_path / "gate"
    out.mkdir()
    job = workers.queue.submit("prepare", "test_jobs_queue:gated",
                               {"out": str(out), "gate": str(gate)}, max_attempts=max_attempts)
    first = workers.start()
    wait_for(lambda: (out / "starts.log").exists(), what="the job to start")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    killed = workers.queue.store.get(job.id)
    assert killed is not None and (killed.status, killed.stage, killed.attempts) == (
        "running", "wait", 1)
    return job.id


def test_a_killed_workers_job_is_requeued_and_finished_by_the_next(workers: Workers) -> None:
    job_id = _kill_mid_job(workers, max_attempts=2)
    (workers.tmp_path / "gate").touch()
    workers.start()
    wait_for(lambda: status_of(workers.queue, job_id) == "done", what="the re-queued job")
    done = workers.queue.store.get(job_id)
    assert done is not None and done.attempts == 2 and done.message is None
    assert (workers.tmp_path / "out" / "starts.log").read_text() == "start\nstart\n"
    assert (workers.tmp_path / "out" / "done").exists()


def test_with_no_attempts_left_the_job_fails_and_a_retry_finishes_it(workers: Workers) -> None:
    job_id = _kill_mid_job(workers, max_attempts=1)
    workers.start()
    wait_for(lambda: status_of(workers.queue, job_id) == "failed", what="the job to fail")
    assert workers.queue.store.get(job_id).message == WORKER_STOPPED  # type: ignore[union-attr]
    assert not (workers.tmp_path / "out" / "done").exists()
    (workers.tmp_path / "gate").touch()
    assert workers.queue.retry(job_id) is not None
    wait_for(lambda: status_of(workers.queue, job_id) == "done", what="the retried job")
    assert workers.queue.store.get(job_id).attempts == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("database", "queue", "says"), [
    ("nonsense://x", "sqlite:///{tmp}/q.sqlite", "cannot use the job table in nonsense://x"),
    ("postgresql+psycopg://lk:secret@127.0.0.1:1/none", "sqlite:///{tmp}/q.sqlite",
     "cannot use the job table in postgresql+psycopg://lk:***@127.0.0.1:1/none"),
    ("sqlite:///{tmp}/app.sqlite", "amqp://localhost", "job queue URL 'amqp://localhost'"),
])
def test_a_worker_with_a_bad_database_or_queue_says_so(tmp_path: Path, database: str,
                                                       queue: str, says: str) -> None:
    from click.testing import CliRunner

    from lastknown.cli import cli

    args = ["worker", "--database", database.format(tmp=tmp_path),
            "--queue", queue.format(tmp=tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "secret" not in result.output


def test_a_worker_reads_its_database_and_queue_from_the_deployment(tmp_path: Path) -> None:
    """Without --database/--queue the worker uses [service] app_db and queue; a deployment
    without a queue is told that the embedded queue lives in `serve`."""
    from click.testing import CliRunner

    from lastknown.cli import cli

    plain = tmp_path / "plain.toml"
    plain.write_text('ledger = "l.sqlite"\narchive = "archive"\nanchors = "a.jsonl"\n')
    result = CliRunner().invoke(cli, ["--config-file", str(plain), "worker"])
    assert result.exit_code == 2, result.output
    assert (f"{plain} names no [service] queue: the embedded queue runs inside `lastknown "
            "serve`") in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(plain.read_text() + '[service]\napp_db = "app.sqlite"\n'
                   'queue = "amqp://localhost"\n')
    result = CliRunner().invoke(cli, ["--config-file", str(bad), "worker"])
    assert result.exit_code == 2, result.output
    assert "job queue URL 'amqp://localhost'" in result.output  # the configured one was used
