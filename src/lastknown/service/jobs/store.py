"""The job table: the service's record of every long piece of work and where it stands.

The queue (Huey) only carries job ids; this table is the truth. A job moves
``queued → running → done | failed``; every move is one conditional UPDATE, so two
workers given the same id (a duplicate delivery, a re-queue racing a slow worker) can
never both run it: :meth:`JobStore.claim` succeeds for one of them only.

A worker that dies mid-job leaves the row ``running`` with a heartbeat that stops
moving; :meth:`JobStore.recover_stale` puts such a job back in the queue while it has
attempts left, and marks it ``failed`` with :data:`WORKER_STOPPED` otherwise, to be
re-queued by :meth:`JobStore.retry`.

The table has its own ``MetaData`` and works on SQLite and PostgreSQL; the service's
database URL is passed in and the table is created when missing.

>>> store = JobStore("sqlite://")
>>> job = store.enqueue("prepare", "lastknown.workflow:prepare", {"request": "/in/r.csv"},
...                     batch_id="2026-0142", agency="ICE", submitted_by="dana")
>>> store.claim(job.id, worker="w1").status, store.claim(job.id, worker="w2")
('running', None)
>>> store.set_stage(job.id, "w1", "match"), store.finish(job.id, "w1")
(True, True)
>>> store.get(job.id).status
'done'
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from lastknown.errors import ConfigError, PipelineError

#: Job kinds and their default ``max_attempts``: a prepare only rebuilds a held package,
#: so a dead worker's prepare runs again by itself; a release killed mid-way waits for a
#: person to retry it (after the publish protocol's recovery has settled it).
KINDS = {"prepare": 3, "release": 1}
STATUSES = ("queued", "running", "done", "failed")
#: The message of a job whose worker stopped and that has no attempts left.
WORKER_STOPPED = "worker stopped; retry"
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

metadata = sa.MetaData()
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("batch_id", sa.String(200), index=True),
    sa.Column("agency", sa.String(200), index=True),
    sa.Column("submitted_by", sa.String(200), index=True),
    sa.Column("spec", sa.JSON, nullable=False),  # {"function": "mod:attr", "kwargs": {...}}
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.Column("stage", sa.String(100)),
    sa.Column("stages_done", sa.Integer, nullable=False, default=0),
    sa.Column("stages_total", sa.Integer),
    sa.Column("message", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
)


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """One row of the job table, as read."""

    id: str
    kind: str
    batch_id: str | None
    agency: str | None
    submitted_by: str | None
    function: str
    kwargs: dict[str, Any]
    status: str
    stage: str | None
    stages_done: int
    stages_total: int | None
    message: str | None
    attempts: int
    max_attempts: int
    worker: str | None
    created_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @property
    def fraction(self) -> float | None:
        """Share of stages done (1.0 when done), None while the total is unknown.

        >>> store = JobStore("sqlite://")
        >>> job = store.enqueue("prepare", "m:f", {}, stages_total=4)
        >>> _ = store.claim(job.id, "w"), store.set_stage(job.id, "w", "a")
        >>> _ = store.set_stage(job.id, "w", "b")
        >>> store.get(job.id).fraction
        0.25
        """
        if self.status == "done":
            return 1.0
        if not self.stages_total:
            return None
        return min(self.stages_done / self.stages_total, 1.0)

    def public(self) -> dict[str, Any]:
        """What a page or API response may show of the job: never its arguments (server
        paths) or worker; times as ISO 8601.

        >>> store = JobStore("sqlite://")
        >>> shown = store.enqueue("prepare", "m:f", {"request": "/srv/in/r.csv"}).public()
        >>> sorted(shown)[:6], "/srv/in/r.csv" in str(shown)
        (['agency', 'attempts', 'batch_id', 'created_at', 'finished_at', 'fraction'], False)
        """
        shown = {k: getattr(self, k) for k in _PUBLIC}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in shown.items()}


@dataclass(frozen=True)
class Recovery:
    """What :meth:`JobStore.recover_stale` did: jobs put back in the queue, jobs failed."""

    requeued: list[str]
    failed: list[str]


class JobStore:
    """The job table on one database (a URL or an existing SQLAlchemy engine)."""

    def __init__(self, db: str | sa.Engine, *, create: bool = True) -> None:
        """Raises :class:`ConfigError` when the database cannot be reached or used."""
        try:
            self.engine = db if isinstance(db, sa.Engine) else _engine(db)
            if create:
                create_table(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise ConfigError(f"cannot use the job table in {_shown(db)}: {type(exc).__name__}; "
                              "check the service's database URL") from exc

    def enqueue(self, kind: str, function: str, kwargs: dict[str, Any], *,
                batch_id: str | None = None, agency: str | None = None,
                submitted_by: str | None = None, max_attempts: int | None = None,
                stages_total: int | None = None) -> JobRecord:
        """Record a new ``queued`` job; the caller then sends its id to the queue.

        ``function`` is an import path ``module:attribute``; ``kwargs`` must be JSON
        (paths as strings); ``max_attempts`` defaults by kind (:data:`KINDS`).
        """
        max_attempts = KINDS.get(kind, 1) if max_attempts is None else max_attempts
        if kind not in KINDS or not _FUNCTION.match(function) or max_attempts < 1:
            raise PipelineError(f"bad job: kind {kind!r}, function {function!r}, "
                                f"max_attempts {max_attempts}")
        try:
            spec = json.loads(json.dumps({"function": function, "kwargs": kwargs}))
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"job arguments must be JSON: {exc}") from exc
        now = now_utc()
        job_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(
                id=job_id, kind=kind, batch_id=batch_id, agency=agency,
                submitted_by=submitted_by, spec=spec, status="queued", stages_done=0,
                stages_total=stages_total, attempts=0, max_attempts=max_attempts,
                created_at=now, queued_at=now))
        return self._must_get(job_id)

    def claim(self, job_id: str, worker: str) -> JobRecord | None:
        """Mark a ``queued`` job ``running`` by ``worker``; None if it is not queued."""
        now = now_utc()
        claimed = self._update(job_id, jobs.c.status == "queued", status="running",
                               worker=worker, attempts=jobs.c.attempts + 1, started_at=now,
                               heartbeat_at=now, finished_at=None, stage=None,
                               stages_done=0, message=None)
        return self._must_get(job_id) if claimed else None

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Note that ``worker`` is still running the job; False if it no longer owns it."""
        return self._update(job_id, _owned(worker), heartbeat_at=now_utc())

    def set_stage(self, job_id: str, worker: str, stage: str) -> bool:
        """Enter ``stage`` (the previous one, if any, counts as done); a heartbeat too."""
        done = sa.case((jobs.c.stage.is_(None), jobs.c.stages_done),
                       else_=jobs.c.stages_done + 1)
        return self._update(job_id, _owned(worker), stage=stage[:100], stages_done=done,
                            heartbeat_at=now_utc())

    def finish(self, job_id: str, worker: str) -> bool:
        """Mark the job ``done``; False if ``worker`` no longer owns it."""
        done = sa.func.coalesce(jobs.c.stages_total, sa.case(
            (jobs.c.stage.is_(None), jobs.c.stages_done), else_=jobs.c.stages_done + 1))
        return self._update(job_id, _owned(worker), status="done", stages_done=done,
                            finished_at=now_utc())

    def fail(self, job_id: str, worker: str, message: str) -> bool:
        """Mark the job ``failed`` with a message fit to show its submitter."""
        return self._update(job_id, _owned(worker), status="failed", message=message,
                            finished_at=now_utc())

    def retry(self, job_id: str) -> JobRecord | None:
        """Put a ``failed`` job back in the queue with a fresh count of attempts.

        None when the job is not ``failed``. The caller sends its id to the queue.
        """
        ok = self._update(job_id, jobs.c.status == "failed", status="queued", attempts=0,
                          worker=None, message=None, queued_at=now_utc(), finished_at=None)
        return self._must_get(job_id) if ok else None

    def recover_stale(self, cutoff: datetime) -> Recovery:
        """Re-queue (or fail, when out of attempts) running jobs whose last heartbeat is
        older than ``cutoff``. Each row is changed by one conditional UPDATE, so two
        workers recovering at once re-queue a job once."""
        stale = sa.and_(jobs.c.status == "running", jobs.c.heartbeat_at < cutoff)
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts)
                                 .where(stale)).all()
        recovery = Recovery([], [])
        for job_id, attempts, max_attempts in found:
            if attempts < max_attempts:
                if self._update(job_id, stale, status="queued", worker=None,
                                queued_at=now_utc()):
                    recovery.requeued.append(job_id)
            elif self._update(job_id, stale, status="failed", message=WORKER_STOPPED,
                              finished_at=now_utc()):
                recovery.failed.append(job_id)
        return recovery

    def waiting_since(self, cutoff: datetime) -> list[str]:
        """Ids of jobs ``queued`` since before ``cutoff`` (their message may be lost)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(jobs.c.id).where(
                jobs.c.status == "queued", jobs.c.queued_at < cutoff)).scalars())

    def failed_before(self, cutoff: datetime) -> list[JobRecord]:
        """Jobs ``failed`` since before ``cutoff`` (their inputs may have outlived their use)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs).where(
                jobs.c.status == "failed", jobs.c.finished_at < cutoff)).mappings().all()
        return [_record(row) for row in rows]

    def touch_queued(self, job_id: str) -> bool:
        """Note that a ``queued`` job's id was sent to the queue again."""
        return self._update(job_id, jobs.c.status == "queued", queued_at=now_utc())

    def get(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return None if row is None else _record(row)

    def list_jobs(self, *, agency: str | None = None, submitted_by: str | None = None,
                  batch_id: str | None = None, status: str | None = None,
                  limit: int = 100) -> list[JobRecord]:
        """Jobs matching every filter given, newest first."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
        for column, value in (("agency", agency), ("submitted_by", submitted_by),
                              ("batch_id", batch_id), ("status", status)):
            if value is not None:
                query = query.where(jobs.c[column] == value)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def close(self) -> None:
        self.engine.dispose()

    def _update(self, job_id: str, condition: sa.ColumnElement[bool], **values: Any) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(jobs.update().where(jobs.c.id == job_id, condition)
                                  .values(**values))
        return bool(result.rowcount == 1)

    def _must_get(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise PipelineError(f"job {job_id} vanished from the job table")
        return record


def create_table(engine: sa.Engine) -> None:
    """Create the job table when missing (PostgreSQL: under a lock, so two first
    starts do not both create it)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('lastknown.jobs'))"))
        metadata.create_all(conn, checkfirst=True)


