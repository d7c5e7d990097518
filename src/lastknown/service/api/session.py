"""``/api/login``, ``/api/logout``, ``/api/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from lastknown.service.login import sign_in, sign_out
from lastknown.service.roles import EVERY_ROLE, PUBLIC, Principal, allow

router = APIRouter(tags=["session"])


class Credentials(BaseModel):
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    agency: str | None
    #: Send back as ``X-CSRF-Token`` on state-changing calls made with the session cookie.
    csrf_token: str | None


def _me(p: Principal) -> Me:
    return Me(username=p.username, display_name=p.display_name, role=p.role.value,
              agency=p.agency, csrf_token=p.csrf_secret)


@router.post("/login", name="api_login")
async def login(request: Request, response: Response, body: Credentials,
                _: Annotated[Principal | None, Depends(allow(PUBLIC))]) -> Me:
    """Start a session (cookie) for a user; the reply carries the CSRF token."""
    await sign_in(request, response, body.username, body.password)
    return _me(request.state.principal)


@router.post("/logout", name="api_logout", status_code=204)
async def logout(request: Request, response: Response,
                 user: Annotated[Principal, Depends(allow(*EVERY_ROLE))]) -> None:
    """End the session (needs ``X-CSRF-Token``)."""
    await sign_out(request, response, user)


@router.get("/me", name="api_me")
def me(user: Annotated[Principal, Depends(allow(*EVERY_ROLE))]) -> Me:
    """Who is calling: a session user, or an agency system's API token (agency-scoped)."""
    return _me(user)
