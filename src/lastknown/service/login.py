"""Signing in and out, shared by the login page and ``POST /api/login``.

A failed login is logged (the username tried, never the password); after
:data:`~lastknown.service.auth.MAX_FAILED_LOGINS` failures of one username within
:data:`~lastknown.service.auth.FAILED_LOGIN_WINDOW` further tries are refused (429)
whatever the password, so guessing is slow and visible in the access log. A sign-in
ends the session the request came with (whoever's), so no earlier cookie outlives it.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from lastknown.service import auth
from lastknown.service.errors import ApiError
from lastknown.service.roles import Principal


async def sign_in(request: Request, response: Response, username: str, password: str) -> str:
    """Check the password, start a session and set its cookie; return the CSRF token."""
    state = request.app.state
    request.state.event_type = "login"
    request.state.login_name = username.strip().casefold()[:100]
    if await run_in_threadpool(auth.recent_failures, state.db, username) \
            >= auth.MAX_FAILED_LOGINS:
        request.state.access_detail = "refused: too many failed logins"
        raise ApiError(429, "too_many_requests", "too many failed sign-ins for this user; "
                                                 "wait 15 minutes or ask an administrator")
    user = await run_in_threadpool(auth.check_password, state.db, state.hasher,
                                   state.dummy_hash, username, password)
    if user is None:
        request.state.access_detail = "unknown user, wrong password or inactive"
        raise ApiError(401, "login_failed", "unknown username or wrong password")
    earlier: Principal | None = getattr(request.state, "principal", None)
    if earlier is not None and earlier.session_id is not None:  # a new sign-in ends it
        await run_in_threadpool(auth.end_session, state.db, earlier.session_id)
    token = await run_in_threadpool(auth.start_session, state.db, state.settings, user["id"])
    principal = await run_in_threadpool(auth.session_principal, state.db, token)
    assert principal is not None
    request.state.principal = principal
    set_session_cookie(request, response, token)
    return principal.csrf_secret or ""


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(auth.session_cookie_name(settings), token, httponly=True,
                        secure=settings.secure_cookies, samesite="lax", path="/",
                        max_age=settings.session_hours * 3600)


async def sign_out(request: Request, response: Response, principal: Principal) -> None:
    """End the session and clear its cookie."""
    request.state.event_type = "logout"
    if principal.session_id is not None:
        await run_in_threadpool(auth.end_session, request.app.state.db, principal.session_id)
    settings = request.app.state.settings
    response.delete_cookie(auth.session_cookie_name(settings), path="/", httponly=True,
                           secure=settings.secure_cookies, samesite="lax")
