"""The service attacked as an adversary would: each defence pinned by the attack it stops.

IDOR (another agency's batch, a held batch's package, traversal in ids and file names),
CSRF (missing, wrong, another session's, in the query, JSON without the header, login
CSRF), sessions (fixation, logout, deactivation, a flood of sign-ins), XSS (batch
metadata, deny reasons, usernames, agency names on every page that shows them, text in
URLs), open redirects after login, role escalation (forms, API, API tokens) and privacy
(no TIN in any reply, no TIN or request name in any log line, failed attempts logged, no
server path, SQL or traceback in an error or a failed job's log).

One module-wide deployment (a synthetic master, three batches) is shared. Uploads are
attacked in test_service_upload_attacks.py, request files made to hurt the reader in
test_request_hostile_files.py.
"""

from __future__ import annotations

import csv
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa
from fastapi import Depends
from fastapi.testclient import TestClient

from batch_helpers import (
    STATUTE,
    form_values,
    request_of,
    running_app,
    service_settings,
    wait_settled,
)
from lastknown.service import accounts
from lastknown.service import db as t
from lastknown.service.db import AppDB
from lastknown.service.roles import PUBLIC, allow
from lastknown.service.settings import ServiceSettings
from service_helpers import AGENCY_A, PASSWORD, login
from test_workflow import Synth, make_synth

SCRIPT = "<script>alert('lk')</script>"
IMG = '"><img src=x onerror=alert(1)>'
#: What must never appear unescaped in a page.
RAW = ("<script>alert", "<img src=x")
EVIL_AGENCY = f"Agency {SCRIPT}"
EVIL_USER = '"><img/src=x/onerror=alert(1)>'
#: Every reply this module received (text), and those that were errors.
REPLIES: list[str] = []
ERRORS: list[str] = []


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


class World:
    def __init__(self, client: TestClient, db: AppDB, settings: ServiceSettings,
                 synth: Synth, logs: Capture) -> None:
        self.client, self.db, self.settings, self.synth, self.logs = (
            client, db, settings, synth, logs)


