"""The authorisation matrix: every route of the app × anonymous and every role.

The routes come from ``app.routes``; a route missing from :data:`EXPECTED` fails the
test, so a new endpoint cannot ship without someone writing down who may call it.
Requests carry no body (or an empty form) and a valid CSRF token, so the status says
whether the caller got past the access rule: 401/303 (not signed in), 403 (wrong role),
anything else (the endpoint ran: 200, 204, 303 or 422 for the missing body).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from lastknown.disclose.ledger import open_ledger
from lastknown.service import accounts, auth
from lastknown.service.db import AppDB, open_app_db
from lastknown.service.roles import route_rule
from service_helpers import USERS, deployment_in, make_client, seed, settings_for

WHO = ("anonymous", "submitter", "officer", "auditor", "admin")
A, U = 401, 303  # anonymous on the API / on a page (sent to the login page)
F = 403

#: (method, path) -> status for anonymous, submitter, officer, auditor, admin
EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/openapi.json"): (200, 200, 200, 200, 200),
    ("GET", "/static"): (200, 200, 200, 200, 200),
    ("POST", "/api/login"): (422, 422, 422, 422, 422),
    ("POST", "/api/logout"): (A, 204, 204, 204, 204),
    ("GET", "/api/me"): (A, 200, 200, 200, 200),
    ("GET", "/api/users"): (A, F, F, F, 200),
    ("POST", "/api/users"): (A, F, F, F, 422),
    ("PATCH", "/api/users/{username}"): (A, F, F, F, 422),
    ("POST", "/api/users/{username}/password"): (A, F, F, F, 422),
    ("GET", "/api/agencies"): (A, F, F, F, 200),
    ("POST", "/api/agencies"): (A, F, F, F, 422),
    ("PATCH", "/api/agencies/{agency_id}"): (A, F, F, F, 422),
    ("GET", "/api/tokens"): (A, F, F, F, 200),
    ("POST", "/api/tokens"): (A, F, F, F, 422),
    ("POST", "/api/tokens/{token_id}/revoke"): (A, F, F, F, 200),
    ("GET", "/api/admin-changes"): (A, F, F, 200, 200),
    ("GET", "/api/ledger/verify"): (A, F, F, 200, F),
    ("GET", "/api/ledger/report"): (A, F, F, 200, F),
    ("POST", "/api/ledger/accounting"): (A, F, F, 422, F),
    ("GET", "/api/access-log"): (A, F, F, 200, F),
    ("GET", "/login"): (200, 303, 303, 303, 303),
    ("POST", "/login"): (422, 422, 422, 422, 422),
    ("POST", "/logout"): (401, 303, 303, 303, 303),
    ("GET", "/"): (U, 200, 200, 200, 200),
    ("GET", "/admin/users"): (U, F, F, F, 200),
    ("POST", "/admin/users"): (401, F, F, F, 422),
    ("POST", "/admin/users/{username}"): (401, F, F, F, 422),
    ("POST", "/admin/users/{username}/password"): (401, F, F, F, 422),
    ("GET", "/admin/agencies"): (U, F, F, F, 200),
    ("POST", "/admin/agencies"): (401, F, F, F, 422),
    ("POST", "/admin/agencies/{agency_id}"): (401, F, F, F, 422),
    ("GET", "/admin/tokens"): (U, F, F, F, 200),
    ("POST", "/admin/tokens"): (401, F, F, F, 422),
    ("POST", "/admin/tokens/{token_id}/revoke"): (401, F, F, F, 303),
    ("GET", "/admin/changes"): (U, F, F, 200, 200),
    ("GET", "/auditor/verify"): (U, F, F, 200, F),
    ("GET", "/auditor/report"): (U, F, F, 200, F),
    ("GET", "/auditor/accounting"): (U, F, F, 200, F),
    ("POST", "/auditor/accounting"): (401, F, F, 422, F),
    ("GET", "/auditor/access-log"): (U, F, F, 200, F),
}
#: How a path template is filled in, and what a GET needs as its query.
FILL = {"{username}": "officer", "{agency_id}": "1", "{token_id}": "1"}
QUERY = {"/api/ledger/report": "?year=2026", "/static": "/style.css"}


def app_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        methods = sorted((context.methods or {"GET"}) - {"HEAD"})
        found.extend((method, str(context.path)) for method in methods)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AppDB]]:
    folder = tmp_path_factory.mktemp("matrix")
    settings = settings_for(deployment_in(folder), str(folder / "app.sqlite"))
    open_ledger(settings.deployment.ledger, create=True).close()
    db = open_app_db(settings.app_db)
    seed(db, settings)
    accounts.create_token(db, "seed", username="submitter", label="matrix")
    with make_client(settings, db) as client:
        yield client, db
    db.close()


def as_who(client: TestClient, db: AppDB, who: str) -> dict[str, str]:
    """A fresh session for ``who`` (so a logout does not spoil the next request)."""
    client.cookies.clear()
    if who == "anonymous":
        return {}
    user_id = [u for u in USERS].index(who) + 1
    token = auth.start_session(db, client.app.state.settings,  # type: ignore[attr-defined]
                               user_id)
    principal = auth.session_principal(db, token)
    assert principal is not None and principal.username == who
    client.cookies.set("__Host-lk_session", token)
    return {"X-CSRF-Token": principal.csrf_secret or ""}


def test_every_route_has_an_expected_row(world: tuple[TestClient, AppDB]) -> None:
    routes = app_routes(world[0])
    assert sorted(routes) == sorted(EXPECTED), (
        "routes without a row in EXPECTED (write down who may call them): "
        f"{sorted(set(routes) - set(EXPECTED))}; rows without a route: "
        f"{sorted(set(EXPECTED) - set(routes))}")


def test_every_api_route_declares_its_roles(world: tuple[TestClient, AppDB]) -> None:
    from fastapi.routing import APIRoute

    for context in iter_route_contexts(world[0].app.routes):  # type: ignore[attr-defined]
        if isinstance(context.original_route, APIRoute):
            assert route_rule(context.original_route) is not None, context.path


@pytest.mark.parametrize("route", sorted(EXPECTED), ids=lambda r: f"{r[0]} {r[1]}")
def test_matrix(world: tuple[TestClient, AppDB], route: tuple[str, str]) -> None:
    client, db = world
    method, template = route
    path = template
    for hole, value in FILL.items():
        path = path.replace(hole, value)
    path += QUERY.get(template, "")
    got = []
    for who in WHO:
        headers = as_who(client, db, who)
        response = client.request(method, path, headers=headers)
        got.append(response.status_code)
    assert dict(zip(WHO, got, strict=True)) == dict(zip(WHO, EXPECTED[route], strict=True))


def test_docs_show_the_same_matrix() -> None:
    """docs/SERVICE.md's "who may call" column says what EXPECTED says."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "SERVICE.md").read_text(
        encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and " /" in cells[0]:
            method, path = cells[0].strip("`").split(" ", 1)
            documented[(method, path)] = cells[1]
    expected = {}
    for route, statuses in EXPECTED.items():
        who = [w for w, s in zip(WHO, statuses, strict=True)
               if (s not in (401, 303) if w == "anonymous" else s != 403)]
        expected[route] = "anyone" if len(who) == len(WHO) else ", ".join(who)
    assert documented == expected
