"""Shared helpers of the service tests: a deployment in a temp folder, an app on it,
one user per role, signing in as a browser does."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from lastknown.config import Deployment
from lastknown.service import accounts
from lastknown.service.app import create_app
from lastknown.service.db import AppDB, open_app_db
from lastknown.service.roles import Role
from lastknown.service.settings import ServiceSettings

PASSWORD = "correct horse battery"
AGENCY_A = "U.S. Immigration and Customs Enforcement"
AGENCY_B = "U.S. Marshals Service"
#: username -> (role, agency)
USERS: dict[str, tuple[Role, str | None]] = {
    "admin": (Role.ADMIN, None),
    "auditor": (Role.AUDITOR, None),
    "officer": (Role.OFFICER, None),
    "submitter": (Role.SUBMITTER, AGENCY_A),
    "submitter2": (Role.SUBMITTER, AGENCY_B),
}


def deployment_in(folder: Path) -> Deployment:
    return Deployment(ledger=str(folder / "ledger.sqlite"), archive=folder / "archive",
                      anchors=folder / "anchors.jsonl", source="test")


def settings_for(deployment: Deployment, app_db: str) -> ServiceSettings:
    return ServiceSettings(deployment=deployment, app_db=app_db, password_cost="minimal")


def seed(db: AppDB, settings: ServiceSettings) -> None:
    from lastknown.service.auth import password_hasher

    hasher = password_hasher(settings.password_cost)
    accounts.create_agency(db, "seed", AGENCY_A, ["8 U.S.C. 1253(a)(1)"])
    accounts.create_agency(db, "seed", AGENCY_B, ["18 U.S.C. 1073"])
    for name, (role, agency) in USERS.items():
        accounts.create_user(db, hasher, "seed", username=name, display_name=name.title(),
                             role=role, password=PASSWORD, agency=agency)


def make_client(settings: ServiceSettings, db: AppDB | None = None,
                **kwargs: object) -> TestClient:
    """A browser-like client over https (so Secure cookies are sent back)."""
    app = create_app(settings, db=db or open_app_db(settings.app_db))
    return TestClient(app, base_url="https://testserver", follow_redirects=False,
                      **kwargs)  # type: ignore[arg-type]


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the login form (as a fresh browser); return the session's CSRF
    token."""
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token.group(1)})
    assert response.status_code == 303, response.text
    me = client.get("/api/me")
    assert me.status_code == 200
    csrf = me.json()["csrf_token"]
    assert isinstance(csrf, str)
    return csrf