def _shown(db: str | sa.Engine) -> str:
    """A database URL fit to print: without its password."""
    try:
        url = db.url if isinstance(db, sa.Engine) else sa.make_url(db)
    except sa.exc.ArgumentError:
        return "the database URL given"
    return url.render_as_string(hide_password=True)


def _owned(worker: str) -> sa.ColumnElement[bool]:
    return sa.and_(jobs.c.status == "running", jobs.c.worker == worker)


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()
    return engine


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_PUBLIC = ("id", "kind", "batch_id", "agency", "submitted_by", "status", "stage", "stages_done",
           "stages_total", "fraction", "message", "attempts", "max_attempts", "created_at",
           "started_at", "finished_at")
_TIMES = ("created_at", "queued_at", "started_at", "finished_at", "heartbeat_at")
_FIELDS = ("id", "kind", "batch_id", "agency", "submitted_by", "status", "stage", "stages_done",
           "stages_total", "message", "attempts", "max_attempts", "worker")


def _record(row: sa.RowMapping) -> JobRecord:
    spec = row["spec"]
    times: dict[str, Any] = {k: _utc(row[k]) for k in _TIMES}
    fields: dict[str, Any] = {k: row[k] for k in _FIELDS}
    return JobRecord(function=spec["function"], kwargs=spec["kwargs"], **fields, **times)
