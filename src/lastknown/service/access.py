"""The access log: every page view and API call — who, role, what, when, from where,
success — the audit fields of IRS Publication 1075 (section 9.3.1).

One row per request, written after the response is known. The object is the request's
*path*: query strings and bodies are never logged (a form could carry a TIN), and an
endpoint may add a short ``detail`` (``request.state.access_detail``) that names what it
did without quoting values. Static files are not page views and are not logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from lastknown.service import db as t
from lastknown.service.db import AppDB
from lastknown.service.errors import without_tins
from lastknown.service.roles import Principal


@dataclass(frozen=True, kw_only=True)
class AccessEvent:
    """One request as the access log keeps it."""

    username: str | None
    role: str | None
    event_type: str
    method: str
    object: str
    status: int
    origin_ip: str
    user_agent: str
    detail: str = ""


def record(db: AppDB, event: AccessEvent) -> None:
    with db.begin() as conn:
        conn.execute(t.access_log.insert().values(
            at=t.now(), username=event.username and event.username[:100], role=event.role,
            event_type=event.event_type[:100], method=event.method[:10],
            object=without_tins(event.object)[:500], status=event.status,
            success=event.status < 400, origin_ip=event.origin_ip[:64],
            user_agent=without_tins(event.user_agent)[:300],
            detail=without_tins(event.detail)[:500]))


def event_of(request: Request, status: int) -> AccessEvent:
    """What to log of a finished request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    name = getattr(route, "name", None) or "unknown_path"
    username = principal.username if principal else getattr(request.state, "login_name", None)
    via = f" via API token #{principal.token_id}" if principal and principal.token_id else ""
    return AccessEvent(
        username=username, role=principal.role.value if principal else None,
        event_type=getattr(request.state, "event_type", name), method=request.method,
        object=request.url.path, status=status,
        origin_ip=request.client.host if request.client else "unknown",
        user_agent=request.headers.get("user-agent", ""),
        detail=getattr(request.state, "access_detail", "") + via)


def install(app: FastAPI) -> None:
    """Log every request except static files (a failure to log fails the request)."""

    @app.middleware("http")
    async def log_access(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/static/"):
            return await call_next(request)
        try:
            response = await call_next(request)
        except Exception:
            await run_in_threadpool(record, request.app.state.db, event_of(request, 500))
            raise
        await run_in_threadpool(record, request.app.state.db,
                                event_of(request, response.status_code))
        return response


@dataclass(frozen=True, kw_only=True)
class AccessFilter:
    """The auditor's filter on the access log; None means any."""

    username: str | None = None
    event_type: str | None = None
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


def query(db: AppDB, f: AccessFilter) -> list[dict[str, Any]]:
    """Log rows matching ``f``, newest first."""
    log = t.access_log
    q = sa.select(log).order_by(log.c.id.desc()).limit(max(1, min(f.limit, 5000)))
    if f.username:
        q = q.where(log.c.username == f.username.strip().casefold())
    if f.event_type:
        q = q.where(log.c.event_type == f.event_type)
    if f.success is not None:
        q = q.where(log.c.success.is_(f.success))
    if f.since:
        q = q.where(log.c.at >= f.since)
    if f.until:
        q = q.where(log.c.at < f.until)
    with db.begin() as conn:
        return [{**dict(r), "at": t.utc(r["at"])} for r in conn.execute(q).mappings()]
