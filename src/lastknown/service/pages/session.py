"""The login page, logout, and each role's home page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from lastknown.service import auth
from lastknown.service.errors import ApiError
from lastknown.service.login import sign_in, sign_out
from lastknown.service.pages import render
from lastknown.service.roles import EVERY_ROLE, PUBLIC, Principal, allow

router = APIRouter()
Anyone = Annotated[Principal | None, Depends(allow(PUBLIC))]
SignedIn = Annotated[Principal, Depends(allow(*EVERY_ROLE))]


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a URL) is followed after login."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _login_page(request: Request, error: ApiError | None = None, next_: str = "/") -> Response:
    token = auth.new_secret()
    response = render(request, "login.html", {"login_csrf": token, "error": error,
                                              "next": _safe_next(next_)},
                      status_code=error.status if error else 200)
    settings = request.app.state.settings
    response.set_cookie(auth.login_csrf_cookie_name(settings), token, httponly=True,
                        samesite="strict", secure=settings.secure_cookies, path="/login")
    return response


@router.get("/login", name="login_page")
def login_page(request: Request, user: Anyone, next: str = "/") -> Response:  # noqa: A002
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_=next)


@router.post("/login", name="login")
async def login(request: Request, user: Anyone,
                username: Annotated[str, Form(max_length=100)],
                password: Annotated[str, Form(max_length=1000)],
                csrf_token: Annotated[str, Form(max_length=100)] = "",
                next: Annotated[str, Form(max_length=500)] = "/") -> Response:  # noqa: A002
    expected = request.cookies.get(auth.login_csrf_cookie_name(request.app.state.settings), "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        request.state.event_type = "login"
        return _login_page(request, ApiError(403, "csrf_failed", "the login form expired; "
                                                                 "try again"), next)
    response = RedirectResponse(_safe_next(next), status_code=303)
    try:
        await sign_in(request, response, username, password)
    except ApiError as error:
        return _login_page(request, error, next)
    response.delete_cookie(auth.login_csrf_cookie_name(request.app.state.settings), path="/login")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request, user: SignedIn) -> Response:
    response = RedirectResponse("/login", status_code=303)
    await sign_out(request, response, user)
    return response


@router.get("/", name="home")
def home(request: Request, user: SignedIn) -> Response:
    return render(request, "home.html")
