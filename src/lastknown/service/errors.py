"""One error shape for the API, HTML error pages for browsers; no traceback ever leaks.

API (paths under ``/api/`` and ``/openapi.json``)::

    {"error": {"status": 403, "code": "forbidden", "message": "..."}}

Browser routes get the same facts as a page; a page that needs a signed-in user sends
an anonymous browser to the login page (303) instead of a 401 page. Messages never
quote submitted values: a validation error names the field, not what was typed (it
could be a TIN).

>>> ApiError(404, "not_found", "no such user").body()
{'error': {'status': 404, 'code': 'not_found', 'message': 'no such user'}}
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastknown.errors import (
    ConflictError,
    InputError,
    LastknownError,
    NotFoundError,
    PolicyError,
)

log = logging.getLogger("lastknown.service")

_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large",
          422: "invalid_request", 429: "too_many_requests", 500: "internal_error"}


class ApiError(Exception):
    """An error with a status, a stable code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        message = without_tins(message)  # e.g. a 404 naming a TIN someone put in a URL
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


#: A POSIX absolute path's folders (not a URL's, a date's or "and/or").
_FOLDERS = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`]+/)+")


def without_paths(text: str) -> str:
    """``text`` with each absolute path cut to its file name: the library's messages are
    written for the command line and name files by path, which a reply must not show.

    >>> without_paths("batch file /srv/lk/uploads/ab12/batch.json cannot be used")
    'batch file batch.json cannot be used'
    >>> without_paths("see https://x.org/a/b or 2026/01/02, and/or `/etc/lk/p.toml`")
    'see https://x.org/a/b or 2026/01/02, and/or `p.toml`'
    """
    return _FOLDERS.sub("", text)


#: Nine digits, bare or as 123-45-6789: anything that could be a TIN.
_TIN_LIKE = re.compile(r"(?<!\d)\d{3}-?\d{2}-?\d{4}(?!\d)")


def without_tins(text: str) -> str:
    """``text`` with anything shaped like a TIN replaced by ``***`` (what a person typed
    into a URL or a form may be one; no reply or log line repeats it).

    >>> without_tins("no batch 123456789 or 123-45-6789; batch 2026-0142 is fine")
    'no batch *** or ***; batch 2026-0142 is fine'
    """
    return _TIN_LIKE.sub("***", text)


def internal_error() -> ApiError:
    """The reply to an unexpected error: it says nothing of the error itself."""
    return ApiError(500, "internal_error", "internal error; the operator can see the server log")


def wants_json(request: Request) -> bool:
    """API paths answer JSON; every other path is a browser page."""
    path = request.url.path
    return path.startswith("/api/") or path == "/openapi.json"


def _from_library(exc: LastknownError) -> ApiError:
    message = without_paths(str(exc))
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", message)
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", message)
    if isinstance(exc, InputError):
        return ApiError(400, "invalid_input", message)
    if isinstance(exc, PolicyError):  # a cap, a batch answered once, approving one's own
        return ApiError(409, "policy_refused", message)
    log.error("service error: %s", type(exc).__name__)
    return ApiError(500, "internal_error", "the service could not complete this request; "
                                           "the operator can see why in the server log")


def _validation(exc: RequestValidationError) -> ApiError:
    fields = sorted({".".join(str(p) for p in e.get("loc", ()) if p != "body")
                     for e in exc.errors()})
    return ApiError(422, "invalid_request", "missing or invalid: " + ", ".join(fields))


def render_error(request: Request, error: ApiError) -> Response:
    """The error as JSON or as a page (or a redirect to the login page)."""
    if wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)
    if error.status == 401 and request.method in ("GET", "HEAD"):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    from lastknown.service.pages import render

    return render(request, "error.html", {"error": error}, status_code=error.status)


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure its one shape."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render_error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, "error")
        message = {404: "no such page or endpoint", 405: "method not allowed here"}.get(
            exc.status_code, str(exc.detail))
        return render_error(request, ApiError(exc.status_code, code, message))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render_error(request, _validation(exc))

    async def library(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LastknownError)
        return render_error(request, _from_library(exc))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("internal error %s at %s", type(exc).__name__, request.url.path)
        return render_error(request, internal_error())

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(LastknownError, library)
    app.add_exception_handler(Exception, unexpected)
