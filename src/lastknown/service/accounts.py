"""The administrator's operations on users, agencies and API tokens; each one recorded.

Every change writes one ``admin_changes`` row (who, what, before, after, when) in the
same transaction as the change itself, so no change goes unrecorded. Password hashes
and token hashes never appear in a recorded before/after.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from pwdlib import PasswordHash

from lastknown.disclose.policy import Policy, agency_key, statute_key
from lastknown.errors import ConflictError, InputError, NotFoundError
from lastknown.service import db as t
from lastknown.service.auth import TOKEN_PREFIX, new_secret, token_hash
from lastknown.service.db import AppDB
from lastknown.service.roles import Role

MIN_PASSWORD = 12
CAPS = ("max_rows_per_batch", "max_rows_per_official_per_period", "period_days")
_USER_FIELDS = ("username", "display_name", "role", "agency", "active")


def _record(conn: sa.Connection, actor: str, action: str, kind: str, key: str,
            before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    conn.execute(t.admin_changes.insert().values(
        at=t.now(), actor=actor, action=action, object_type=kind, object_key=key,
        before=json.dumps(before, sort_keys=True, default=str),
        after=json.dumps(after, sort_keys=True, default=str)))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")


# --- agencies ---------------------------------------------------------------------------

def _agency_view(row: sa.RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "statutes": json.loads(row["statutes"]),
            **{cap: row[cap] for cap in CAPS}}


def list_agencies(db: AppDB) -> list[dict[str, Any]]:
    with db.begin() as conn:
        rows = conn.execute(sa.select(t.agencies).order_by(t.agencies.c.name_key)).mappings()
        return [_agency_view(r) for r in rows]


def _agency_row(conn: sa.Connection, name_or_id: str | int) -> sa.RowMapping:
    a = t.agencies
    where = (a.c.id == name_or_id if isinstance(name_or_id, int)
             else a.c.name_key == agency_key(name_or_id))
    row = conn.execute(sa.select(a).where(where)).mappings().first()
    if row is None:
        raise NotFoundError(f"no agency {name_or_id!r}; the administrator creates agencies")
    return row


def _statutes(statutes: list[str]) -> str:
    cleaned = [s.strip() for s in statutes if s.strip()]
    if not cleaned:
        raise InputError("an agency needs at least one authorised statute, e.g. "
                         "8 U.S.C. 1253(a)(1)")
    return json.dumps(list(dict.fromkeys(cleaned)))


def _caps(caps: dict[str, int | None]) -> dict[str, int | None]:
    unknown = set(caps) - set(CAPS)
    if unknown:
        raise InputError(f"unknown cap(s) {', '.join(sorted(unknown))}; caps: {', '.join(CAPS)}")
    for cap, value in caps.items():
        if value is not None and not 0 < value < 2**31:
            raise InputError(f"`{cap}` must be a whole number from 1 to {2**31 - 1:,} (or "
                             "empty: the policy's)")
    return caps


def create_agency(db: AppDB, actor: str, name: str, statutes: list[str],
                  caps: dict[str, int | None] | None = None) -> dict[str, Any]:
    """A new agency with its authorised statutes and caps (None: the policy's default)."""
    name = " ".join(name.split())
    if not name:
        raise InputError("an agency needs a name")
    values = {"name": name, "name_key": agency_key(name), "statutes": _statutes(statutes),
              **_caps(caps or {}), "created_at": t.now()}
    with db.begin() as conn:
        if conn.execute(sa.select(t.agencies.c.id).where(
                t.agencies.c.name_key == values["name_key"])).first():
            raise ConflictError(f"agency {name!r} exists already")
        conn.execute(t.agencies.insert().values(**values))
        view = _agency_view(_agency_row(conn, name))
        _record(conn, actor, "create", "agency", name, None, view)
    return view


def update_agency(db: AppDB, actor: str, agency_id: int, *, statutes: list[str] | None = None,
                  caps: dict[str, int | None] | None = None) -> dict[str, Any]:
    """Change an agency's statutes and/or caps (a cap set to None returns to the policy's)."""
    with db.begin() as conn:
        before = _agency_view(_agency_row(conn, agency_id))
        values: dict[str, Any] = dict(_caps(caps or {}))
        if statutes is not None:
            values["statutes"] = _statutes(statutes)
        if values:
            conn.execute(t.agencies.update().where(t.agencies.c.id == agency_id).values(**values))
        after = _agency_view(_agency_row(conn, agency_id))
        _record(conn, actor, "update", "agency", before["name"], before, after)
    return after


def agency_policy(agency: dict[str, Any], base: Policy) -> Policy:
    """The policy for one agency's batches: ``base`` with the agency's statutes and caps.

    >>> p = agency_policy({"name": "A", "statutes": ["8 USC 1326"], "max_rows_per_batch": 5,
    ...                    "max_rows_per_official_per_period": None, "period_days": None},
    ...                   Policy())
    >>> p.max_rows_per_batch, p.period_days, p.statutes_for("a")
    (5, 365, ('8 U.S.C. 1326',))
    """
    caps = {cap: agency[cap] for cap in CAPS if agency.get(cap) is not None}
    statutes = tuple(statute_key(s) for s in agency["statutes"])
    return replace(base, **caps, statutes_by_agency={agency["name"]: statutes})


# --- users ------------------------------------------------------------------------------

def _user_view(row: sa.RowMapping) -> dict[str, Any]:
    return {"username": row["username"], "display_name": row["display_name"],
            "role": row["role"], "agency": row["agency_name"], "active": row["active"]}


def _user_row(conn: sa.Connection, username: str) -> sa.RowMapping:
    u, a = t.users, t.agencies
    row = conn.execute(sa.select(u, a.c.name.label("agency_name"))
                       .select_from(u.outerjoin(a, a.c.id == u.c.agency_id))
                       .where(u.c.username == username.strip().casefold())).mappings().first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return row


def list_users(db: AppDB) -> list[dict[str, Any]]:
    u, a = t.users, t.agencies
    with db.begin() as conn:
        rows = conn.execute(sa.select(u, a.c.name.label("agency_name"))
                            .select_from(u.outerjoin(a, a.c.id == u.c.agency_id))
                            .order_by(u.c.username)).mappings()
        return [_user_view(r) for r in rows]


def _agency_for(conn: sa.Connection, role: Role, agency: str | None) -> int | None:
    """Submitters belong to exactly one agency; the disclosing agency's staff to none."""
    if role is Role.SUBMITTER:
        if not agency:
            raise InputError("a submitter must belong to an agency")
        return int(_agency_row(conn, agency)["id"])
    if agency:
        raise InputError(f"only submitters belong to a requesting agency, not a {role}")
    return None


def create_user(db: AppDB, hasher: PasswordHash, actor: str, *, username: str,
                display_name: str, role: Role | str, password: str,
                agency: str | None = None) -> dict[str, Any]:
    """A new, active user; the username is stored casefolded."""
    key, role = username.strip().casefold(), Role(role)
    if not key or len(key) > 100 or any(c.isspace() for c in key):
        raise InputError("a username is 1 to 100 characters without spaces")
    _check_password(password)
    with db.begin() as conn:
        if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == key)).first():
            raise ConflictError(f"user {key!r} exists already")
        conn.execute(t.users.insert().values(
            username=key, display_name=display_name.strip() or key, role=role.value,
            agency_id=_agency_for(conn, role, agency), password_hash=hasher.hash(password),
            active=True, created_at=t.now()))
        view = _user_view(_user_row(conn, key))
        _record(conn, actor, "create", "user", key, None, view)
    return view


