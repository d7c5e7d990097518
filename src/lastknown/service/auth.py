"""Passwords, sessions, API tokens, CSRF: who is calling, and may they?

* Passwords are Argon2id hashes (pwdlib); a login for an unknown user still runs one
  verification, so its timing does not say which usernames exist.
* A session is a random token in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure``
  and the ``__Host-`` prefix unless ``--demo``); the database keeps only its SHA-256.
* Every state-changing request made with a session cookie carries the session's CSRF
  token (form field ``csrf_token`` or header ``X-CSRF-Token``); the login form, made
  before a session exists, carries a double-submit token instead.
* API tokens (``Authorization: Bearer lk_…``) belong to one submitter of one agency; only
  their SHA-256 is stored; they stop working when revoked, when the user is deactivated,
  changes role or moves to another agency. They need no CSRF token (no cookie is involved).

>>> len(new_secret()) >= 43, token_hash("lk_x") == token_hash("lk_x")
(True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from starlette.concurrency import run_in_threadpool

from lastknown.service import db as t
from lastknown.service.errors import ApiError
from lastknown.service.roles import Principal, Role

if TYPE_CHECKING:
    from lastknown.service.db import AppDB
    from lastknown.service.roles import Allow
    from lastknown.service.settings import ServiceSettings

TOKEN_PREFIX = "lk_"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Failed logins of one username within the window before further tries are refused.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Password verifications run at most this many at a time: each takes Argon2's 64 MiB
#: and three passes, and forty anonymous sign-ins at once (the thread pool's size)
#: would otherwise hold 2.5 GiB. More wait their turn.
VERIFY_AT_ONCE = 4
VERIFY_SLOTS = threading.BoundedSemaphore(VERIFY_AT_ONCE)


def new_secret() -> str:
    """A fresh random secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a session or API token: its SHA-256 (the token is random, so
    no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def password_hasher(cost: str) -> PasswordHash:
    """Argon2id with pwdlib's recommended cost, or the minimal cost (tests only)."""
    if cost == "minimal":
        return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
    return PasswordHash((Argon2Hasher(),))


def session_cookie_name(settings: ServiceSettings) -> str:
    """``__Host-lk_session`` (Secure, whole site, this host only); ``lk_session`` in demo."""
    return "__Host-lk_session" if settings.secure_cookies else "lk_session"


def login_csrf_cookie_name(settings: ServiceSettings) -> str:
    """``__Secure-lk_login_csrf`` (Secure, so a plain-http page cannot plant it; path
    ``/login``, which ``__Host-`` does not allow); ``lk_login_csrf`` in demo."""
    return "__Secure-lk_login_csrf" if settings.secure_cookies else "lk_login_csrf"


def check_password(db: AppDB, hasher: PasswordHash, dummy_hash: str, username: str,
                   password: str) -> dict[str, Any] | None:
    """The active user with this username and password, or None. An unknown username
    is verified against ``dummy_hash`` (a hash of a random secret), so it costs the same."""
    with db.begin() as conn:
        row = conn.execute(sa.select(t.users).where(
            t.users.c.username == username.strip().casefold())).mappings().first()
    with VERIFY_SLOTS:
        ok = hasher.verify(password, row["password_hash"] if row is not None else dummy_hash)
    return dict(row) if ok and row is not None and row["active"] else None


def recent_failures(db: AppDB, username: str) -> int:
    """Failed logins of ``username`` within :data:`FAILED_LOGIN_WINDOW` (from the access
    log)."""
    since = t.now() - FAILED_LOGIN_WINDOW
    log = t.access_log
    with db.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(
            log.c.event_type == "login", log.c.success.is_(False),
            log.c.username == username.strip().casefold()[:100], log.c.at >= since)).scalar_one())


def start_session(db: AppDB, settings: ServiceSettings, user_id: int) -> str:
    """Record a new session for the user; return its token (for the cookie only)."""
    token, at = new_secret(), t.now()
    with db.begin() as conn:
        conn.execute(t.sessions.insert().values(
            token_hash=token_hash(token), user_id=user_id, csrf_secret=new_secret(),
            created_at=at, expires_at=at + timedelta(hours=settings.session_hours)))
    return token


