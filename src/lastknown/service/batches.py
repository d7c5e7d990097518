"""Batches in the service: where each stands, who may see it, its released package.

The job table (:mod:`lastknown.service.jobs`) is the service's register of submitted
batches (:mod:`lastknown.service.submission`): one ``prepare`` job per batch id,
carrying the agency and the submitter, so whose a batch is never depends on a file.
Where the batch stands after matching is the workflow's held state (``held`` /
``released`` / ``denied``); :func:`status_of` merges the two into what a page shows.
An officer's decision is :func:`lastknown.workflow.release` or
:func:`~lastknown.workflow.deny` (see :mod:`lastknown.service.api.batches`).

>>> status_of(None, None)
'unknown'
"""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lastknown.disclose.held import BatchState
from lastknown.disclose.record import record_name
from lastknown.errors import NotFoundError
from lastknown.service.jobs.queue import missing_inputs
from lastknown.service.jobs.store import JobRecord, jobs

if TYPE_CHECKING:
    from lastknown.config import Deployment
    from lastknown.service.jobs import JobQueue
    from lastknown.service.settings import ServiceSettings

#: What a batch page may say about each status.
STATUSES = ("queued", "running", "failed", "held", "released", "denied", "unknown")


def key(batch_id: str) -> str:
    """How batch ids compare (case-insensitively, as the ledger does)."""
    return record_name(batch_id)


def status_of(job: JobRecord | None, state: BatchState | None) -> str:
    """One word for a batch: the held state once there is one, else the job's."""
    if state is not None:
        return state.status
    if job is None:
        return "unknown"
    return {"queued": "queued", "running": "running", "failed": "failed"}.get(
        job.status, "unknown")


def prepare_jobs(queue: JobQueue, *, agency: str | None = None,
                 limit: int = 200) -> list[JobRecord]:
    """The submitted batches (newest first), of one agency or all."""
    return [j for j in queue.store.list_jobs(agency=agency, limit=limit) if j.kind == "prepare"]


def job_for(queue: JobQueue, batch_id: str, *, agency: str | None) -> JobRecord:
    """The prepare job of a batch; with ``agency``, only that agency's: another agency's
    batch is not found either (404, so its existence does not leak)."""
    query = sa.select(jobs.c.id).where(jobs.c.kind == "prepare",
                                       sa.func.lower(jobs.c.batch_id) == key(batch_id))
    if agency is not None:
        query = query.where(jobs.c.agency == agency)
    with queue.store.engine.connect() as conn:
        job_id = conn.execute(query.limit(1)).scalar()
    job = queue.store.get(job_id) if job_id else None
    if job is None:
        raise NotFoundError(f"no batch {batch_id} of your agency")
    return job


def held_state(deployment: Deployment, batch_id: str) -> BatchState | None:
    """The workflow's state of a batch, None before it is held."""
    from lastknown.workflow import get_batch

    try:
        return get_batch(batch_id, deployment)
    except NotFoundError:
        return None


def package_folder(settings: ServiceSettings, batch_id: str) -> Path:
    """Where an approved batch's package is delivered."""
    return settings.files_dir / "packages" / key(batch_id)


def package_files(state: BatchState) -> list[Path]:
    """The files of a released package (none unless released)."""
    if state.status != "released" or not state.released_to:
        return []
    folder = Path(state.released_to)
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def package_zip(settings: ServiceSettings, state: BatchState) -> Path:
    """The released package as one zip, made at the first download (atomically)."""
    files = package_files(state)
    if not files:
        raise NotFoundError(f"batch {state.batch_id} has no released package")
    target = settings.files_dir / "packages" / f"{key(state.batch_id)}.zip"
    if not target.is_file():
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in files:
                    archive.write(path, f"{key(state.batch_id)}/{path.name}")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def view(job: JobRecord | None, state: BatchState | None, *, officer: bool) -> dict[str, Any]:
    """What a page or the API shows of a batch. A submitter sees the counts only once
    the package is released (before that they would say what the master holds), never
    the internal outcomes; an officer sees the held counts too."""
    status = status_of(job, state)
    shown: dict[str, Any] = {
        "batch_id": state.batch_id if state else job.batch_id if job else None,
        "status": status,
        "agency": job.agency if job else state.requesting_agency if state else None,
        "submitted_by": job.submitted_by if job else state.submitted_by if state else None,
        "submitted_at": job.created_at.isoformat(timespec="seconds") if job
        else state.submitted_at if state else None,
        "stage": job.stage if job and status in ("queued", "running") else None,
        "fraction": job.fraction if job and status in ("queued", "running") else None,
        "message": job.message if job and status == "failed" else None,
        # a failed job can run again until its uploaded file is deleted (failed_input_days)
        "retryable": bool(job and status == "failed" and not missing_inputs(job)),
        "job_id": job.id if job else None,
        "decided_by": state.decided_by if state else None,
        "decided_at": state.decided_at if state else None,
        "deny_reason": state.deny_reason if state else None,
        "rows": None, "files": [],
    }
    if state is not None and (officer or status == "released"):
        shown["rows"] = {"total": state.rows_total, "matched": state.rows_matched,
                         "unmatched": state.rows_unmatched, "rejected": state.rows_rejected}
    if state is not None and status == "released":
        shown["files"] = [p.name for p in package_files(state)]
    return shown


def settle_interrupted(deployment: Deployment) -> list[str]:
    """Settle publish runs whose process died (the service's start): a release killed
    after its ledger commit is delivered, anything uncommitted removed (nothing was
    disclosed). A run still alive in another process is left alone."""
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.publish import recover_interrupted
    from lastknown.pipeline import journal_of

    journal = journal_of(deployment)
    if not journal.is_dir():
        return []
    ledger = open_ledger(deployment.ledger)
    try:
        return [done.describe() for done in recover_interrupted(
            ledger, journal, anchors=deployment.anchors)]
    finally:
        ledger.close()
