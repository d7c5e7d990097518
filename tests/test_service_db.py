"""The app database on SQLite and PostgreSQL: the migration makes the tables db.py
describes, and the service's core flow works on both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.service import db as t
from lastknown.service.db import AppDB, open_app_db
from service_helpers import PASSWORD, deployment_in, login, make_client, seed, settings_for
from test_ledger_fixtures import PG_URL, pg_schemas, search_path

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@contextmanager
def app_db_at(backend: str, tmp_path: Path) -> Iterator[tuple[AppDB, str]]:
    """A fresh app database; PostgreSQL gets its own schema, dropped afterwards."""
    if backend == "sqlite":
        url = str(tmp_path / "app.sqlite")
        db = open_app_db(url)
        try:
            yield db, url
        finally:
            db.close()
        return
    with pg_schemas("lk_app") as (schema,):
        db = open_app_db(PG_URL, connect_args=search_path(schema))
        try:
            yield db, PG_URL
        finally:
            db.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_makes_the_tables_db_py_describes(backend: str, tmp_path: Path) -> None:
    with app_db_at(backend, tmp_path) as (db, _):
        inspector = sa.inspect(db.engine)
        for table in t.metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert sorted(columns) == sorted(table.c.keys()), table.name
            for column in table.c:
                assert columns[column.name]["nullable"] == column.nullable, (
                    table.name, column.name)
        with db.begin() as conn:  # opening again is a no-op upgrade
            version = conn.execute(sa.text(f"SELECT version_num FROM {t.VERSION_TABLE}")
                                   ).scalar_one()
        assert version == "0001_app"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_core_flow_on_each_database(backend: str, tmp_path: Path) -> None:
    with app_db_at(backend, tmp_path) as (db, url):
        settings = settings_for(deployment_in(tmp_path), url)
        seed(db, settings)
        with make_client(settings, db) as client:
            admin = {"X-CSRF-Token": login(client, "admin")}
            made = client.post("/api/users", json={"username": "Lee", "role": "submitter",
                                                   "agency": "U.S. Marshals Service",
                                                   "password": PASSWORD}, headers=admin)
            assert made.status_code == 201 and made.json()["username"] == "lee"
            twice = client.post("/api/users", json={"username": "LEE", "role": "officer",
                                                    "password": PASSWORD}, headers=admin)
            assert twice.status_code == 409
            token = client.post("/api/tokens", json={"username": "lee"}, headers=admin)
            client.cookies.clear()
            me = client.get("/api/me",
                            headers={"Authorization": f"Bearer {token.json()['token']}"})
            assert me.json()["agency"] == "U.S. Marshals Service"
            login(client, "auditor")
            log = client.get("/api/access-log", params={"username": "admin"}).json()
            assert [r["event_type"] for r in log][-3:] == ["api_user_create", "api_me", "login"]
        with db.begin() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.admin_changes)
                                ).scalar_one() == 2 + 5 + 2  # seed agencies, users; lee, token
