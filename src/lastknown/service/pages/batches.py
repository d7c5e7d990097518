"""The submitter's pages: submit a request, follow its batches, download released answers.

Only the submitter's own agency's batches exist here: another agency's batch id is
"not found", as an unknown one is. A batch being prepared refreshes its page every few
seconds (a ``<meta refresh>``; the JSON of ``GET /api/batches/{id}`` serves scripts).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from lastknown.errors import InputError, PolicyError
from lastknown.service import submission
from lastknown.service.api import batches as api
from lastknown.service.auth import AuthenticatedFirst
from lastknown.service.errors import ApiError, without_paths
from lastknown.service.pages import render
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(route_class=AuthenticatedFirst)  # it takes uploads
Submitter = Annotated[Principal, Depends(allow(Role.SUBMITTER))]
#: Seconds between refreshes of a batch page while its batch is being prepared.
REFRESH_SECONDS = 3


@router.get("/batches", name="batches_page")
async def batch_list(request: Request, user: Submitter) -> Response:
    rows = await run_in_threadpool(api.list_views, request, user)
    busy = any(r["status"] in ("queued", "running") for r in rows)
    return render(request, "batches.html", {"rows": rows,
                                            "refresh": REFRESH_SECONDS if busy else None})


def _form_page(request: Request, user: Principal, *, values: dict[str, Any] | None = None,
               problem: str | None = None, status_code: int = 200) -> Response:
    agency = api.agency_of(request, user)
    return render(request, "batch_new.html", {
        "agency": agency, "values": values or {}, "problem": problem,
        "limit_mb": request.app.state.settings.upload_limit_mb}, status_code=status_code)


@router.get("/batches/new", name="batch_new_page")
async def batch_new(request: Request, user: Submitter) -> Response:
    return await run_in_threadpool(_form_page, request, user)


@router.post("/batches", name="batch_submit")
async def batch_submit(request: Request, user: Submitter, file: Annotated[UploadFile, File()],
                       batch_id: Annotated[str, Form(max_length=64)],
                       requesting_official: Annotated[str, Form(max_length=300)],
                       official_title: Annotated[str, Form(max_length=300)],
                       reason: Annotated[str, Form(max_length=2000)],
                       certification: Annotated[str, Form(max_length=4000)],
                       statutes: Annotated[list[str], Form(max_length=50)],
                       certified: Annotated[bool, Form()] = False) -> Response:
    form = submission.BatchForm(batch_id=batch_id, requesting_official=requesting_official,
                             official_title=official_title, reason=reason,
                             statutes=tuple(statutes), certification=certification,
                             certified=certified)
    try:
        shown = await api.submit(request, user, form, file)
    except (InputError, PolicyError) as error:  # say what to fix, keep what was typed
        values = {**form.document(user.agency or ""), "statutes": list(statutes)}
        return await run_in_threadpool(partial(
            _form_page, request, user, values=values, problem=without_paths(str(error)),
            status_code=409 if isinstance(error, PolicyError) else error_status(error)))
    except ApiError as error:
        if error.status != 413:
            raise
        return await run_in_threadpool(partial(_form_page, request, user,
                                               problem=error.message, status_code=413))
    return RedirectResponse(f"/batches/{shown['batch_id']}", status_code=303)


def error_status(error: InputError) -> int:
    """409 for a batch id used before, 400 for anything else to fix in the form."""
    from lastknown.errors import ConflictError

    return 409 if isinstance(error, ConflictError) else 400


@router.get("/batches/{batch_id}", name="batch_page")
async def batch_page(request: Request, user: Submitter, batch_id: api.BatchId) -> Response:
    shown = await run_in_threadpool(api.batch_view, request, user, batch_id)
    busy = shown["status"] in ("queued", "running")
    request.state.access_detail = f"viewed batch {shown['batch_id']}"
    return render(request, "batch.html", {"b": shown,
                                          "refresh": REFRESH_SECONDS if busy else None})


@router.post("/batches/{batch_id}/retry", name="batch_retry")
async def batch_retry(request: Request, user: Submitter, batch_id: api.BatchId) -> Response:
    shown = await run_in_threadpool(api.retry, request, user, batch_id)
    return RedirectResponse(f"/batches/{shown['batch_id']}", status_code=303)


@router.get("/batches/{batch_id}/package.zip", name="batch_download")
async def batch_download(request: Request, user: Submitter,
                         batch_id: api.BatchId) -> FileResponse:
    return await run_in_threadpool(api.released_zip, request, user, batch_id)


@router.get("/batches/{batch_id}/files/{name}", name="batch_download_file")
async def batch_file(request: Request, user: Submitter, batch_id: api.BatchId,
                     name: Annotated[str, api.PathParam(max_length=100)]) -> FileResponse:
    return await run_in_threadpool(api.released_file, request, user, batch_id, name)