def update_user(db: AppDB, actor: str, username: str, *, role: Role | str | None = None,
                agency: str | None = None, display_name: str | None = None,
                active: bool | None = None) -> dict[str, Any]:
    """Change a user's role/agency (checked together), display name, or active flag.
    Deactivating ends the user's sessions and stops their API tokens."""
    with db.begin() as conn:
        row = _user_row(conn, username)
        if row["username"] == actor and (active is False or (
                role is not None and Role(role) is not Role.ADMIN)):
            raise InputError("administrators cannot deactivate or demote themselves (so "
                             "one always remains); ask another administrator")
        before = _user_view(row)
        values: dict[str, Any] = {}
        if role is not None or agency is not None:
            new_role = Role(role) if role is not None else Role(row["role"])
            values["role"] = new_role.value
            kept = row["agency_name"] if new_role is Role.SUBMITTER else None
            values["agency_id"] = _agency_for(conn, new_role,
                                              agency if agency is not None else kept)
        if display_name is not None and display_name.strip():
            values["display_name"] = display_name.strip()
        if active is not None:
            values["active"] = active
        if active is False or values.get("role", row["role"]) != row["role"]:
            conn.execute(t.sessions.update().where(t.sessions.c.user_id == row["id"],
                                                   t.sessions.c.ended_at.is_(None))
                         .values(ended_at=t.now()))
        if values:
            conn.execute(t.users.update().where(t.users.c.id == row["id"]).values(**values))
        after = _user_view(_user_row(conn, username))
        _record(conn, actor, "update", "user", before["username"], before, after)
    return after


