"""The auditor's pages against a real ledger made by `lastknown process`, and a scan of
every response of this module for the master's TINs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from lastknown.cli import cli
from lastknown.config import load_deployment
from lastknown.disclose.ledger import models, open_ledger
from lastknown.disclose.ledger.anchors import ledger_id
from lastknown.service import db as t
from lastknown.service.db import AppDB, open_app_db
from service_helpers import login, make_client, seed, settings_for

#: Every response body and header this module received, for the TIN scan at the end.
SEEN: list[str] = []


class World:
    def __init__(self, client: TestClient, db: AppDB, data: Path, ledger: str,
                 anchors: Path) -> None:
        self.client, self.db, self.data, self.ledger, self.anchors = (
            client, db, data, ledger, anchors)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        SEEN.append(response.text)
        SEEN.append(repr(response.headers))
        return response


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("auditor")
    config = folder / "lastknown.toml"
    config.write_text('ledger = "ledger.sqlite"\narchive = "archive"\n'
                      'anchors = "anchors.jsonl"\n', encoding="utf-8")
    data = folder / "s"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LASTKNOWN_CONFIG", str(config))
        runner = CliRunner()
        made = runner.invoke(cli, ["synth", "--persons", "500", "--requests", "40",
                                   "--seed", "3", "--out", str(data)])
        assert made.exit_code == 0, made.output
        done = runner.invoke(cli, ["process", str(data / "request.csv"), "--master",
                                   str(data / "master"), "--batch", str(data / "batch.toml"),
                                   "--out", str(folder / "response"), "--today",
                                   "2026-11-01"])
        assert done.exit_code == 0, done.output
    deployment = load_deployment(config)
    settings = settings_for(deployment, str(folder / "app.sqlite"))
    db = open_app_db(settings.app_db)
    seed(db, settings)
    with make_client(settings, db) as client:
        world = World(client, db, data, deployment.ledger, deployment.anchors)
        login(client, "auditor")
        yield world
    db.close()


def disclosed(world: World) -> tuple[str, str]:
    """(TIN, request_row_id) of one row the ledger disclosed."""
    ledger = open_ledger(world.ledger)
    with ledger.connect() as conn:
        row = conn.execute(sa.select(models.disclosures.c.tin,
                                     models.disclosures.c.request_row_id).limit(1)).one()
    ledger.close()
    return str(row[0]), str(row[1])


def test_verify_page_checks_the_chain_and_the_anchor_file(world: World) -> None:
    page = world.call("GET", "/auditor/verify")
    assert page.status_code == 200 and "The ledger verifies." in page.text
    api = world.call("GET", "/api/ledger/verify").json()
    assert api["ok"] is True and api["entries"] > 20 and api["anchors_checked"] == 1
    assert api["anchor_file"] == str(world.anchors)
    ledger = open_ledger(world.ledger)
    with ledger.connect() as conn:
        events = conn.execute(sa.select(models.audit_events.c.user_name,
                                        models.audit_events.c.origin)
                              .where(models.audit_events.c.event_type == "ledger_verified")
                              ).all()
    ledger.close()
    assert [tuple(e) for e in events] == [("auditor", "testclient")] * 2


def test_verify_page_reports_an_anchor_the_ledger_no_longer_holds(world: World) -> None:
    original = world.anchors.read_text(encoding="utf-8")
    ledger = open_ledger(world.ledger)
    forged = {"hash": "0" * 64, "ledger": ledger_id(ledger), "sequence": 1,
              "time": "2026-11-01T00:00:00.000000Z"}
    ledger.close()
    world.anchors.write_text(original + json.dumps(forged) + "\n", encoding="utf-8")
    try:
        page = world.call("GET", "/auditor/verify")
        api = world.call("GET", "/api/ledger/verify").json()
    finally:
        world.anchors.write_text(original, encoding="utf-8")
    assert "does NOT verify" in page.text and "entry #1" in page.text
    assert api["ok"] is False and "differs from the anchor" in api["problem"]


def test_annual_report_page_and_api(world: World) -> None:
    year = datetime.now(UTC).year
    page = world.call("GET", f"/auditor/report?year={year}")
    assert "U.S. Immigration and Customs Enforcement" in page.text
    rows = world.call("GET", "/api/ledger/report", params={"year": year}).json()
    with (world.data / "truth.csv").open(encoding="utf-8") as handle:
        matched = sum(r["expected_outcome"] == "M" for r in csv.DictReader(handle))
    assert [(r["agency"], r["requests"], r["disclosures"]) for r in rows] == [
        ("U.S. Immigration and Customs Enforcement", 1, matched)]
    empty = world.call("GET", "/auditor/report?year=1999")
    assert "No batches or disclosures recorded in 1999" in empty.text


def test_accounting_never_echoes_the_tin(world: World) -> None:
    tin, row_id = disclosed(world)
    csrf = world.client.get("/api/me").json()["csrf_token"]
    page = world.call("POST", "/auditor/accounting",
                      data={"tin": f"{tin[:3]}-{tin[3:5]}-{tin[5:]}", "csrf_token": csrf})
    assert page.status_code == 200 and "1 disclosure(s)" in page.text
    assert row_id in page.text and "2026-S0003" in page.text
    assert tin not in page.text and tin[5:] + "<" not in page.text
    assert page.headers["cache-control"] == "no-store"
    api = world.call("POST", "/api/ledger/accounting", json={"tin": tin},
                     headers={"X-CSRF-Token": csrf})
    assert [(d["batch_id"], d["request_row_id"]) for d in api.json()] == [("2026-S0003", row_id)]
    assert "tin" not in api.json()[0]
    bad = world.call("POST", "/auditor/accounting", data={"tin": "12ab5", "csrf_token": csrf})
    assert bad.status_code == 400 and "9 digits" in bad.text and "12ab5" not in bad.text
    with world.db.begin() as conn:
        logged = conn.execute(sa.select(t.access_log).where(
            t.access_log.c.event_type.in_(["auditor_accounting", "api_ledger_accounting"]))
        ).mappings().all()
    assert [(r["object"], r["detail"], r["success"]) for r in logged] == [
        ("/auditor/accounting", "1 disclosure(s) found", True),
        ("/api/ledger/accounting", "1 disclosure(s) found", True),
        ("/auditor/accounting", "", False)]


def test_no_response_or_log_line_holds_a_tin(world: World) -> None:
    """Visit every page as every staff role, then scan everything this module saw."""
    for who in ("auditor", "admin", "officer", "submitter"):
        login(world.client, who)
        for path in ("/", "/admin/users", "/admin/agencies", "/admin/tokens",
                     "/admin/changes", "/auditor/verify", "/auditor/report",
                     "/auditor/access-log?days=1", "/api/access-log", "/api/me",
                     "/api/admin-changes", "/api/ledger/report?year=2026", "/openapi.json"):
            world.call("GET", path)
    frame = pl.read_parquet(str(world.data / "master" / "*.parquet"), columns=["tin"])
    tins = set(frame["tin"].to_list())
    assert len(tins) > 400
    with world.db.begin() as conn:
        for table in (t.access_log, t.admin_changes, t.users, t.agencies):
            SEEN.append(repr(conn.execute(sa.select(table)).all()))
    text = "\n".join(SEEN)
    assert len(SEEN) > 100 and "2026-S0003" in text
    leaked = sorted(tin for tin in tins if tin in text)
    assert leaked == []
