"""The auditor's pages (read-only): ledger verify, annual report, accounting, access log.

The accounting page is the one place a TIN is typed in. It is POSTed in the form body
(never a URL, so not in a browser history, a proxy log or a Referer), the field comes
back empty, the results are keyed by batch and date and never show it, the access log
records only how many disclosures were found, and the reply is ``Cache-Control:
no-store``. The ledger records the lookup under a hash of the TIN (``ledger taxpayer``
does the same), so an auditor's own lookups stay reviewable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from lastknown.errors import InputError
from lastknown.service import access, auditing
from lastknown.service.api.auditor import origin
from lastknown.service.errors import ApiError
from lastknown.service.pages import render
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(prefix="/auditor")
Auditor = Annotated[Principal, Depends(allow(Role.AUDITOR))]


@router.get("/verify", name="auditor_verify")
async def verify(request: Request, user: Auditor) -> Response:
    try:
        result = await run_in_threadpool(auditing.verify, request.app.state.settings.deployment,
                                         user=user.username, origin=origin(request))
    except ApiError as error:  # no ledger yet: say so on the page
        return render(request, "auditor_verify.html", {"result": None, "problem": error.message})
    request.state.access_detail = "verified" if result["ok"] else "TAMPERED"
    return render(request, "auditor_verify.html", {"result": result, "problem": None})


@router.get("/report", name="auditor_report")
async def report(request: Request, user: Auditor,
                 year: Annotated[int | None, Query(ge=1900, le=9998)] = None) -> Response:
    year = year or datetime.now(UTC).year
    try:
        rows = await run_in_threadpool(auditing.yearly_report,
                                       request.app.state.settings.deployment, year,
                                       user=user.username, origin=origin(request))
    except ApiError as error:
        return render(request, "auditor_report.html",
                      {"year": year, "rows": None, "problem": error.message})
    return render(request, "auditor_report.html", {"year": year, "rows": rows, "problem": None})


@router.get("/accounting", name="auditor_accounting_form")
def accounting_form(request: Request, user: Auditor) -> Response:
    return render(request, "auditor_accounting.html", {"found": None, "problem": None})


@router.post("/accounting", name="auditor_accounting")
async def accounting(request: Request, user: Auditor,
                     tin: Annotated[str, Form(max_length=20)]) -> Response:
    found, problem, status = None, None, 200
    try:
        found = await run_in_threadpool(auditing.accounting,
                                        request.app.state.settings.deployment, tin,
                                        user=user.username, origin=origin(request))
        request.state.access_detail = f"{len(found)} disclosure(s) found"
    except InputError as error:  # its message never quotes the value typed
        problem, status = str(error), 400
    except ApiError as error:
        problem, status = error.message, error.status
    response = render(request, "auditor_accounting.html", {"found": found, "problem": problem},
                      status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/access-log", name="auditor_access_log")
async def access_log(request: Request, user: Auditor,
                     username: Annotated[str, Query(max_length=100)] = "",
                     event_type: Annotated[str, Query(max_length=100)] = "",
                     outcome: Annotated[str, Query(pattern="^(|success|failure)$")] = "",
                     days: Annotated[int, Query(ge=1, le=3660)] = 30) -> Response:
    since = datetime.now(UTC) - timedelta(days=days)
    f = access.AccessFilter(username=username or None, event_type=event_type or None,
                            success={"success": True, "failure": False}.get(outcome),
                            since=since, limit=500)
    rows = await run_in_threadpool(access.query, request.app.state.db, f)
    return render(request, "auditor_access.html", {"rows": rows, "filter": {
        "username": username, "event_type": event_type, "outcome": outcome, "days": days}})
