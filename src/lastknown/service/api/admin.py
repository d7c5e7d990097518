"""The administrator's API: users, agencies, API tokens, the record of changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lastknown.service import accounts
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(tags=["admin"])
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
AdminOrAuditor = Annotated[Principal, Depends(allow(Role.ADMIN, Role.AUDITOR))]
#: A row id in a path: bounded, so a huge number is a 422, not a database overflow.
RowId = Annotated[int, Path(ge=1, le=2**53)]
#: A cap fits the database's 32-bit INTEGER.
CapValue = Annotated[int | None, Field(default=None, gt=0, lt=2**31)]


class User(BaseModel):
    username: str
    display_name: str
    role: Role
    agency: str | None
    active: bool


class NewUser(BaseModel):
    username: str = Field(max_length=100)
    display_name: str = Field(default="", max_length=200)
    role: Role
    agency: str | None = Field(default=None, max_length=300)
    password: str = Field(max_length=1000)


class UserChange(BaseModel):
    role: Role | None = None
    agency: str | None = Field(default=None, max_length=300)
    display_name: str | None = Field(default=None, max_length=200)
    active: bool | None = None


class NewPassword(BaseModel):
    password: str = Field(max_length=1000)


class Caps(BaseModel):
    max_rows_per_batch: CapValue = None
    max_rows_per_official_per_period: CapValue = None
    period_days: CapValue = None


class Agency(Caps):
    id: int
    name: str
    statutes: list[str]


class NewAgency(Caps):
    name: str = Field(max_length=300)
    statutes: list[str] = Field(max_length=100)


class AgencyChange(Caps):
    statutes: list[str] | None = Field(default=None, max_length=100)


class Token(BaseModel):
    id: int
    label: str
    username: str
    agency: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewToken(BaseModel):
    username: str = Field(max_length=100)
    label: str = Field(default="agency system", max_length=200)


class CreatedToken(Token):
    #: Shown once, here; only its SHA-256 is kept.
    token: str


class Change(BaseModel):
    at: datetime
    actor: str
    action: str
    object_type: str
    object_key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _note(request: Request, what: str) -> None:
    request.state.access_detail = what


@router.get("/users", name="api_users")
def users(request: Request, user: Admin) -> list[User]:
    return [User(**u) for u in accounts.list_users(request.app.state.db)]


@router.post("/users", name="api_user_create", status_code=201)
def user_create(request: Request, body: NewUser, user: Admin) -> User:
    s = request.app.state
    created = accounts.create_user(s.db, s.hasher, user.username, **body.model_dump())
    _note(request, f"created user {created['username']}")
    return User(**created)


@router.patch("/users/{username}", name="api_user_update")
def user_update(request: Request, username: str, body: UserChange, user: Admin) -> User:
    changed = accounts.update_user(request.app.state.db, user.username, username,
                                   **body.model_dump())
    _note(request, f"updated user {changed['username']}")
    return User(**changed)


@router.post("/users/{username}/password", name="api_user_password", status_code=204)
def user_password(request: Request, username: str, body: NewPassword, user: Admin) -> None:
    s = request.app.state
    accounts.reset_password(s.db, s.hasher, user.username, username, body.password)
    _note(request, "reset a password")


@router.get("/agencies", name="api_agencies")
def agencies(request: Request, user: Admin) -> list[Agency]:
    return [Agency(**a) for a in accounts.list_agencies(request.app.state.db)]


@router.post("/agencies", name="api_agency_create", status_code=201)
def agency_create(request: Request, body: NewAgency, user: Admin) -> Agency:
    caps = body.model_dump(include=set(accounts.CAPS))
    created = accounts.create_agency(request.app.state.db, user.username, body.name,
                                     body.statutes, caps)
    _note(request, f"created agency #{created['id']}")
    return Agency(**created)


@router.patch("/agencies/{agency_id}", name="api_agency_update")
def agency_update(request: Request, agency_id: RowId, body: AgencyChange, user: Admin) -> Agency:
    caps = body.model_dump(include=set(accounts.CAPS), exclude_unset=True)
    changed = accounts.update_agency(request.app.state.db, user.username, agency_id,
                                     statutes=body.statutes, caps=caps)
    _note(request, f"updated agency #{agency_id}")
    return Agency(**changed)


@router.get("/tokens", name="api_tokens")
def tokens(request: Request, user: Admin) -> list[Token]:
    return [Token(**k) for k in accounts.list_tokens(request.app.state.db)]


@router.post("/tokens", name="api_token_create", status_code=201)
def token_create(request: Request, body: NewToken, user: Admin) -> CreatedToken:
    token, view = accounts.create_token(request.app.state.db, user.username,
                                        username=body.username, label=body.label)
    _note(request, f"created API token #{view['id']}")
    return CreatedToken(token=token, **view)


@router.post("/tokens/{token_id}/revoke", name="api_token_revoke")
def token_revoke(request: Request, token_id: RowId, user: Admin) -> Token:
    view = accounts.revoke_token(request.app.state.db, user.username, token_id)
    _note(request, f"revoked API token #{token_id}")
    return Token(**view)


@router.get("/admin-changes", name="api_admin_changes")
async def changes(request: Request, user: AdminOrAuditor) -> list[Change]:
    found = await run_in_threadpool(accounts.list_changes, request.app.state.db)
    return [Change(**c) for c in found]
