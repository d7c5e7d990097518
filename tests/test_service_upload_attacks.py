"""Uploads attacked: batch ids with separators or control characters, file names with
``../``, ``\\``, NUL or an absolute path, another agency named in the form, bodies over
the limit (declared or chunked) leaving nothing behind, bodies other than an upload over
1 MiB, and uploads from anonymous or forged callers, which must not be read at all.

The app here runs no worker, so what a submission left on disk is there to be read.
(The other attacks on the service are in test_service_attacks.py.)
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from batch_helpers import call, form_values, request_of, running_app, service_settings
from lastknown.service import accounts
from lastknown.service import db as t
from lastknown.service.db import AppDB
from lastknown.service.jobs.store import jobs
from lastknown.service.settings import ServiceSettings
from service_helpers import AGENCY_A, login
from test_workflow import Synth, make_synth


def submit(client: TestClient, csrf: str, request: Path, batch_id: str) -> Any:
    with request.open("rb") as handle:
        return call(client, "POST", "/api/batches", headers={"X-CSRF-Token": csrf},
                    data=form_values(batch_id), files={"file": ("r.csv", handle, "text/csv")})


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


NoWorker = tuple[TestClient, AppDB, ServiceSettings]


@pytest.fixture
def no_worker(tmp_path: Path, synth: Synth) -> Iterator[NoWorker]:
    """An app, limit 1 MiB, whose submissions stay queued (so what they left is there)."""
    settings = service_settings(tmp_path, synth, upload_limit_mb=1)
    with running_app(settings, lifespan=False) as (client, db):
        yield client, db, settings


def uploads(settings: ServiceSettings) -> list[Path]:
    folder = settings.files_dir / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def job_ids(db: AppDB) -> list[str]:
    with db.begin() as conn:
        return [str(i) for i in conn.execute(sa.select(jobs.c.batch_id)).scalars()]


def test_batch_ids_with_separators_or_control_characters_are_refused(
        no_worker: NoWorker, synth: Synth) -> None:
    client, db, settings = no_worker
    csrf = login(client, "submitter")
    for bad in ("../x", "..", "a/b", "a\\b", "/etc/passwd", "C:x", "a\nb", "a\x00b", ".hidden",
                "%2e%2e", "a b", "a\tb", "x" * 65, "-lead", "a;b", "a\u202eb", ""):
        refused = submit(client, csrf, request_of(synth), bad)
        assert refused.status_code in (400, 422), (repr(bad), refused.status_code)
    assert job_ids(db) == [] and uploads(settings) == []


def multipart(fields: dict[str, Any], filename: bytes, content: bytes,
              boundary: str = "rtboundary") -> bytes:
    """A multipart body built by hand, so a file name can hold any byte."""
    out = io.BytesIO()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                      f'{item}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
              f'filename="'.encode() + filename + b'"\r\nContent-Type: text/csv\r\n\r\n')
    out.write(content + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue()


def test_upload_file_names_cannot_leave_the_upload_folder(
        no_worker: NoWorker, synth: Synth) -> None:
    client, db, settings = no_worker
    csrf = login(client, "submitter")
    content = request_of(synth).read_bytes()
    kept = {b"../../evil.csv": "evil.csv", b"..\\..\\evil.csv": "evil.csv",
            b"/tmp/abs.csv": "abs.csv", b"evil\x00.csv": "evil.csv",
            b"..%2F..%2Fenc.csv": "2F.._2Fenc.csv", b"-.csv": "request.csv"}
    type_ = {"content-type": "multipart/form-data; boundary=rtboundary",
             "X-CSRF-Token": csrf}
    for number, name in enumerate(kept):
        body = multipart({**form_values(f"NAME-{number}"), "requesting_agency": "U.S. "
                          "Marshals Service", "agency": "U.S. Marshals Service"}, name, content)
        sent = call(client, "POST", "/api/batches", content=body, headers=type_)
        assert sent.status_code == 202, (name, sent.text)
        assert sent.json()["agency"] == AGENCY_A
    for name in (b"r.csv\x00.exe", b"r.exe", b"r", b"../../r.csv/..", b".csv"):
        body = multipart(form_values("NAME-X"), name, content)
        refused = call(client, "POST", "/api/batches", content=body, headers=type_)
        assert refused.status_code == 400, name
    root = settings.files_dir / "uploads"
    stored = uploads(settings)
    requests = sorted(p.name for p in stored if p.suffix == ".csv")
    assert all(p.parent.parent == root for p in stored)
    assert requests == sorted(kept.values())
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.csv", n) for n in requests), requests
    assert not any(p.name in ("evil.csv", "abs.csv") for p in settings.files_dir.parent.rglob(
        "*") if root not in p.parents)
    for path in stored:
        if path.name == "batch.json":
            assert f'"requesting_agency": "{AGENCY_A}"' in path.read_text(encoding="utf-8")


def test_oversized_bodies_are_413_declared_or_chunked_and_leave_nothing(
        no_worker: NoWorker, synth: Synth) -> None:
    client, db, settings = no_worker
    csrf = login(client, "submitter")
    big = request_of(synth).read_bytes() + b"x" * (1024 * 1024 + 10)

    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    type_ = {"content-type": "multipart/form-data; boundary=rtboundary"}
    with_header = multipart(form_values("BIG-1"), b"big.csv", big)
    with_field = multipart({**form_values("BIG-2"), "csrf_token": csrf}, b"big.csv", big)
    page_form = multipart({**form_values("BIG-3"), "csrf_token": csrf}, b"big.csv", big)
    answers = [
        call(client, "POST", "/api/batches", content=with_header,
           headers={**type_, "X-CSRF-Token": csrf}),
        call(client, "POST", "/api/batches", content=chunks(with_header),
           headers={**type_, "X-CSRF-Token": csrf}),
        call(client, "POST", "/api/batches", content=chunks(with_field), headers=type_),
        call(client, "POST", "/batches", content=chunks(page_form), headers=type_),
        call(client, "POST", "/batches", content=page_form, headers=type_),
    ]
    assert [a.status_code for a in answers] == [413] * len(answers)
    assert answers[2].json()["error"]["code"] == "too_large"
    assert job_ids(db) == [] and uploads(settings) == []
    with db.begin() as conn:
        logged = conn.execute(sa.select(t.access_log.c.status).where(
            t.access_log.c.object.in_(("/api/batches", "/batches")),
            t.access_log.c.method == "POST")).scalars().all()
    assert logged == [413] * len(answers)


def test_bodies_other_than_an_upload_are_refused_over_one_mib(tmp_path: Path,
                                                              synth: Synth) -> None:
    """The upload limit (200 MiB by default) is for request files; a 95 MiB JSON body
    to the public login took 670 MiB of memory to parse."""
    settings = service_settings(tmp_path, synth)
    assert settings.upload_limit_mb == 200
    with running_app(settings, lifespan=False) as (client, _):
        answers = oversized_forms(client)
    assert [a.status_code for a in answers] == [413] * 4
    assert "request body" in answers[0].json()["error"]["message"]


def oversized_forms(client: TestClient) -> list[Any]:
    """Four bodies of 1.2 MB: JSON and form sign-ins (declared, chunked), a JSON deny."""
    pad = b"0," * (600 * 1024)
    body = b'{"username": "a", "password": "b", "pad": [' + pad + b'0]}'
    json_type = {"content-type": "application/json"}
    chunked = iter([body[:700_000], body[700_000:]])
    answers = [call(client, "POST", "/api/login", content=body, headers=json_type),
               call(client, "POST", "/api/login", content=chunked, headers=json_type),
               call(client, "POST", "/login", content=b"username=a&password=" + pad,
                    headers={"content-type": "application/x-www-form-urlencoded"})]
    csrf = login(client, "officer")
    answers.append(call(client, "POST", "/api/batches/ANY-1/deny", content=body,
                        headers={**json_type, "X-CSRF-Token": csrf}))
    return answers


def raw_post(app: Any, path: str, headers: dict[str, str],
             chunks: list[bytes]) -> tuple[int, int]:
    """POST ``chunks`` to the ASGI app as a server would; (status, chunks it read)."""
    import anyio

    taken, started = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if taken == len(chunks):
            return {"type": "http.disconnect"}
        taken += 1
        return {"type": "http.request", "body": chunks[taken - 1],
                "more_body": taken < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "https", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "client": ("203.0.113.9", 4000),
             "server": ("testserver", 443), "state": {},
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    # In a thread of its own: another test's event loop (Playwright's) may hold this one.
    runner = threading.Thread(target=anyio.run, args=(app, scope, receive, send))
    runner.start()
    runner.join()
    return started[0], taken


def test_an_upload_is_not_read_before_its_caller_is_known(no_worker: NoWorker) -> None:
    """FastAPI parses a multipart body before the access rule runs: an anonymous caller
    (or a forged cookie, or a bad token) made it read the whole upload first."""
    body = multipart(form_values("ANON-1", statutes=["18 U.S.C. 1073"]), b"r.csv",
                     b"x" * (12 * 65536))  # another agency's statute: never queued
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    type_ = {"content-type": "multipart/form-data; boundary=rtboundary"}
    client, db, _ = no_worker
    for path in ("/api/batches", "/batches"):
        for credential in ({}, {"cookie": "__Host-lk_session=forged"},
                           {"authorization": "Bearer lk_forged"}):
            status, taken = raw_post(client.app, path, {**type_, **credential}, chunks)
            assert status == 401 and taken <= 1, (path, credential, status, taken)
    token, _ = accounts.create_token(db, "admin", username="submitter", label="probe")
    bearer = {"Authorization": f"Bearer {token}"}
    status, taken = raw_post(client.app, "/api/batches",
                             {**type_, "authorization": bearer["Authorization"]}, chunks)
    assert taken == len(chunks) and status == 400  # read, then refused for the statute
