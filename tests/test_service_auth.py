"""The service's core: sign-in, cookies, CSRF, API tokens, what is stored, what is logged,
the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import Depends
from fastapi.testclient import TestClient

from lastknown.service import db as t
from lastknown.service.db import AppDB, open_app_db
from lastknown.service.roles import PUBLIC, allow
from lastknown.service.settings import ServiceSettings
from service_helpers import (
    AGENCY_B,
    PASSWORD,
    deployment_in,
    login,
    make_client,
    seed,
    settings_for,
)


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return settings_for(deployment_in(tmp_path), str(tmp_path / "app.sqlite"))


@pytest.fixture
def db(settings: ServiceSettings) -> Iterator[AppDB]:
    db = open_app_db(settings.app_db)
    seed(db, settings)
    yield db
    db.close()


@pytest.fixture
def client(settings: ServiceSettings, db: AppDB) -> Iterator[TestClient]:
    with make_client(settings, db) as client:
        yield client


def rows(db: AppDB, table: sa.Table) -> list[dict[str, object]]:
    with db.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(client: TestClient,
                                                                  db: AppDB) -> None:
    assert client.get("/").status_code == 303  # anonymous: to the login page
    assert client.get("/").headers["location"] == "/login?next=/"
    csrf = login(client, "officer")
    cookie = next(h for h in client.cookies.jar if h.name == "__Host-lk_session")
    assert cookie.secure and cookie.path == "/" and cookie.has_nonstandard_attr("HttpOnly")
    assert client.get("/").status_code == 200
    stored = rows(db, t.sessions)
    assert len(stored) == 1 and stored[0]["token_hash"] != cookie.value
    assert len(str(stored[0]["token_hash"])) == 64
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert rows(db, t.sessions)[0]["ended_at"] is not None
    client.cookies.set("__Host-lk_session", str(cookie.value))  # a stolen, ended session
    assert client.get("/api/me").status_code == 401


def test_cookie_flags_as_sent(client: TestClient) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": token})
    header = next(v for v in response.headers.get_list("set-cookie") if "lk_session" in v)
    assert header.startswith("__Host-lk_session=")
    assert {"HttpOnly", "Secure", "SameSite=lax", "Path=/"} <= {
        p.strip() for p in header.split(";")}


def test_demo_cookies_are_not_secure(tmp_path: Path) -> None:
    settings = settings_for(deployment_in(tmp_path), str(tmp_path / "a.sqlite")).with_(
        secure_cookies=False, demo=True)
    db = open_app_db(settings.app_db)
    seed(db, settings)
    with make_client(settings, db) as client:
        page = client.get("/login")
        assert "Demo mode" in page.text
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                               "csrf_token": token})
        header = next(v for v in response.headers.get_list("set-cookie") if "lk_session" in v)
        assert header.startswith("lk_session=") and "Secure" not in header


def test_passwords_are_argon2_and_failed_logins_are_logged_and_throttled(
        client: TestClient, db: AppDB) -> None:
    hashes = [str(u["password_hash"]) for u in rows(db, t.users)]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    for _ in range(5):
        bad = client.post("/api/login", json={"username": "Auditor", "password": "guess-1234"})
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "login_failed"
    refused = client.post("/api/login", json={"username": "auditor", "password": PASSWORD})
    assert refused.status_code == 429
    log = [r for r in rows(db, t.access_log) if r["event_type"] == "login"]
    assert [r["success"] for r in log] == [False] * 6
    assert {r["username"] for r in log} == {"auditor"}
    dump = repr(rows(db, t.access_log))
    assert "guess-1234" not in dump and PASSWORD not in dump
    assert client.post("/api/login", json={"username": "officer",
                                           "password": PASSWORD}).status_code == 200


def test_csrf_is_required_with_a_session_cookie(client: TestClient, db: AppDB) -> None:
    new = {"username": "newbie", "role": "officer", "password": "long enough password"}
    csrf = login(client, "admin")
    refused = client.post("/api/users", json=new)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/users", json=new, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    form = client.post("/admin/users", data=new)
    assert form.status_code == 403 and "security token" in form.text
    assert "newbie" not in {u["username"] for u in rows(db, t.users)}
    assert client.post("/api/users", json=new, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.post("/admin/users", data={**new, "username": "newbie2",
                                             "csrf_token": csrf}).status_code == 303


def test_login_form_needs_its_own_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 403 and "lk_session" not in response.headers.get(
        "set-cookie", "")


def test_api_tokens_are_hashed_and_scoped_to_one_agency(client: TestClient, db: AppDB) -> None:
    csrf = login(client, "admin")
    admin = {"X-CSRF-Token": csrf}
    made = client.post("/api/tokens", json={"username": "submitter", "label": "case system"},
                       headers=admin)
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("lk_") and token not in repr(rows(db, t.api_tokens))
    assert token not in client.get("/api/tokens").text  # shown once only
    system = TestClient(client.app, base_url="https://testserver")
    bearer = {"Authorization": f"Bearer {token}"}
    me = system.get("/api/me", headers=bearer).json()
    assert (me["username"], me["role"], me["csrf_token"]) == ("submitter", "submitter", None)
    assert me["agency"] == "U.S. Immigration and Customs Enforcement"
    assert system.get("/api/users", headers=bearer).status_code == 403
    assert system.post("/api/logout", headers=bearer).status_code == 204  # no CSRF for tokens
    assert rows(db, t.api_tokens)[0]["last_used_at"] is not None
    officer = client.post("/api/tokens", json={"username": "officer"}, headers=admin)
    assert officer.status_code == 400
    moved = client.patch("/api/users/submitter", json={"agency": AGENCY_B}, headers=admin)
    assert moved.status_code == 200 and moved.json()["agency"] == AGENCY_B
    stale = system.get("/api/me", headers=bearer)
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "invalid_token"
    second = client.post("/api/tokens", json={"username": "submitter"}, headers=admin).json()
    bearer2 = {"Authorization": f"Bearer {second['token']}"}
    assert system.get("/api/me", headers=bearer2).json()["agency"] == AGENCY_B
    revoked = client.post(f"/api/tokens/{second['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert system.get("/api/me", headers=bearer2).status_code == 401


def test_admin_changes_are_recorded_without_secrets(client: TestClient, db: AppDB) -> None:
    admin = {"X-CSRF-Token": login(client, "admin")}
    client.post("/api/users", json={"username": "Pat", "role": "auditor",
                                    "password": "a fine long password"}, headers=admin)
    client.patch("/api/users/pat", json={"active": False}, headers=admin)
    client.post("/api/users/pat/password", json={"password": "another long one"},
                headers=admin)
    client.patch("/api/agencies/1", json={"max_rows_per_batch": 500}, headers=admin)
    huge = client.patch("/api/agencies/9223372036854775808", json={}, headers=admin)
    assert huge.status_code == 422  # found by the fuzzer: it overflowed SQLite
    changes = client.get("/api/admin-changes").json()
    mine = [c for c in changes if c["actor"] == "admin"]
    assert [(c["action"], c["object_type"], c["object_key"]) for c in mine] == [
        ("update", "agency", "U.S. Immigration and Customs Enforcement"),
        ("reset_password", "user", "pat"), ("update", "user", "pat"), ("create", "user", "pat")]
    assert mine[2]["before"]["active"] is True and mine[2]["after"]["active"] is False
    assert mine[0]["before"]["max_rows_per_batch"] is None
    assert mine[0]["after"]["max_rows_per_batch"] == 500
    dump = repr(rows(db, t.admin_changes))
    assert "argon2" not in dump and "a fine long password" not in dump
    assert "another long one" not in dump
    detail = {r["detail"] for r in rows(db, t.access_log) if r["username"] == "admin"}
    assert {"created user pat", "updated user pat", "reset a password"} <= detail


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(client: TestClient) -> None:
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    login(other, "officer")
    admin = {"X-CSRF-Token": login(client, "admin")}
    client.patch("/api/users/officer", json={"active": False}, headers=admin)
    assert other.get("/api/me").status_code == 401
    assert other.post("/api/login", json={"username": "officer",
                                          "password": PASSWORD}).status_code == 401


def test_every_request_is_in_the_access_log(client: TestClient, db: AppDB) -> None:
    client.get("/api/me", headers={"User-Agent": "probe/1.0"})
    login(client, "auditor")
    client.get("/auditor/access-log?username=auditor&days=1")
    client.get("/static/style.css")
    log = rows(db, t.access_log)
    first = log[0]
    assert (first["username"], first["event_type"], first["status"], first["success"],
            first["user_agent"], first["origin_ip"]) == (
        None, "api_me", 401, False, "probe/1.0", "testclient")
    mine = [(r["role"], r["event_type"], r["method"], r["object"])
            for r in log if r["username"] == "auditor"]
    assert mine == [("auditor", "login", "POST", "/login"),
                    ("auditor", "api_me", "GET", "/api/me"),
                    ("auditor", "auditor_access_log", "GET", "/auditor/access-log")]
    assert not any(str(r["object"]).startswith("/static") for r in log)
    page = client.get("/auditor/access-log?outcome=failure&days=1")
    assert "api_me" in page.text and "401" in page.text
    api = client.get("/api/access-log", params={"username": "auditor", "event_type": "api_me",
                                                "success": True}).json()
    assert [(r["event_type"], r["status"]) for r in api] == [("api_me", 200)]


ERROR_KEYS = {"status", "code", "message"}


def test_one_error_shape_and_no_traceback(settings: ServiceSettings, db: AppDB) -> None:
    with make_client(settings, db, raise_server_exceptions=False) as client:
        def boom() -> None:
            raise RuntimeError("secret detail 123456789")

        client.app.add_api_route("/api/boom", boom,  # type: ignore[attr-defined]
                                 dependencies=[Depends(allow(PUBLIC))])
        cases = {("GET", "/api/nope"): (404, "not_found"),
                 ("GET", "/api/users"): (401, "not_authenticated"),
                 ("POST", "/api/login"): (422, "invalid_request"),
                 ("GET", "/api/boom"): (500, "internal_error"),
                 ("DELETE", "/api/me"): (405, "method_not_allowed")}
        for (method, path), (status, code) in cases.items():
            response = client.request(method, path)
            assert response.status_code == status, path
            assert response.json() == {"error": {"status": status, "code": code,
                                                  "message": response.json()["error"][
                                                      "message"]}}
            assert set(response.json()["error"]) == ERROR_KEYS
            assert "Traceback" not in response.text and "123456789" not in response.text
        assert client.get("/api/users").headers["www-authenticate"] == "Bearer"
        login(client, "submitter")
        forbidden = client.get("/api/users").json()["error"]
        assert (forbidden["status"], forbidden["code"]) == (403, "forbidden")
        typed = client.post("/api/ledger/accounting", json={"tin": 123456789})
        assert typed.status_code == 403  # roles are checked before the body is looked at
        page = client.get("/no/such/page")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        boom_page = client.get("/api/boom")
        assert "secret detail" not in boom_page.text


def test_validation_errors_name_the_field_not_the_value(client: TestClient) -> None:
    login(client, "auditor")
    csrf = client.get("/api/me").json()["csrf_token"]
    response = client.post("/api/ledger/accounting", json={"tin": "1" * 25},
                           headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert "tin" in response.json()["error"]["message"] and "1111" not in response.text


def test_uploads_over_the_limit_are_refused(tmp_path: Path) -> None:
    settings = settings_for(deployment_in(tmp_path), str(tmp_path / "a.sqlite")).with_(
        upload_limit_mb=1)
    db = open_app_db(settings.app_db)
    with make_client(settings, db) as client:
        response = client.post("/api/login", content=b"x" * (1024 * 1024 + 1),
                               headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        streamed = client.post("/api/login", content=iter([b"x" * 600_000] * 2),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413
    assert [r["status"] for r in rows(db, t.access_log)] == [413, 413]


def test_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "cdn" not in response.text.lower()


def test_sessions_expire_and_admins_cannot_lock_themselves_out(client: TestClient,
                                                               db: AppDB) -> None:
    admin = {"X-CSRF-Token": login(client, "admin")}
    for change in ({"active": False}, {"role": "auditor"}):
        refused = client.patch("/api/users/admin", json=change, headers=admin)
        assert refused.status_code == 400 and "themselves" in refused.json()["error"]["message"]
    with db.begin() as conn:
        conn.execute(t.sessions.update().values(expires_at=t.now()))
    assert client.get("/api/me").status_code == 401


def test_verify_without_a_ledger_says_so(client: TestClient) -> None:
    login(client, "auditor")
    page = client.get("/auditor/verify")
    assert page.status_code == 200 and "no ledger at" in page.text
    api = client.get("/api/ledger/verify")
    assert api.status_code == 503 and api.json()["error"]["code"] == "ledger_unavailable"
