"""``create_app(settings)``: the FastAPI application behind ``lastknown serve``.

It wires the app database, the error shape, the access log, security headers and the
request-size limit around the API (``/api``, OpenAPI at ``/openapi.json``) and the
pages. It refuses to build when an endpoint declared no access rule
(:func:`lastknown.service.roles.route_rule`). Swagger UI and ReDoc are off: they load
scripts from a CDN.

>>> from pathlib import Path
>>> from lastknown.config import Deployment
>>> d = Deployment(ledger="sqlite:///:memory:", archive=Path("/x/archive"),
...                anchors=Path("/x/anchors.jsonl"), source="default")
>>> app = create_app(ServiceSettings(deployment=d, app_db="sqlite:///:memory:"))
>>> app.openapi()["info"]["title"]
'lastknown'
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastknown import __version__
from lastknown.errors import LastknownError, PipelineError
from lastknown.service import access, errors
from lastknown.service.auth import new_secret, password_hasher
from lastknown.service.db import AppDB, open_app_db
from lastknown.service.jobs import JobQueue, JobStore, QueueSettings
from lastknown.service.jobs.store import create_table
from lastknown.service.pages import STATIC
from lastknown.service.pages import router as page_router
from lastknown.service.roles import unguarded
from lastknown.service.settings import ServiceSettings

log = logging.getLogger("lastknown.service")

#: Headers on every response: no framing, no MIME sniffing, scripts and styles only from
#: this site, no Referer leaving it.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}


def create_app(settings: ServiceSettings, *, db: AppDB | None = None) -> FastAPI:
    """The service for one deployment (``db``: an already-open app database)."""
    from lastknown.service.api import router as api_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The embedded deployment runs its jobs in this process; production runs
        ``lastknown worker`` processes on the Redis queue instead."""
        from lastknown.service.batches import settle_interrupted
        from lastknown.service.jobs import start_embedded_worker, stop_embedded_worker

        try:  # a release killed with the last server: deliver it or undo it now
            for line in await run_in_threadpool(settle_interrupted, settings.deployment):
                log.warning("settled an interrupted run: %s", line)
        except LastknownError as exc:  # no ledger yet, or it is away: `lastknown recover`
            log.warning("interrupted runs not settled at start: %s", type(exc).__name__)
        worker = start_embedded_worker(job_queue(app)) if settings.queue is None else None
        try:
            yield
        finally:
            if worker is not None:
                stop_embedded_worker(worker)
            if app.state.queue is not None:
                app.state.queue.close()
                app.state.queue = None

    app = FastAPI(title="lastknown", version=__version__, docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="Last-known-address requests under 26 U.S.C. 6103(i)(2): "
                              "submit, review, release, audit. Errors: "
                              '{"error": {"status", "code", "message"}}.')
    app.state.settings = settings
    app.state.db = db or open_app_db(settings.app_db)
    app.state.hasher = password_hasher(settings.password_cost)
    app.state.dummy_hash = app.state.hasher.hash(new_secret())  # for unknown usernames
    app.state.queue, app.state.queue_lock = None, threading.Lock()
    create_table(app.state.db.engine)  # the job table, beside the app's (docs/JOBS.md)
    app.include_router(api_router)
    app.include_router(page_router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    missing = unguarded(app.routes)
    if missing:
        raise PipelineError(f"endpoints without an access rule: {', '.join(missing)}")
    app.add_middleware(BodyLimit, limit=settings.upload_limit_mb * 1024 * 1024)
    app.add_middleware(Contain)
    errors.install(app)
    access.install(app)  # outside the body limit: a refused upload is logged too

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def job_queue(app: FastAPI) -> JobQueue:
    """The deployment's job queue (opened at first use): the job table in the app
    database, Huey on Redis (``[service] queue``) or on the embedded SQLite file."""
    with app.state.queue_lock:
        if app.state.queue is None:
            settings: ServiceSettings = app.state.settings
            days = settings.failed_input_days
            queue = (QueueSettings(url=settings.queue, failed_input_days=days) if settings.queue
                     else QueueSettings.embedded(settings.files_dir, failed_input_days=days))
            app.state.queue = JobQueue(JobStore(app.state.db.engine, create=False), queue)
        queue_: JobQueue = app.state.queue
        return queue_


class Contain:
    """End an unexpected exception here with the 500 error reply, and do not let it
    leave the app: Starlette re-raises it after its own handler, and the server (uvicorn)
    then logs its text and traceback, which can quote a value. The log gets its type and
    path only (:func:`lastknown.service.errors.install`); the access log sees the 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            path = scope.get("path", "")
            if isinstance(exc, ClientDisconnect):  # an upload refused or abandoned midway
                log.info("client went away at %s", path)
            else:
                log.error("internal error %s at %s", type(exc).__name__, path)
            if not started:
                reply = errors.render_error(Request(scope, receive), errors.internal_error())
                await reply(scope, receive, send)


#: The routes that take a request file: their bodies may be up to ``upload_limit_mb``.
UPLOAD_ROUTES = frozenset({("POST", "/api/batches"), ("POST", "/batches")})
#: Every other body is a form or a JSON object, parsed in memory (a 95 MiB JSON body to
#: the public ``/api/login`` took 670 MiB), so it may be at most this long.
FORM_LIMIT = 1024 * 1024


class BodyLimit:
    """Refuse a request body over ``limit`` bytes (an upload route's) or over
    :data:`FORM_LIMIT` (any other route's) with 413, by its Content-Length or, when
    streamed without one, as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.upload_limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = (scope["method"], scope["path"]) in UPLOAD_ROUTES
        limit = self.upload_limit if upload else min(self.upload_limit, FORM_LIMIT)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit, upload)
            return
        seen, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # answer 413 now; the app sees the client go away
                over = True
                if not started:
                    await _too_large(send, limit, upload)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if not over:
                started = True
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(send: Send, limit: int, upload: bool) -> None:
    what = "the upload" if upload else "the request body (not a request file's upload)"
    body = errors.ApiError(413, "too_large", f"{what} is over the limit of "
                                             f"{limit // (1024 * 1024)} MiB").body()
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})

