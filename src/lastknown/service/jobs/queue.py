"""The queue that carries job ids to workers: Huey on a SQLite file or on Redis.

Embedded (the default): ``SqliteHuey`` on a file in the deployment's data folder,
consumed by threads inside the web process. Production: ``RedisHuey`` at a URL,
consumed by ``lastknown worker`` processes. Either way a message is only a job id; the
job table (:mod:`.store`) holds the job, so a lost or repeated message is harmless:
:meth:`JobQueue.sweep` re-sends ids of jobs left waiting and re-queues jobs whose worker
died, and a repeated id finds its job no longer ``queued`` and does nothing.

>>> settings = QueueSettings(url="sqlite:////tmp/q.sqlite")
>>> type(make_huey(settings)).__name__, make_huey(settings).name
('SqliteHuey', 'lastknown')
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from huey import Huey, RedisHuey, SqliteHuey

from lastknown.errors import ConfigError, ConflictError, PipelineError
from lastknown.service.jobs.runner import resolve, run_job
from lastknown.service.jobs.store import JobRecord, JobStore, Recovery, now_utc

if TYPE_CHECKING:  # pragma: no cover - typing only
    from lastknown.pipeline import EngineChoice

log = logging.getLogger("lastknown.jobs")
F = TypeVar("F", bound=Callable[..., Any])

#: File name of the embedded queue in the deployment's data folder.
EMBEDDED_FILE = "queue.sqlite"


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """Where the queue lives and how workers watch their jobs (docs/JOBS.md)."""

    #: ``sqlite:///ABSOLUTE/PATH`` (embedded) or ``redis://HOST:PORT/DB`` (production).
    url: str
    #: Queue name: several deployments may share one Redis under different names.
    name: str = "lastknown"
    #: Worker threads per consumer (one job each at a time).
    workers: int = 2
    #: How often a running job's heartbeat is written.
    heartbeat_seconds: float = 10.0
    #: A running job whose heartbeat is older than this has lost its worker.
    stale_seconds: float = 60.0
    #: How often a consumer looks for stale jobs and lost messages.
    sweep_seconds: float = 30.0
    #: A job failed this many days ago loses its inputs (:func:`inputs_removed_after_failure`:
    #: a submission's request file): it can no longer be retried, only submitted again.
    failed_input_days: float = 30.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("sqlite:///", "redis://", "rediss://")):
            raise ConfigError(f"job queue URL {self.url!r}: use sqlite:///PATH or "
                              "redis://HOST:PORT/DB")
        if self.workers < 1 or not 0 < 2 * self.heartbeat_seconds <= self.stale_seconds:
            raise ConfigError("job queue: workers must be at least 1 and stale_seconds at "
                              "least twice heartbeat_seconds")
        if not self.failed_input_days > 0:
            raise ConfigError("job queue: failed_input_days must be more than 0")

    @classmethod
    def embedded(cls, data_dir: Path, **options: Any) -> QueueSettings:
        """The embedded default: a SQLite queue file in ``data_dir``."""
        return cls(url=f"sqlite:///{Path(data_dir).resolve() / EMBEDDED_FILE}", **options)


def inputs_removed_after_failure(*names: str) -> Callable[[F], F]:
    """Mark a job function's keyword arguments naming files that are deleted once the job
    has been ``failed`` for ``failed_input_days`` (:meth:`JobQueue.expire_failed_inputs`).

    >>> @inputs_removed_after_failure("request")
    ... def job(*, request: str, master: str) -> None: ...
    >>> job.inputs_removed_after_failure
    ('request',)
    """
    def mark(function: F) -> F:
        function.inputs_removed_after_failure = names  # type: ignore[attr-defined]
        return function

    return mark


def _inputs(job: JobRecord) -> list[Path]:
    try:
        names = getattr(resolve(job.function), "inputs_removed_after_failure", ())
    except (ImportError, AttributeError, PipelineError):
        return []  # a job of code no longer here: nothing known to remove
    return [Path(job.kwargs[n]) for n in names if isinstance(job.kwargs.get(n), str)]


def existing_inputs(job: JobRecord) -> list[Path]:
    """The job's removable inputs that are still on disk."""
    return [p for p in _inputs(job) if p.exists()]


def missing_inputs(job: JobRecord) -> list[Path]:
    """The job's removable inputs that are gone (expired, or deleted by hand)."""
    return [p for p in _inputs(job) if not p.exists()]


