"""Server-rendered pages (Jinja2, autoescaped; CSS vendored under ``static/``, no CDN).

Every page form carries the session's CSRF token (``csrf_token``); every page's data
also has an endpoint under ``/api`` (docs/SERVICE.md lists both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from lastknown import __version__
from lastknown.service.roles import Principal, Role

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

#: The navigation of each role: (label, path).
NAV: dict[Role, tuple[tuple[str, str], ...]] = {
    Role.SUBMITTER: (("Home", "/"),),
    Role.OFFICER: (("Home", "/"),),
    Role.AUDITOR: (("Home", "/"), ("Verify ledger", "/auditor/verify"),
                   ("Annual report", "/auditor/report"), ("Accounting", "/auditor/accounting"),
                   ("Access log", "/auditor/access-log"), ("Admin changes", "/admin/changes")),
    Role.ADMIN: (("Home", "/"), ("Users", "/admin/users"), ("Agencies", "/admin/agencies"),
                 ("API tokens", "/admin/tokens"), ("Changes", "/admin/changes")),
}


#: Fixed notices shown after a change (a link cannot make a page say anything else).
NOTICES = {"created": "Created.", "updated": "Saved.", "password": "Password reset; the "
           "user's sessions were ended.", "revoked": "Token revoked."}


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    """A page with the common context: the user, their navigation, the CSRF token."""
    principal: Principal | None = getattr(request.state, "principal", None)
    base = {"user": principal, "nav": NAV[principal.role] if principal else (),
            "csrf_token": principal.csrf_secret if principal else "",
            "demo": request.app.state.settings.demo, "version": __version__,
            "notice": NOTICES.get(request.query_params.get("notice", ""))}
    return templates.TemplateResponse(request, name, {**base, **(context or {})},
                                      status_code=status_code)


def back_to(path: str, notice: str) -> RedirectResponse:
    """Post/redirect/get: after a change, show the list again with one of :data:`NOTICES`."""
    assert notice in NOTICES
    return RedirectResponse(f"{path}?notice={quote(notice)}", status_code=303)


def router() -> APIRouter:
    """Every page route."""
    from lastknown.service.pages import admin, auditor, session

    combined = APIRouter(include_in_schema=False)
    for module in (session, admin, auditor):
        combined.include_router(module.router)
    return combined
