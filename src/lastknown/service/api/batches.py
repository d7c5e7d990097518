"""The batch API: a submitter submits and downloads, an officer reviews and decides.

``POST /api/batches`` is a multipart form: the request file as ``file`` and the batch
metadata as fields (the same as the submit page). A submitter sees only their agency's
batches; another agency's batch id answers 404, as an unknown one does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lastknown.errors import InputError, NotFoundError
from lastknown.service import accounts, batches, submission
from lastknown.service.app import job_queue
from lastknown.service.auth import AuthenticatedFirst
from lastknown.service.errors import ApiError
from lastknown.service.roles import Principal, Role, allow
from lastknown.service.settings import ServiceSettings

router = APIRouter(tags=["batches"], route_class=AuthenticatedFirst)  # it takes uploads
Submitter = Annotated[Principal, Depends(allow(Role.SUBMITTER))]
Officer = Annotated[Principal, Depends(allow(Role.OFFICER))]
Either = Annotated[Principal, Depends(allow(Role.SUBMITTER, Role.OFFICER))]
BatchId = Annotated[str, PathParam(max_length=64)]
_CHUNK = 1024 * 1024


class Decision(BaseModel):
    #: Required to deny: what the requester and the auditor will read.
    reason: str = Field(default="", max_length=2000)


async def store_request(settings: ServiceSettings, upload: UploadFile) -> tuple[Path, Path]:
    """Copy the uploaded request into a fresh submission folder, chunk by chunk, up to the
    upload limit (413 beyond it). On any failure the folder and the partial file go."""
    limit = settings.upload_limit_mb * 1024 * 1024
    name = submission.request_name(upload.filename)
    folder = await run_in_threadpool(submission.new_upload_dir, settings)
    target = folder / name
    try:
        written = 0
        with target.open("wb") as out:
            target.chmod(0o600)
            while chunk := await upload.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, "too_large", f"the upload is over the limit of "
                                                     f"{settings.upload_limit_mb} MiB")
                out.write(chunk)
        if written == 0:
            raise InputError("the request file is empty")
    except BaseException:
        submission.remove_upload(folder)
        raise
    return folder, target


def agency_of(request: Request, user: Principal) -> dict[str, Any]:
    for agency in accounts.list_agencies(request.app.state.db):
        if agency["id"] == user.agency_id:
            return agency
    raise ApiError(403, "forbidden", "your account belongs to no agency")


async def submit(request: Request, user: Principal, form: submission.BatchForm,
                 upload: UploadFile) -> dict[str, Any]:
    """Store the upload, write the batch, queue its preparation (pages and API alike)."""
    settings: ServiceSettings = request.app.state.settings
    agency = await run_in_threadpool(agency_of, request, user)
    folder, path = await store_request(settings, upload)
    try:
        job = await run_in_threadpool(
            submission.submit, request.app.state.db, settings, job_queue(request.app),
            agency=agency, form=form,
            upload_dir=folder, request=path, username=user.username)
    except BaseException:
        submission.remove_upload(folder)
        raise
    request.state.access_detail = f"submitted batch {job.batch_id}"
    return batches.view(job, None, officer=False)


def batch_view(request: Request, user: Principal, batch_id: str) -> dict[str, Any]:
    """One batch as ``user`` may see it (404 for another agency's)."""
    queue = job_queue(request.app)
    officer = user.role is Role.OFFICER
    try:
        job = batches.job_for(queue, batch_id, agency=None if officer else user.agency)
    except NotFoundError:
        if not officer:
            raise
        job = None  # held from the command line: the officer still reviews it
    state = batches.held_state(request.app.state.settings.deployment, batch_id)
    if job is None and state is None:
        raise NotFoundError(f"no batch {batch_id}")
    return batches.view(job, state, officer=officer)


def list_views(request: Request, user: Principal) -> list[dict[str, Any]]:
    """The batches ``user`` may see, newest first: a submitter's agency's, or (officer)
    every submitted or held batch."""
    from lastknown.workflow import list_batches

    deployment = request.app.state.settings.deployment
    officer = user.role is Role.OFFICER
    jobs = batches.prepare_jobs(job_queue(request.app), agency=None if officer else user.agency)
    states = {batches.key(s.batch_id): s for s in list_batches(deployment)}
    shown = [batches.view(j, states.pop(batches.key(j.batch_id or ""), None), officer=officer)
             for j in jobs]
    if officer:  # batches held from the command line
        shown += [batches.view(None, s, officer=True) for s in reversed(states.values())]
    return shown


def approve(request: Request, user: Principal, batch_id: str) -> dict[str, Any]:
    """Release a held batch (see docs/SERVICE.md: in the request, not as a job)."""
    from lastknown.workflow import release

    settings: ServiceSettings = request.app.state.settings
    release(batch_id, approver=user.username, out=batches.package_folder(settings, batch_id),
            deployment=settings.deployment)
    request.state.access_detail = f"approved batch {batch_id}"
    return batch_view(request, user, batch_id)


def deny(request: Request, user: Principal, batch_id: str, reason: str) -> dict[str, Any]:
    from lastknown.workflow import deny as deny_batch

    deny_batch(batch_id, officer=user.username, reason=reason,
               deployment=request.app.state.settings.deployment)
    request.state.access_detail = f"denied batch {batch_id}"
    return batch_view(request, user, batch_id)


def released_zip(request: Request, user: Principal, batch_id: str) -> FileResponse:
    """The released package of the user's agency's batch as a zip (404 otherwise)."""
    settings: ServiceSettings = request.app.state.settings
    job = batches.job_for(job_queue(request.app), batch_id, agency=user.agency)
    state = batches.held_state(settings.deployment, job.batch_id or batch_id)
    if state is None or state.status != "released":
        raise NotFoundError(f"batch {batch_id} has no released package (yet)")
    path = batches.package_zip(settings, state)
    request.state.access_detail = f"downloaded the package of batch {state.batch_id}"
    return FileResponse(path, media_type="application/zip",
                        filename=f"{batches.key(state.batch_id)}.zip")


def released_file(request: Request, user: Principal, batch_id: str, name: str) -> FileResponse:
    """One file of the released package (404 unless it is one)."""
    settings: ServiceSettings = request.app.state.settings
    job = batches.job_for(job_queue(request.app), batch_id, agency=user.agency)
    state = batches.held_state(settings.deployment, job.batch_id or batch_id)
    found = [p for p in batches.package_files(state) if p.name == name] if state else []
    if not found:
        raise NotFoundError(f"batch {batch_id} has no released file {name!r}")
    request.state.access_detail = f"downloaded {name} of batch {state.batch_id if state else ''}"
    return FileResponse(found[0], filename=name)


def retry(request: Request, user: Principal, batch_id: str) -> dict[str, Any]:
    """Queue a failed preparation again."""
    queue = job_queue(request.app)
    job = batches.job_for(queue, batch_id, agency=user.agency)
    if queue.retry(job.id) is None:
        raise ApiError(409, "conflict", f"batch {batch_id} has not failed; nothing to retry")
    request.state.access_detail = f"retried batch {batch_id}"
    return batch_view(request, user, batch_id)


# --- routes -----------------------------------------------------------------------------

@router.post("/batches", name="api_submit_batch", status_code=202)
async def api_submit(request: Request, user: Submitter, file: Annotated[UploadFile, File()],
                     batch_id: Annotated[str, Form(max_length=64)],
                     requesting_official: Annotated[str, Form(max_length=300)],
                     official_title: Annotated[str, Form(max_length=300)],
                     reason: Annotated[str, Form(max_length=2000)],
                     statutes: Annotated[list[str], Form(max_length=50)],
                     certification: Annotated[str, Form(max_length=4000)],
                     certified: Annotated[bool, Form()] = False) -> dict[str, Any]:
    """Submit a request file (CSV, XLSX or Parquet) with its batch metadata; its
    preparation is queued (poll ``GET /api/batches/{batch_id}``)."""
    form = submission.BatchForm(batch_id=batch_id, requesting_official=requesting_official,
                             official_title=official_title, reason=reason,
                             statutes=tuple(statutes), certification=certification,
                             certified=certified)
    return await submit(request, user, form, file)


@router.get("/batches", name="api_list_batches")
async def api_list(request: Request, user: Either) -> list[dict[str, Any]]:
    """A submitter's agency's batches, or (officer) every batch; newest first."""
    return await run_in_threadpool(list_views, request, user)


@router.get("/batches/{batch_id}", name="api_batch_status")
async def api_status(request: Request, user: Either,
                     batch_id: BatchId) -> dict[str, Any]:
    """Where one batch stands: status, stage and progress while preparing, a failure's
    message, the decision, the package's files once released."""
    return await run_in_threadpool(batch_view, request, user, batch_id)


@router.post("/batches/{batch_id}/retry", name="api_retry_batch")
async def api_retry(request: Request, user: Submitter,
                    batch_id: BatchId) -> dict[str, Any]:
    """Queue a failed preparation again."""
    return await run_in_threadpool(retry, request, user, batch_id)


@router.get("/batches/{batch_id}/package", name="api_download_package")
async def api_package(request: Request, user: Submitter,
                      batch_id: BatchId) -> FileResponse:
    """The released package as a zip (recorded in the access log)."""
    return await run_in_threadpool(released_zip, request, user, batch_id)


@router.get("/batches/{batch_id}/review", name="api_batch_review")
async def api_review(request: Request, user: Officer,
                     batch_id: BatchId) -> dict[str, Any]:
    """The disclosure officer's review of a batch (no TIN; rivals' names masked)."""
    from lastknown.workflow import review

    found = await run_in_threadpool(review, batch_id, request.app.state.settings.deployment)
    return found.as_dict()


@router.post("/batches/{batch_id}/approve", name="api_approve_batch")
async def api_approve(request: Request, user: Officer,
                      batch_id: BatchId) -> dict[str, Any]:
    """Release a held batch: its disclosures enter the ledger as its package is
    delivered. Refused (409) for one's own submission or over a cap."""
    return await run_in_threadpool(approve, request, user, batch_id)


@router.post("/batches/{batch_id}/deny", name="api_deny_batch")
async def api_deny(request: Request, user: Officer, body: Decision,
                   batch_id: BatchId) -> dict[str, Any]:
    """Deny a held batch with a written reason; nothing is disclosed."""
    return await run_in_threadpool(deny, request, user, batch_id, body.reason)
