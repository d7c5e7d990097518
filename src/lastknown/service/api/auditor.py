"""The auditor's API (read-only): ledger verify, yearly report, one taxpayer's
accounting, the access log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lastknown.service import access, auditing
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(tags=["auditor"])
Auditor = Annotated[Principal, Depends(allow(Role.AUDITOR))]


class VerifyResult(BaseModel):
    ok: bool
    ledger: str
    anchor_file: str
    entries: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    anchors_checked: int | None = None
    #: When ``ok`` is false: the first bad entry and what is wrong with it.
    problem: str | None = None


class TaxpayerQuery(BaseModel):
    #: Sent in the body, never in a URL; not echoed, not logged.
    tin: str = Field(max_length=20)


class AccessRow(BaseModel):
    at: datetime
    username: str | None
    role: str | None
    event_type: str
    method: str
    object: str
    status: int
    success: bool
    origin_ip: str
    user_agent: str
    detail: str


def origin(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/ledger/verify", name="api_ledger_verify")
async def ledger_verify(request: Request, user: Auditor) -> VerifyResult:
    """Recompute the hash chain and check the deployment's anchor file."""
    result = await run_in_threadpool(auditing.verify, request.app.state.settings.deployment,
                                     user=user.username, origin=origin(request))
    request.state.access_detail = "verified" if result["ok"] else "TAMPERED"
    return VerifyResult(**result)


@router.get("/ledger/report", name="api_ledger_report")
async def ledger_report(request: Request, user: Auditor,
                        year: Annotated[int, Query(ge=1900, le=9998)]) -> list[dict[str, Any]]:
    """Per-agency figures for one calendar year (26 U.S.C. 6103(p)(3)(C))."""
    return await run_in_threadpool(auditing.yearly_report, request.app.state.settings.deployment,
                                   year, user=user.username, origin=origin(request))


@router.post("/ledger/accounting", name="api_ledger_accounting")
async def ledger_accounting(request: Request, response: Response, body: TaxpayerQuery,
                            user: Auditor) -> list[dict[str, Any]]:
    """Every disclosure of one taxpayer, by batch and date (the TIN is not returned)."""
    response.headers["Cache-Control"] = "no-store"
    found = await run_in_threadpool(auditing.accounting, request.app.state.settings.deployment,
                                    body.tin, user=user.username, origin=origin(request))
    request.state.access_detail = f"{len(found)} disclosure(s) found"
    return found


@router.get("/access-log", name="api_access_log")
async def access_log(request: Request, user: Auditor,
                     username: Annotated[str | None, Query(max_length=100)] = None,
                     event_type: Annotated[str | None, Query(max_length=100)] = None,
                     success: bool | None = None, since: datetime | None = None,
                     until: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[AccessRow]:
    """The access log, newest first, filtered."""
    rows = await run_in_threadpool(access.query, request.app.state.db, access.AccessFilter(
        username=username, event_type=event_type, success=success, since=since, until=until,
        limit=limit))
    return [AccessRow(**{k: v for k, v in r.items() if k != "id"}) for r in rows]
