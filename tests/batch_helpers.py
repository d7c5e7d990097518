"""Shared helpers of the batch-page tests: a synthetic master, an app answering it, and
the submitter's and officer's steps done as a browser or an agency system does them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from lastknown.service.db import AppDB, open_app_db
from lastknown.service.settings import ServiceSettings
from service_helpers import deployment_in, login, make_client, seed, settings_for
from test_workflow import Synth  # the workflow tests' synthetic world (500 people)

STATUTE = "8 U.S.C. 1253(a)(1)"
#: Every response body and header the batch tests received, for the TIN scan.
SEEN: list[str] = []


def request_of(synth: Synth) -> Path:
    """The synthetic request file (40 rows)."""
    return synth.folder / "request.csv"


def service_settings(folder: Path, synth: Synth, app_db: str | None = None,
                     **changes: Any) -> ServiceSettings:
    settings = settings_for(deployment_in(folder), app_db or str(folder / "app.sqlite"))
    return settings.with_(master=synth.index, **changes)


@contextmanager
def running_app(settings: ServiceSettings, db: AppDB | None = None, *,
                lifespan: bool = True) -> Iterator[tuple[TestClient, AppDB]]:
    """The app with seeded users; with ``lifespan``, its embedded worker runs jobs."""
    db = db or open_app_db(settings.app_db)
    seed(db, settings)
    client = make_client(settings, db)
    try:
        if lifespan:
            with client:
                yield client, db
        else:
            yield client, db
    finally:
        db.close()


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """A request whose reply is kept for the TIN scan."""
    response = client.request(method, path, **kwargs)
    SEEN.append(response.text if "zip" not in response.headers.get("content-type", "")
                else "")
    SEEN.append(repr(response.headers))
    return response


def form_values(batch_id: str, **changes: Any) -> dict[str, Any]:
    values = {"batch_id": batch_id, "requesting_official": "Dana Example",
              "official_title": "Special Agent in Charge",
              "reason": "Locate subjects of final orders of removal.",
              "statutes": [STATUTE], "certified": "true",
              "certification": "Each row is the subject of an investigation in which the "
                               "named officers are personally and directly engaged."}
    return {**values, **changes}


def submit_api(client: TestClient, csrf: str, request: Path, batch_id: str,
               **changes: Any) -> Any:
    """``POST /api/batches`` as a signed-in submitter (CSRF header)."""
    with request.open("rb") as handle:
        return call(client, "POST", "/api/batches", headers={"X-CSRF-Token": csrf},
                    data=form_values(batch_id, **changes),
                    files={"file": (request.name, handle, "text/csv")})


def submit_page(client: TestClient, csrf: str, request: Path, batch_id: str) -> Any:
    """The submit form, as a browser posts it."""
    with request.open("rb") as handle:
        return call(client, "POST", "/batches",
                    data={**form_values(batch_id), "csrf_token": csrf},
                    files={"file": (request.name, handle, "text/csv")})


def wait_settled(client: TestClient, batch_id: str, seconds: float = 300) -> dict[str, Any]:
    """Poll the status endpoint until the batch is no longer queued or preparing."""
    deadline = time.monotonic() + seconds
    while True:
        shown: dict[str, Any] = call(client, "GET", f"/api/batches/{batch_id}").json()
        if shown["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def held_batch(client: TestClient, synth: Synth, batch_id: str,
               submitter: str = "submitter") -> dict[str, Any]:
    """Submit as ``submitter`` and wait until the batch is held."""
    csrf = login(client, submitter)
    assert submit_api(client, csrf, request_of(synth), batch_id).status_code == 202
    shown = wait_settled(client, batch_id)
    assert shown["status"] == "held", shown
    return shown
