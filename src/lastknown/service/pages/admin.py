"""The administrator's pages: users, agencies (statutes, caps), API tokens, changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from lastknown.service import accounts
from lastknown.service.api.admin import RowId
from lastknown.service.db import AppDB
from lastknown.service.pages import back_to, render
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(prefix="/admin")
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
AdminOrAuditor = Annotated[Principal, Depends(allow(Role.ADMIN, Role.AUDITOR))]
Text = Annotated[str, Form(max_length=300)]
Cap = Annotated[str, Form(max_length=12)]


def _cap(value: str) -> int | None:
    """A cap typed in a form; empty (or not a number) means the policy's."""
    return int(value) if value.strip().isdigit() and len(value.strip()) < 10 else None


def _caps(max_rows_per_batch: str, max_rows_per_official_per_period: str,
          period_days: str) -> dict[str, int | None]:
    """The agency form's three caps (:data:`accounts.CAPS`), each read by :func:`_cap`."""
    typed = (max_rows_per_batch, max_rows_per_official_per_period, period_days)
    return {name: _cap(value) for name, value in zip(accounts.CAPS, typed, strict=True)}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.get("/users", name="admin_users")
def users(request: Request, user: Admin) -> Response:
    db = request.app.state.db
    return render(request, "admin_users.html", {
        "users": accounts.list_users(db), "agencies": accounts.list_agencies(db),
        "roles": list(Role), "min_password": accounts.MIN_PASSWORD})


@router.post("/users", name="admin_user_create")
def user_create(request: Request, user: Admin, username: Text, role: Text,
                password: Annotated[str, Form(max_length=1000)], display_name: Text = "",
                agency: Text = "") -> Response:
    s = request.app.state
    accounts.create_user(s.db, s.hasher, user.username, username=username,
                         display_name=display_name, role=role, password=password,
                         agency=agency or None)
    request.state.access_detail = f"created user {username.strip().casefold()[:60]}"
    return back_to("/admin/users", "created")


@router.post("/users/{username}", name="admin_user_update")
def user_update(request: Request, username: str, user: Admin, role: Text, agency: Text = "",
                display_name: Text = "", active: Text = "") -> Response:
    accounts.update_user(request.app.state.db, user.username, username, role=role,
                         agency=agency, display_name=display_name, active=active == "on")
    request.state.access_detail = f"updated user {username[:60]}"
    return back_to("/admin/users", "updated")


@router.post("/users/{username}/password", name="admin_user_password")
def user_password(request: Request, username: str, user: Admin,
                  password: Annotated[str, Form(max_length=1000)]) -> Response:
    s = request.app.state
    accounts.reset_password(s.db, s.hasher, user.username, username, password)
    request.state.access_detail = f"reset the password of {username[:60]}"
    return back_to("/admin/users", "password")


@router.get("/agencies", name="admin_agencies")
def agencies(request: Request, user: Admin) -> Response:
    return render(request, "admin_agencies.html",
                  {"agencies": accounts.list_agencies(request.app.state.db)})


@router.post("/agencies", name="admin_agency_create")
def agency_create(request: Request, user: Admin, name: Text,
                  statutes: Annotated[str, Form(max_length=5000)],
                  max_rows_per_batch: Cap = "", max_rows_per_official_per_period: Cap = "",
                  period_days: Cap = "") -> Response:
    created = accounts.create_agency(
        request.app.state.db, user.username, name, _lines(statutes),
        _caps(max_rows_per_batch, max_rows_per_official_per_period, period_days))
    request.state.access_detail = f"created agency #{created['id']}"
    return back_to("/admin/agencies", "created")


@router.post("/agencies/{agency_id}", name="admin_agency_update")
def agency_update(request: Request, agency_id: RowId, user: Admin,
                  statutes: Annotated[str, Form(max_length=5000)],
                  max_rows_per_batch: Cap = "", max_rows_per_official_per_period: Cap = "",
                  period_days: Cap = "") -> Response:
    accounts.update_agency(
        request.app.state.db, user.username, agency_id, statutes=_lines(statutes),
        caps=_caps(max_rows_per_batch, max_rows_per_official_per_period, period_days))
    request.state.access_detail = f"updated agency #{agency_id}"
    return back_to("/admin/agencies", "updated")


@router.get("/tokens", name="admin_tokens")
def tokens(request: Request, user: Admin) -> Response:
    return render(request, "admin_tokens.html", _tokens_page(request.app.state.db))


def _tokens_page(db: AppDB) -> dict[str, Any]:
    """What the tokens page lists: the tokens and the submitters one can be made for."""
    return {"tokens": accounts.list_tokens(db),
            "submitters": [u for u in accounts.list_users(db) if u["role"] == Role.SUBMITTER]}


@router.post("/tokens", name="admin_token_create")
def token_create(request: Request, user: Admin, username: Text, label: Text = "") -> Response:
    db = request.app.state.db
    token, view = accounts.create_token(db, user.username, username=username, label=label)
    request.state.access_detail = f"created API token #{view['id']}"
    response = render(request, "admin_tokens.html",
                      {**_tokens_page(db), "new_token": token, "new_view": view},
                      status_code=201)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", name="admin_token_revoke")
def token_revoke(request: Request, token_id: RowId, user: Admin) -> Response:
    accounts.revoke_token(request.app.state.db, user.username, token_id)
    request.state.access_detail = f"revoked API token #{token_id}"
    return back_to("/admin/tokens", "revoked")


@router.get("/changes", name="admin_changes")
def changes(request: Request, user: AdminOrAuditor) -> Response:
    return render(request, "admin_changes.html",
                  {"changes": accounts.list_changes(request.app.state.db)})