def go(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """A request whose reply is kept for the privacy scans."""
    response = client.request(method, path, **kwargs)
    if "zip" not in response.headers.get("content-type", ""):
        REPLIES.append(response.text)
        if response.status_code >= 400:
            ERRORS.append(response.text)
    REPLIES.append(repr(response.headers))
    return response


def submit(client: TestClient, csrf: str, request: Path, batch_id: str, *,
           name: str | None = None, **changes: Any) -> Any:
    with request.open("rb") as handle:
        return go(client, "POST", "/api/batches", headers={"X-CSRF-Token": csrf},
                  data=form_values(batch_id, **changes),
                  files={"file": (name or request.name, handle, "text/csv")})


EVIL_FORM = {"requesting_official": f"Dana {SCRIPT}", "official_title": IMG,
             "reason": f"Locate subjects {IMG}",
             "certification": "Each row is the subject of an investigation in which the "
                              f"named officers are personally and directly engaged {SCRIPT}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    synth = make_synth(tmp_path_factory)
    settings = service_settings(tmp_path_factory.mktemp("attacks"), synth)
    logs = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    try:
        with running_app(settings) as (client, db):
            csrf = login(client, "submitter")
            for batch_id in ("RT-HELD", "RT-REL", "RT-DENY"):
                evil = EVIL_FORM if batch_id != "RT-REL" else {}
                assert submit(client, csrf, request_of(synth), batch_id, **evil).status_code == 202
            for batch_id in ("RT-HELD", "RT-REL", "RT-DENY"):
                assert wait_settled(client, batch_id)["status"] == "held", batch_id
            csrf = login(client, "officer")
            officer = {"X-CSRF-Token": csrf}
            assert go(client, "POST", "/api/batches/RT-REL/approve",
                      headers=officer).status_code == 200
            assert go(client, "POST", "/api/batches/RT-DENY/deny", headers=officer,
                      json={"reason": f"No case named {SCRIPT} {IMG}"}).status_code == 200
            yield World(client, db, settings, synth, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(level)


def as_token(world: World, username: str) -> dict[str, str]:
    token, _ = accounts.create_token(world.db, "admin", username=username, label="probe")
    return {"Authorization": f"Bearer {token}"}


# --- IDOR -------------------------------------------------------------------------------

BATCH_ROUTES = (("GET", "/batches/{}"), ("GET", "/batches/{}/package.zip"),
                ("GET", "/batches/{}/files/matched.csv"), ("POST", "/batches/{}/retry"),
                ("GET", "/api/batches/{}"), ("GET", "/api/batches/{}/package"),
                ("POST", "/api/batches/{}/retry"))


def test_another_agency_finds_none_of_the_batches(world: World) -> None:
    client = world.client
    csrf = login(client, "submitter2")
    token = as_token(world, "submitter2")
    for batch_id in ("RT-HELD", "RT-REL", "RT-DENY", "rt-rel"):
        for method, path in BATCH_ROUTES:
            url = path.format(batch_id)
            by_session = go(client, method, url, headers={"X-CSRF-Token": csrf},
                            data={"csrf_token": csrf} if method == "POST" else None)
            by_token = go(TestClient(client.app, base_url="https://testserver"), method, url,
                          headers=token)
            for response in (by_session, by_token):
                assert response.status_code == 404, (url, response.status_code)
                assert "Dana" not in response.text and AGENCY_A not in response.text
    for listing in (go(client, "GET", "/api/batches"), go(client, "GET", "/batches")):
        assert "RT-" not in listing.text


def test_a_held_or_denied_batch_gives_its_submitter_no_package_and_no_decision(
        world: World) -> None:
    client = world.client
    csrf = login(client, "submitter")
    for batch_id in ("RT-HELD", "RT-DENY"):
        for path in ("/batches/{}/package.zip", "/batches/{}/files/matched.csv",
                     "/api/batches/{}/package"):
            assert go(client, "GET", path.format(batch_id)).status_code == 404
        for method, path in (("GET", "/review/{}"), ("GET", "/api/batches/{}/review"),
                             ("POST", "/review/{}/approve"), ("POST", "/review/{}/deny"),
                             ("POST", "/api/batches/{}/approve"),
                             ("POST", "/api/batches/{}/deny")):
            refused = go(client, method, path.format(batch_id),
                         headers={"X-CSRF-Token": csrf}, json={"reason": "x"})
            assert refused.status_code == 403, path
    shown = go(client, "GET", "/api/batches/RT-HELD").json()
    assert shown["status"] == "held" and shown["rows"] is None and shown["files"] == []


TRAVERSALS = ("%2e%2e", "%2E%2E", "%2e", "...", "..%2F..%2Fledger.sqlite",
              "%2Fetc%2Fpasswd", "%2e%2e%2fstate.json", "RT-REL%00", "RT-REL%2F..",
              "C:%5Cwindows", "%5C..%5C..", "~", "%252e%252e", "RT-REL%0aX")


def test_traversal_in_batch_ids_and_file_names_reaches_nothing(world: World) -> None:
    client = world.client
    login(client, "submitter")
    for bad in TRAVERSALS:
        for path in ("/batches/{}", "/batches/{}/package.zip", "/api/batches/{}",
                     "/api/batches/{}/package", "/batches/RT-REL/files/{}",
                     "/batches/{}/files/matched.csv", "/batches/RT-REL/files/..%2F{}"):
            response = go(client, "GET", path.format(bad))
            assert response.status_code in (404, 422), (path, bad, response.status_code)
    for name in ("state.json", "review.json", "..%2Fstate.json", "..%5Cstate.json",
                 "%2e%2e%2f%2e%2e%2fapp.sqlite", "matched.csv%00.txt", "MATCHED.CSV"):
        response = go(client, "GET", f"/batches/RT-REL/files/{name}")
        assert response.status_code == 404, name
    for path in ("/static/..%2F__init__.py", "/static/%2e%2e/__init__.py",
                 "/static/..%2F..%2Fapp.py", "/static/%2e%2e%2f%2e%2e%2fsettings.py"):
        response = go(client, "GET", path)
        assert response.status_code == 404 and "import" not in response.text, path
    login(client, "officer")
    for bad in TRAVERSALS:
        for path in ("/review/{}", "/api/batches/{}/review", "/api/batches/{}"):
            response = go(client, "GET", path.format(bad))
            assert response.status_code in (404, 422), (path, bad, response.status_code)


# --- CSRF and sessions ------------------------------------------------------------------

def test_a_state_change_needs_this_sessions_token_in_the_body_or_header(world: World) -> None:
    client = world.client
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    stolen = login(other, "officer")  # a valid token, of another session
    csrf = login(client, "officer")
    assert stolen != csrf
    deny = {"reason": "forged"}
    attempts = [
        go(client, "POST", "/review/RT-HELD/deny", data=deny),
        go(client, "POST", "/review/RT-HELD/deny", data={**deny, "csrf_token": "x" * 43}),
        go(client, "POST", "/review/RT-HELD/deny", data={**deny, "csrf_token": stolen}),
        go(client, "POST", f"/review/RT-HELD/deny?csrf_token={csrf}", data=deny),
        go(client, "POST", f"/review/RT-HELD/approve?csrf_token={csrf}"),
        go(client, "POST", "/api/batches/RT-HELD/deny", json=deny),
        go(client, "POST", "/api/batches/RT-HELD/deny", json={**deny, "csrf_token": csrf}),
        go(client, "POST", "/api/batches/RT-HELD/approve", headers={"X-CSRF-Token": stolen}),
        go(client, "POST", "/api/batches/RT-HELD/approve", headers={"X-CSRF-Token": ""}),
    ]
    for response in attempts:
        assert response.status_code == 403, response.text
    assert "security token" in attempts[0].text
    assert attempts[5].json()["error"]["code"] == "csrf_failed"
    for path in ("/review/RT-HELD/approve", "/review/RT-HELD/deny", "/logout",
                 "/api/batches/RT-HELD/approve"):
        assert go(client, "GET", f"{path}?csrf_token={csrf}").status_code == 405, path
    assert go(client, "GET", "/api/batches/RT-HELD").json()["status"] == "held"
    other.close()


def test_login_csrf_is_refused(world: World) -> None:
    client = TestClient(world.client.app, base_url="https://testserver",
                        follow_redirects=False)
    creds = {"username": "submitter", "password": PASSWORD}
    forged = [go(client, "POST", "/login", data=creds),  # no login cookie, no field
              go(client, "POST", "/login", data={**creds, "csrf_token": "guess"})]
    page = go(client, "GET", "/login")
    issued_cookie = page.headers["set-cookie"]
    assert issued_cookie.startswith("__Secure-lk_login_csrf=") and "secure" in issued_cookie.lower()
    assert "path=/login" in issued_cookie.lower()
    client.cookies.clear()
    for name in ("__Secure-lk_login_csrf", "lk_login_csrf"):  # planted, not the form's
        client.cookies.set(name, "planted", path="/login")
    forged.append(go(client, "POST", "/login", data={**creds, "csrf_token": "other"}))
    # the plain name (what a page over http could set) is not read by a secure deployment
    client.cookies.delete("__Secure-lk_login_csrf", path="/login")
    forged.append(go(client, "POST", "/login", data={**creds, "csrf_token": "planted"}))
    # A cross-site page can post text/plain (or no type) but cannot set application/json.
    body = '{"username": "submitter", "password": "%s"}' % PASSWORD
    forged += [go(client, "POST", "/api/login", content=body,
                  headers={"content-type": "text/plain"}),
               go(client, "POST", "/api/login", content=body)]
    for response in forged:
        assert response.status_code in (403, 422), response.status_code
        assert "lk_session" not in response.headers.get("set-cookie", "")
    client.close()


def issued(response: Any) -> str:
    """The session id a sign-in's reply set."""
    sent = next(v for v in response.headers.get_list("set-cookie") if "lk_session" in v)
    return str(sent.split(";")[0].split("=", 1)[1])


def test_sessions_fixation_logout_and_deactivation(world: World) -> None:
    client = TestClient(world.client.app, base_url="https://testserver",
                        follow_redirects=False)
    client.cookies.set("__Host-lk_session", "attacker-chosen-value")
    assert go(client, "GET", "/api/me").status_code == 401
    login_page = go(client, "GET", "/login")
    flags = {p.strip().lower() for p in login_page.headers["set-cookie"].split(";")}
    assert {"httponly", "secure", "samesite=strict"} <= flags  # the login CSRF cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
    assert token
    signed = go(client, "POST", "/login", data={"username": "submitter", "password": PASSWORD,
                                                "csrf_token": token.group(1)})
    assert signed.status_code == 303
    sent = next(v for v in signed.headers.get_list("set-cookie") if "lk_session" in v)
    assert {"HttpOnly", "Secure", "SameSite=lax", "Path=/"} <= {
        p.strip() for p in sent.split(";")}
    first = issued(signed)
    assert first != "attacker-chosen-value"  # the server's own new id, not the planted one
    client.cookies.clear()
    client.cookies.set("__Host-lk_session", first)

    again = go(client, "POST", "/api/login", json={"username": "submitter2",
                                                    "password": PASSWORD})
    assert again.status_code == 200  # signing in again, as anyone, ends the earlier session
    csrf = again.json()["csrf_token"]
    second = issued(again)
    client.cookies.clear()
    client.cookies.set("__Host-lk_session", second)
    assert second != first
    probe = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    probe.cookies.set("__Host-lk_session", first)
    assert go(probe, "GET", "/api/me").status_code == 401

    assert go(client, "POST", "/logout", data={"csrf_token": csrf}).status_code == 303
    probe.cookies.set("__Host-lk_session", second)
    assert go(probe, "GET", "/api/me").status_code == 401
    assert go(probe, "POST", "/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 401

    hasher = client.app.state.hasher  # type: ignore[attr-defined]
    accounts.create_user(world.db, hasher, "admin", username="leaver", display_name="Leaver",
                         role="submitter", password=PASSWORD, agency=AGENCY_A)
    leaver_csrf = login(client, "leaver")
    bearer = as_token(world, "leaver")
    system = TestClient(client.app, base_url="https://testserver")
    assert go(system, "GET", "/api/batches", headers=bearer).status_code == 200
    admin = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    admin_csrf = login(admin, "admin")
    assert go(admin, "POST", "/admin/users/leaver", data={
        "role": "submitter", "agency": AGENCY_A, "active": "", "csrf_token": admin_csrf,
    }).status_code == 303
    assert go(client, "GET", "/api/batches").status_code == 401
    assert go(client, "GET", "/batches").status_code == 303  # to the login page
    assert go(client, "POST", "/api/batches/RT-HELD/retry",
              headers={"X-CSRF-Token": leaver_csrf}).status_code == 401
    assert go(system, "GET", "/api/batches", headers=bearer).status_code == 401
    for c in (client, probe, system, admin):
        c.close()


def test_anonymous_sign_ins_verify_a_few_passwords_at_a_time(world: World) -> None:
    """Each Argon2 verification takes 64 MiB: a flood of sign-ins with random usernames
    (the per-username throttle does not see them) must not run forty at once."""
    from lastknown.service.auth import VERIFY_AT_ONCE

    app = world.client.app
    busy, most, lock = 0, 0, threading.Lock()

    class Slow:
        def verify(self, password: str, stored: str) -> bool:
            nonlocal busy, most
            with lock:
                busy += 1
                most = max(most, busy)
            threading.Event().wait(0.05)
            with lock:
                busy -= 1
            return False

    answers: list[int] = []

    def sign_in(number: int) -> None:
        client = TestClient(app, base_url="https://testserver")  # no second lifespan
        answers.append(client.post("/api/login", json={
            "username": f"flood{number}", "password": "x" * 12}).status_code)
        client.close()

    real = app.state.hasher  # type: ignore[attr-defined]
    app.state.hasher = Slow()  # type: ignore[attr-defined]
    try:  # (not monkeypatch: its undo deletes an attribute of a Starlette State)
        threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        app.state.hasher = real  # type: ignore[attr-defined]
    assert answers == [401] * 16
    assert 1 <= most <= VERIFY_AT_ONCE


# --- XSS and redirects ------------------------------------------------------------------

def escaped_everywhere(pages: dict[str, Any], *, shown: str) -> None:
    for path, response in pages.items():
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
        for raw in RAW:
            assert raw not in response.text, (path, raw)
    assert any(shown in r.text for r in pages.values()), shown


def test_hostile_text_is_escaped_on_every_page_that_shows_it(world: World) -> None:
    client = world.client
    hasher = client.app.state.hasher  # type: ignore[attr-defined]
    accounts.create_agency(world.db, "admin", EVIL_AGENCY, [f"{STATUTE} {IMG}"])
    accounts.create_user(world.db, hasher, "admin", username=EVIL_USER,
                         display_name=f"Eve {SCRIPT}", role="submitter", password=PASSWORD,
                         agency=EVIL_AGENCY)
    go(client, "POST", "/api/login", json={"username": f"{SCRIPT}x", "password": "wrong-one"})
    login(client, "submitter")
    escaped_everywhere({p: go(client, "GET", p) for p in (
        "/batches", "/batches/RT-HELD", "/batches/RT-DENY")}, shown="&lt;script&gt;")
    login(client, "officer")
    escaped_everywhere({p: go(client, "GET", p) for p in (
        "/review", "/review/RT-HELD", "/review/RT-DENY")}, shown="&lt;img src=x")
    login(client, "admin")
    escaped_everywhere({p: go(client, "GET", p) for p in (
        "/admin/users", "/admin/agencies", "/admin/tokens", "/admin/changes")},
        shown="&lt;script&gt;")
    login(client, "auditor")
    escaped_everywhere({p: go(client, "GET", p) for p in (
        "/auditor/access-log", "/admin/changes", "/auditor/report")}, shown="&lt;script&gt;")
    login(client, EVIL_USER)
    escaped_everywhere({p: go(client, "GET", p) for p in ("/", "/batches", "/batches/new")},
                       shown="Eve &lt;script&gt;")


def test_hostile_text_in_a_url_is_escaped_where_it_comes_back(world: World) -> None:
    client = world.client
    login(client, "submitter")
    for path in (f"/batches/{SCRIPT}", f"/batches/{IMG}", "/batches/RT-REL/files/<b>x</b>"):
        page = go(client, "GET", path)
        assert page.status_code in (404, 422), path
        assert not any(raw in page.text for raw in RAW) and "<b>x" not in page.text, path
    api = go(client, "GET", f"/api/batches/{SCRIPT}")
    assert api.headers["content-type"].startswith("application/json")
    download = go(client, "GET", "/batches/RT-REL/files/matched.csv")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"
    login(client, "auditor")
    page = go(client, "GET", "/auditor/access-log", params={
        "username": SCRIPT, "event_type": IMG, "days": "1"})
    assert page.status_code in (200, 400, 422) and not any(raw in page.text for raw in RAW)
    login(client, "officer")
    page = go(client, "GET", f"/review/{IMG}")
    assert page.status_code == 404 and not any(raw in page.text for raw in RAW)
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"


NEXTS = ("//evil.example/x", "https://evil.example", "/\\evil.example", "\\\\evil.example",
         "/\t/evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example", "http:/evil.example",
         "javascript:alert(1)", "/ /evil.example", "///evil.example", "/\r\n/evil.example",
         "data:text/html,x", "/batches\r\nSet-Cookie: x=1")


def stays_here(location: str) -> bool:
    """Whether a browser following ``location`` from the login page stays on this site
    (browsers drop tabs and line breaks and read ``\\`` as ``/``)."""
    cleaned = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    target = urlsplit(urljoin("https://testserver/login", cleaned))
    return target.scheme == "https" and target.netloc == "testserver"


def test_login_never_redirects_off_site(world: World) -> None:
    client = TestClient(world.client.app, base_url="https://testserver",
                        follow_redirects=False)
    for target in NEXTS:
        client.cookies.clear()
        page = go(client, "GET", "/login", params={"next": target})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        signed = go(client, "POST", "/login", data={
            "username": "auditor", "password": PASSWORD, "csrf_token": token.group(1),
            "next": target})
        assert signed.status_code == 303
        assert stays_here(signed.headers["location"]), (target, signed.headers["location"])
        assert "set-cookie: x" not in repr(signed.headers).lower()
        again = go(client, "GET", "/login", params={"next": target})  # signed in already
        assert again.status_code == 303 and stays_here(again.headers["location"]), target
    client.close()


# --- role escalation --------------------------------------------------------------------

def test_no_role_reaches_above_itself(world: World) -> None:
    client = world.client
    users = {"username": "mallory", "role": "admin", "password": "long enough password"}
    for who in ("submitter", "officer", "auditor"):
        csrf = login(client, who)
        header = {"X-CSRF-Token": csrf}
        for method, path, kwargs in (
                ("POST", "/api/users", {"json": users}),
                ("PATCH", f"/api/users/{who}", {"json": {"role": "admin"}}),
                ("POST", "/api/agencies", {"json": {"name": "X", "statutes": ["s"]}}),
                ("PATCH", "/api/agencies/1", {"json": {"max_rows_per_batch": 10**9}}),
                ("POST", "/api/tokens", {"json": {"username": "submitter"}}),
                ("POST", "/admin/users", {"data": {**users, "csrf_token": csrf}}),
                ("POST", f"/admin/users/{who}", {"data": {"role": "admin", "csrf_token": csrf}}),
                ("POST", "/admin/agencies/1", {"data": {"statutes": "any", "csrf_token": csrf}}),
                ("POST", "/admin/tokens", {"data": {"username": "submitter",
                                                    "csrf_token": csrf}})):
            refused = go(client, method, path, headers=header, **kwargs)
            assert refused.status_code == 403, (who, path, refused.status_code)
        if who != "submitter":  # only a submitter submits, so no officer decides their own
            with request_of(world.synth).open("rb") as handle:
                sent = go(client, "POST", "/api/batches", headers=header,
                          data=form_values(f"RT-BY-{who}"),
                          files={"file": ("r.csv", handle, "text/csv")})
            assert sent.status_code == 403, who
        if who != "officer":
            for path in ("/api/batches/RT-HELD/approve", "/review/RT-HELD/approve"):
                refused = go(client, "POST", path, headers=header,
                             data={"csrf_token": csrf})
                assert refused.status_code == 403, (who, path)
    bearer = as_token(world, "submitter")
    system = TestClient(client.app, base_url="https://testserver")
    for method, path in (("GET", "/api/users"), ("GET", "/api/access-log"),
                         ("GET", "/api/ledger/verify"), ("GET", "/api/admin-changes"),
                         ("POST", "/api/batches/RT-HELD/approve"),
                         ("GET", "/api/batches/RT-HELD/review"), ("GET", "/admin/users"),
                         ("GET", "/review/RT-HELD")):
        assert go(system, method, path, headers=bearer).status_code == 403, path
    assert go(system, "PATCH", "/api/users/submitter", headers=bearer,
              json={"role": "admin"}).status_code == 403
    with world.db.begin() as conn:
        roles = dict(conn.execute(sa.select(t.users.c.username, t.users.c.role)).all())
        caps = conn.execute(sa.select(t.agencies.c.max_rows_per_batch)).scalars().all()
    assert "mallory" not in roles and roles["submitter"] == "submitter"
    assert 10**9 not in caps
    system.close()


# --- privacy ----------------------------------------------------------------------------

def test_failed_attempts_are_in_the_access_log(world: World) -> None:
    with world.db.begin() as conn:
        failed = conn.execute(sa.select(t.access_log.c.username, t.access_log.c.status,
                                        t.access_log.c.object).where(
            t.access_log.c.success.is_(False))).all()
    seen = {(u, s, o) for u, s, o in failed}
    assert ("submitter2", 404, "/batches/RT-HELD/package.zip") in seen
    assert ("submitter", 403, "/api/batches/RT-HELD/approve") in seen
    assert any(s == 403 and o == "/review/RT-HELD/deny" for _, s, o in seen)


def full_names(request: Path) -> set[str]:
    with request.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first = next(k for k in rows[0] if "first" in k.lower())
    last = next(k for k in rows[0] if "last" in k.lower())
    return {f"{r[first]} {r[last]}".strip() for r in rows if r[first] and r[last]}


def test_no_tin_in_any_reply_and_no_request_name_in_any_log_line(world: World) -> None:
    """(The released package and the officer's sample name the people asked about, as
    they must; the log must not.)"""
    names = full_names(request_of(world.synth))
    logs = "\n".join(world.logs.lines)
    replies = "\n".join(REPLIES)
    assert len(names) > 20 and "job" in logs and "RT-REL" in replies
    assert sorted(tin for tin in world.synth.tins if tin in replies or tin in logs) == []
    assert sorted(n for n in names if n in logs) == []


def test_errors_echo_no_server_path_sql_or_traceback(world: World) -> None:
    client = world.client
    folder = str(world.settings.files_dir.parent)
    csrf = login(client, "submitter")
    blank = submit(client, csrf, request_of(world.synth), "RT-BLANK", requesting_official=" ")
    assert blank.status_code in (400, 422)
    with request_of(world.synth).open("rb") as handle:
        form = go(client, "POST", "/batches", data={
            **form_values("RT-BLANK"), "requesting_official": " ", "csrf_token": csrf},
            files={"file": ("r.csv", handle, "text/csv")})
    assert form.status_code == 400 and "requesting_official" in form.text
    failing = submit(client, csrf, request_of(world.synth), "RT-FAIL", certified="false")
    assert failing.status_code == 202
    failed = wait_settled(client, "RT-FAIL")
    assert failed["status"] == "failed" and failed["message"]
    page = go(client, "GET", "/batches/RT-FAIL")
    for text in (blank.text, form.text, failed["message"], page.text):
        assert folder not in text and "/tmp" not in text and "uploads" not in text, text
    assert len(ERRORS) > 100
    for response in ERRORS:
        assert folder not in response
        for leak in ("Traceback", "SELECT ", "sqlite3.", "psycopg", 'File "/'):
            assert leak not in response, leak


def failures(folder: Path) -> dict[str, BaseException]:
    """Unexpected errors quoting a TIN, a server path and SQL, as real ones can."""
    import duckdb
    from sqlalchemy.exc import OperationalError

    sql = "SELECT * FROM users WHERE tin = '123-45-6789'"
    return {"runtime": RuntimeError(f"value 123-45-6789 at {folder}"),
            "sql": OperationalError(sql, {"tin": "123-45-6789"}, Exception(f"{folder}/db")),
            "duckdb": duckdb.ConversionException(f"Could not convert '123-45-6789' ({sql})")}


@pytest.mark.parametrize("kind", ["runtime", "sql", "duckdb"])
def test_an_unexpected_error_is_a_500_that_the_server_log_does_not_quote(
        world: World, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    app = world.client.app
    folder = world.settings.files_dir
    error = failures(folder)[kind]

    def boom() -> None:
        raise error

    for path in (f"/api/rt-boom-{kind}", f"/rt-boom-{kind}"):
        app.add_api_route(path, boom,  # type: ignore[attr-defined]
                          dependencies=[Depends(allow(PUBLIC))])
    # raise_server_exceptions: an exception leaving the app is what a server logs with
    # its text and traceback; the app must end it with its own 500.
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=True)
    with caplog.at_level(logging.DEBUG):
        for path in (f"/api/rt-boom-{kind}", f"/rt-boom-{kind}"):
            response = client.get(path)
            assert response.status_code == 500
            assert response.headers["content-security-policy"]
            for leak in ("123-45-6789", str(folder), "SELECT", type(error).__name__):
                assert leak not in response.text, leak
    assert type(error).__name__ in caplog.text and f"/api/rt-boom-{kind}" in caplog.text
    for leak in ("123-45-6789", "SELECT", "Traceback"):
        assert leak not in caplog.text, leak
    with world.db.begin() as conn:
        logged = conn.execute(sa.select(t.access_log.c.status).where(
            t.access_log.c.object == f"/api/rt-boom-{kind}")).scalars().all()
    assert logged == [500]
    client.close()


def explode(*, on_stage: Any) -> None:
    """A job that fails the way a bug does, quoting values (made at run time, as a
    request's are, so the traceback's source lines do not show them)."""
    on_stage("check")
    tin, name = "-".join(("123", "45", "6789")), " ".join(("Dana", "Q.", "Public"))
    raise ValueError(f"could not convert {tin!r} ({name}) to a date")


def test_a_failed_jobs_log_lines_have_its_traceback_but_not_its_text(world: World) -> None:
    from lastknown.service.app import job_queue
    from lastknown.service.jobs.runner import INTERNAL

    queue = job_queue(world.client.app)
    job = queue.submit("release", f"{explode.__module__}:explode", {})
    for _ in range(600):
        found = queue.store.get(job.id)
        if found is not None and found.status == "failed":
            break
        threading.Event().wait(0.1)
    assert found is not None and (found.status, found.message) == ("failed", INTERNAL)
    records = [r for r in world.logs.records if job.id in r.getMessage() and r.exc_info]
    assert len(records) == 1
    text = world.logs.format(records[0])
    assert "Traceback" in text and "explode" in text and "ValueError" in text
    assert "123-45-6789" not in text and "Q. Public" not in text


def test_a_tin_typed_into_a_url_is_neither_echoed_nor_logged(world: World) -> None:
    client = world.client
    login(client, "submitter")
    tin = sorted(world.synth.tins)[0]
    dashed = f"{tin[:3]}-{tin[3:5]}-{tin[5:]}"
    for path in (f"/api/batches/{tin}", f"/batches/{dashed}", f"/api/batches/x{dashed}x"):
        reply = go(client, "GET", path)
        assert reply.status_code == 404, path
        assert tin not in reply.text and dashed not in reply.text, path
    with world.db.begin() as conn:
        logged = [o for (o,) in conn.execute(sa.select(t.access_log.c.object))]
    assert any(o == "/api/batches/***" for o in logged)
    assert [o for o in logged if tin in o or dashed in o] == []
