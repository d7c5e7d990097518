"""Roles, the signed-in principal, and the one place each endpoint declares who may call it.

Every endpoint takes its caller from ``Depends(allow(...))``: the roles named there are
its whole access rule, :func:`route_rule` reads them back for the authorisation-matrix
test, and :func:`lastknown.service.app.create_app` refuses to start when a route has none.

>>> allow(Role.ADMIN).roles == frozenset({Role.ADMIN})
True
>>> allow(PUBLIC).public
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fastapi import Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute


class Role(StrEnum):
    """What a user may do (docs/SERVICE.md, "Roles")."""

    SUBMITTER = "submitter"  # an agency's analyst: submits requests, downloads answers
    OFFICER = "officer"      # the disclosing agency's disclosure officer: reviews, approves
    AUDITOR = "auditor"      # read-only: ledger verify, reports, accounting, access log
    ADMIN = "admin"          # users, agencies, statutes, caps, API tokens


EVERY_ROLE = frozenset(Role)
#: Marker for endpoints open to anonymous callers (login, the OpenAPI document).
PUBLIC: Literal["public"] = "public"


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a user signed in by session cookie, or an agency system's API token."""

    user_id: int
    username: str
    display_name: str
    role: Role
    agency_id: int | None
    agency: str | None
    via: Literal["session", "token"]
    #: The session's CSRF secret (None for API tokens, which are exempt).
    csrf_secret: str | None = None
    session_id: int | None = None
    token_id: int | None = None


class Allow:
    """A FastAPI dependency: the caller, if one of ``roles`` (or anyone, when public)."""

    def __init__(self, roles: frozenset[Role], public: bool) -> None:
        self.roles = roles
        self.public = public

    async def __call__(self, request: Request) -> Principal | None:
        from lastknown.service.auth import authorise

        return await authorise(request, self)


def allow(*roles: Role | Literal["public"]) -> Allow:
    """The access rule of one endpoint: ``allow(Role.ADMIN)``, ``allow(*EVERY_ROLE)``,
    ``allow(PUBLIC)``."""
    public = PUBLIC in roles
    return Allow(frozenset(r for r in roles if isinstance(r, Role)), public)


def require_role(*roles: Role) -> Allow:
    """The same as :func:`allow` for signed-in roles only (the name FastAPI users expect)."""
    return allow(*roles)


#: The dependency for "any signed-in user" (``Depends(current_user)``).
current_user = allow(*EVERY_ROLE)


def route_rule(route: APIRoute) -> Allow | None:
    """The access rule an endpoint declared (None when it declared none: a bug)."""
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Allow)]
    return found[0] if len(found) == 1 else None


def unguarded(routes: list[BaseRoute]) -> list[str]:
    """Paths of endpoints (included routers flattened) that declared no access rule."""
    return [str(c.path) for c in iter_route_contexts(routes)
            if isinstance(c.original_route, APIRoute) and route_rule(c.original_route) is None]