def reset_password(db: AppDB, hasher: PasswordHash, actor: str, username: str,
                   password: str) -> None:
    """Set a new password and end the user's sessions (recorded without the password)."""
    _check_password(password)
    with db.begin() as conn:
        row = _user_row(conn, username)
        conn.execute(t.users.update().where(t.users.c.id == row["id"])
                     .values(password_hash=hasher.hash(password)))
        conn.execute(t.sessions.update().where(t.sessions.c.user_id == row["id"],
                                               t.sessions.c.ended_at.is_(None))
                     .values(ended_at=t.now()))
        _record(conn, actor, "reset_password", "user", row["username"], None,
                {"password": "changed"})


# --- API tokens -------------------------------------------------------------------------

def _token_view(row: sa.RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "label": row["label"], "username": row["username"],
            "agency": row["agency_name"], "created_at": t.utc(row["created_at"]),
            "revoked_at": row["revoked_at"] and t.utc(row["revoked_at"]),
            "last_used_at": row["last_used_at"] and t.utc(row["last_used_at"])}


def _token_query() -> sa.Select[Any]:
    k, u, a = t.api_tokens, t.users, t.agencies
    return (sa.select(k, u.c.username, a.c.name.label("agency_name"))
            .select_from(k.join(u, u.c.id == k.c.user_id).join(a, a.c.id == k.c.agency_id)))


def list_tokens(db: AppDB) -> list[dict[str, Any]]:
    with db.begin() as conn:
        rows = conn.execute(_token_query().order_by(t.api_tokens.c.id)).mappings()
        return [_token_view(r) for r in rows]


def create_token(db: AppDB, actor: str, *, username: str,
                 label: str) -> tuple[str, dict[str, Any]]:
    """A new API token for a submitter, scoped to the submitter's agency. The token is
    returned once, here; only its SHA-256 is kept."""
    token = TOKEN_PREFIX + new_secret()
    with db.begin() as conn:
        user = _user_row(conn, username)
        if user["role"] != Role.SUBMITTER.value or user["agency_id"] is None:
            raise InputError("API tokens are for an agency's submitters (agency systems); "
                             f"{user['username']} is a {user['role']}")
        result = conn.execute(t.api_tokens.insert().values(
            token_hash=token_hash(token), label=label.strip() or "agency system",
            user_id=user["id"], agency_id=user["agency_id"], created_at=t.now()))
        token_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        view = _token_view(conn.execute(_token_query().where(
            t.api_tokens.c.id == token_id)).mappings().one())
        _record(conn, actor, "create", "api_token", str(token_id), None, view)
    return token, view


def revoke_token(db: AppDB, actor: str, token_id: int) -> dict[str, Any]:
    """Revoke a token (it stops working at once); revoking twice changes nothing."""
    with db.begin() as conn:
        row = conn.execute(_token_query().where(t.api_tokens.c.id == token_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no API token #{token_id}")
        before = _token_view(row)
        if row["revoked_at"] is None:
            conn.execute(t.api_tokens.update().where(t.api_tokens.c.id == token_id)
                         .values(revoked_at=t.now()))
        after = _token_view(conn.execute(_token_query().where(
            t.api_tokens.c.id == token_id)).mappings().one())
        _record(conn, actor, "revoke", "api_token", str(token_id), before, after)
    return after


def list_changes(db: AppDB, limit: int = 200) -> list[dict[str, Any]]:
    """The newest administrative changes first."""
    c = t.admin_changes
    with db.begin() as conn:
        rows = conn.execute(sa.select(c).order_by(c.c.id.desc()).limit(limit)).mappings()
        return [{"at": t.utc(r["at"]), "actor": r["actor"], "action": r["action"],
                 "object_type": r["object_type"], "object_key": r["object_key"],
                 "before": json.loads(r["before"]), "after": json.loads(r["after"])}
                for r in rows]