def make_huey(settings: QueueSettings) -> Huey:
    """The Huey instance for ``settings`` (no results kept: the job table has them)."""
    if settings.url.startswith("sqlite:///"):
        path = Path(settings.url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(settings.name, filename=str(path), results=False)
    return RedisHuey(settings.name, url=settings.url, results=False)


class JobQueue:
    """The job table and the queue together: submit, retry, sweep, and the Huey task."""

    def __init__(self, store: JobStore, settings: QueueSettings, *,
                 engine: EngineChoice | None = None) -> None:
        self.store = store
        self.settings = settings
        #: The engine this process's consumers match on (None: DuckDB, the default).
        self.engine = engine
        self.huey = make_huey(settings)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._task = self.huey.task(name="run_job")(self._run)

    def submit(self, kind: str, function: str, kwargs: dict[str, Any],
               **fields: Any) -> JobRecord:
        """Record a job (:meth:`JobStore.enqueue` takes the same arguments) and send it.

        A recorded job runs: if the queue cannot be reached now, a later sweep sends it.
        """
        job = self.store.enqueue(kind, function, kwargs, **fields)
        self._send_or_leave(job.id)
        return job

    def send(self, job_id: str) -> None:
        """Put a job id on the queue (again); a worker runs it if it is still queued."""
        self._task(job_id)

    def retry(self, job_id: str) -> JobRecord | None:
        """Re-queue a ``failed`` job and send it; None when it is not ``failed``.

        Raises :class:`~lastknown.errors.ConflictError` when its inputs were removed
        (:meth:`expire_failed_inputs`): it must be submitted again."""
        found = self.store.get(job_id)
        if found is not None and found.status == "failed" and missing_inputs(found):
            raise ConflictError(
                f"job {job_id} failed more than {self.settings.failed_input_days:g} days ago "
                "and its uploaded file was deleted then; submit it again")
        job = self.store.retry(job_id)
        if job is not None:
            log.info("job %s re-queued by retry", job_id)
            self._send_or_leave(job_id)
        return job

    def sweep(self) -> Recovery:
        """Re-queue or fail jobs of dead workers; re-send ids of jobs waiting so long that
        their message may be lost (and that are not on the queue). Safe to run anywhere,
        any number of times."""
        cutoff = now_utc() - timedelta(seconds=self.settings.stale_seconds)
        recovery = self.store.recover_stale(cutoff)
        for job_id in recovery.requeued:
            log.warning("job %s: its worker stopped; re-queued", job_id)
            self.send(job_id)
        for job_id in recovery.failed:
            log.warning("job %s: its worker stopped and it has no attempts left", job_id)
        self.expire_failed_inputs()
        waiting = self.store.waiting_since(cutoff)
        if waiting:
            pending = {str(task.args[0]) for task in self.huey.pending() if task.args}
            for job_id in waiting:
                if job_id not in pending and self.store.touch_queued(job_id):
                    log.warning("job %s: waited without a message on the queue; re-sent",
                                job_id)
                    self.send(job_id)
        return recovery

    def expire_failed_inputs(self) -> int:
        """Delete the inputs (:func:`inputs_removed_after_failure`) of jobs failed more than
        ``failed_input_days`` ago, e.g. a refused submission's request file, which names
        people; return how many files were deleted. Run by every sweep."""
        cutoff = now_utc() - timedelta(days=self.settings.failed_input_days)
        removed = 0
        for job in self.store.failed_before(cutoff):
            for path in existing_inputs(job):
                path.unlink(missing_ok=True)
                removed += 1
                log.info("job %s failed more than %g days ago: its input %s was deleted",
                         job.id, self.settings.failed_input_days, path.name)
        return removed

    def close(self) -> None:
        """Close the queue's connections (after its workers have stopped); the job store
        is the caller's to close."""
        self.huey.storage.close()
        pool = getattr(self.huey.storage, "pool", None)  # Redis: its connection pool
        if pool is not None:
            pool.disconnect()

    def _send_or_leave(self, job_id: str) -> None:
        try:
            self.send(job_id)
        except Exception:  # the job is recorded as queued: the sweep sends it later
            log.exception("job %s recorded but not sent; a sweep will send it", job_id)

    def _run(self, job_id: str) -> str:
        worker = f"{self.worker_id}/{threading.current_thread().name}"
        return run_job(self.store, job_id, worker,
                       heartbeat_seconds=self.settings.heartbeat_seconds, engine=self.engine)