def end_session(db: AppDB, session_id: int) -> None:
    with db.begin() as conn:
        conn.execute(t.sessions.update().where(t.sessions.c.id == session_id)
                     .values(ended_at=t.now()))


def _principal(row: sa.RowMapping, via: str, **ids: Any) -> Principal:
    return Principal(user_id=row["id"], username=row["username"],
                     display_name=row["display_name"], role=Role(row["role"]),
                     agency_id=row["agency_id"], agency=row["agency_name"],
                     via=via, **ids)  # type: ignore[arg-type]


def _user_query() -> sa.Select[Any]:
    u, a = t.users, t.agencies
    return (sa.select(u, a.c.name.label("agency_name"))
            .select_from(u.outerjoin(a, a.c.id == u.c.agency_id)).where(u.c.active.is_(True)))


def session_principal(db: AppDB, token: str) -> Principal | None:
    """The user of a live session token, or None."""
    s = t.sessions
    query = (_user_query().add_columns(s.c.id.label("session_id"), s.c.csrf_secret,
                                       s.c.expires_at)
             .join(s, s.c.user_id == t.users.c.id)
             .where(s.c.token_hash == token_hash(token), s.c.ended_at.is_(None)))
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or t.utc(row["expires_at"]) <= t.now():
        return None
    return _principal(row, "session", csrf_secret=row["csrf_secret"],
                      session_id=row["session_id"])


def token_principal(db: AppDB, token: str) -> Principal | None:
    """The submitter an unrevoked API token acts for, if still of the token's agency."""
    k = t.api_tokens
    query = (_user_query().add_columns(k.c.id.label("token_id"))
             .join(k, k.c.user_id == t.users.c.id)
             .where(k.c.token_hash == token_hash(token), k.c.revoked_at.is_(None),
                    k.c.agency_id == t.users.c.agency_id,
                    t.users.c.role == Role.SUBMITTER.value))
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        conn.execute(k.update().where(k.c.id == row["token_id"]).values(last_used_at=t.now()))
    return _principal(row, "token", token_id=row["token_id"])


def authenticate(request: Request) -> Principal | None:
    """The caller: an API token's submitter (401 for a bad token), a live session's
    user, or None (no credential)."""
    state = request.app.state
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = token_principal(state.db, header[7:].strip())
        if principal is None:
            raise ApiError(401, "invalid_token", "the API token is unknown, revoked, or no "
                                                 "longer valid for its agency")
        return principal
    cookie = request.cookies.get(session_cookie_name(state.settings))
    return session_principal(state.db, cookie) if cookie else None


class AuthenticatedFirst(APIRoute):
    """A route that authenticates its caller before its body is read.

    FastAPI reads a request's whole body (a multipart upload: spooled to temporary
    files) before the endpoint's access rule runs, so an anonymous caller, a forged
    cookie or a bad token could make the service take ``upload_limit_mb`` every time.
    The routers that take uploads use this class; the rule then runs as anywhere else
    (reusing the principal found here)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            request.state.principal = await run_in_threadpool(authenticate, request)
            if request.state.principal is None:
                raise ApiError(401, "not_authenticated", "sign in first")
            return await handler(request)

        return authenticated_first


async def authorise(request: Request, rule: Allow) -> Principal | None:
    """Authenticate the caller, check CSRF and the endpoint's roles (see :class:`Allow`)."""
    if not hasattr(request.state, "principal"):
        request.state.principal = await run_in_threadpool(authenticate, request)
    principal: Principal | None = request.state.principal
    if principal is None:
        if rule.public:
            return None
        raise ApiError(401, "not_authenticated", "sign in first")
    if rule.public:  # login: it checks its own (login) CSRF token; acts for no session
        return principal
    if principal.via == "session" and request.method not in _SAFE_METHODS:
        await check_csrf(request, principal.csrf_secret or "")
    if principal.role not in rule.roles:
        raise ApiError(403, "forbidden", f"the {principal.role} role may not do this")
    return principal


async def check_csrf(request: Request, expected: str) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong."""
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not expected or not hmac.compare_digest(given, expected):
        raise ApiError(403, "csrf_failed", "the form's security token is missing or stale: "
                                           "reload the page and try again")
