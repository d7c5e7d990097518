"""Shared helpers for the ledger, policy and publish tests (plus checks of the helpers).

Every ledger test runs on SQLite and on PostgreSQL (127.0.0.1:5432, database
``test``, a fresh schema per ledger, dropped afterwards). PostgreSQL tests are
skipped, with the reason, only when the server is unreachable.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import Ledger, open_ledger
from lastknown.disclose.policy import Policy, PolicyDecision, check_policy
from lastknown.engines import DuckDBEngine

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
AGENCY = "U.S. Immigration and Customs Enforcement"


@cache
def pg_problem() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL at 127.0.0.1:5432/test unreachable: {type(exc).__name__}"
    return None


@contextmanager
def pg_schemas(prefix: str = "lk_test", count: int = 1) -> Iterator[list[str]]:
    """``count`` fresh schemas of PostgreSQL's db ``test``, dropped afterwards (skips, with
    the reason, only when the server is unreachable)."""
    if problem := pg_problem():
        pytest.skip(problem)
    schemas = [f"{prefix}_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schemas
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def search_path(schema: str) -> dict[str, str]:
    """``connect_args`` putting a connection in ``schema``."""
    return {"options": f"-csearch_path={schema}"}


@contextmanager
def ledger_at(backend: str, tmp_path: Path) -> Iterator[Ledger]:
    """A fresh, migrated ledger on ``backend``; PostgreSQL gets its own schema."""
    if backend == "sqlite":
        ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
        try:
            yield ledger
        finally:
            ledger.close()
        return
    with pg_schemas() as (schema,):
        ledger = open_ledger(PG_URL, create=True, connect_args=search_path(schema))
        try:
            yield ledger
        finally:
            ledger.close()


def tamper(ledger: Ledger, *statements: str) -> None:
    """Run SQL as an attacker with DBA rights: append-only triggers and FKs switched off."""
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.connect() as conn:
            conn.exec_driver_sql("SET session_replication_role = replica")
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.commit()
        return
    raw = ledger.engine.raw_connection()  # autocommit (isolation_level None), no BEGIN hook
    try:
        raw.execute("PRAGMA foreign_keys = OFF")
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in names:
            raw.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            raw.execute(statement)
    finally:
        raw.close()


@dataclass(frozen=True, kw_only=True)
class FakeBatch:
    batch_id: str = "B-1"
    requesting_agency: str = AGENCY
    requesting_official: str = "Dana Example"
    official_title: str = "Special Agent in Charge"
    reason: str = "Locate subjects of final orders of removal."
    authorised_statutes: tuple[str, ...] = ("8 U.S.C. 1253(a)(1)",)
    certified: bool = True
    certification: str = "Each row is the subject of an investigation."
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FakeIntake:
    row_count: int
    sha256: str = "ab" * 32


@dataclass(frozen=True, kw_only=True)
class FakeValidation:
    valid_count: int
    rejected_count: int


def synthetic_tin(i: int) -> str:
    return f"9{i:08d}"


def engine_with_results(*, matched: list[str], unmatched: int = 2,
                        rejected: tuple[str, ...] = ()) -> DuckDBEngine:
    """A DuckDB engine holding match_result / request_valid / request_rejected tables.

    ``matched`` lists the (synthetic) TINs of the M rows; row ids are R<source_row>.
    """
    engine = DuckDBEngine()
    rows: list[dict[str, Any]] = []
    for i, tin in enumerate(matched):
        rows.append({"source_row": i + 2, "request_row_id": f"R{i + 2}", "outcome": "M",
                     "match_probability": 0.999, "tin": tin, "address_tax_year": 2024,
                     "street": f"{100 + i} Main St", "unit": None, "city": "Springfield",
                     "state": "IL", "zip": "62701", "detail": None})
    for j in range(unmatched):
        n = len(matched) + j + 2
        rows.append({"source_row": n, "request_row_id": f"R{n}", "outcome": "N",
                     "match_probability": None, "tin": None, "address_tax_year": None,
                     "street": None, "unit": None, "city": None, "state": None, "zip": None,
                     "detail": "no candidate"})
    schema = pa.schema([("source_row", pa.int64()), ("request_row_id", pa.string()),
                        ("outcome", pa.string()), ("match_probability", pa.float64()),
                        ("tin", pa.string()), ("address_tax_year", pa.int32()),
                        *((c, pa.string()) for c in ("street", "unit", "city", "state", "zip",
                                                     "detail"))])
    engine.register_arrow("match_result_src", pa.Table.from_pylist(rows, schema=schema))
    engine.execute("CREATE TABLE match_result AS SELECT * FROM match_result_src")
    engine.execute("CREATE TABLE request_valid AS SELECT source_row, request_row_id, "
                   "'8 U.S.C. 1253(A)(1)' AS statute FROM match_result")
    engine.execute("CREATE TABLE request_rejected (source_row BIGINT, request_row_id VARCHAR, "
                   "reason_codes VARCHAR, detail VARCHAR)")
    for k, codes in enumerate(rejected):
        engine.execute("INSERT INTO request_rejected VALUES (?, ?, ?, 'x')",
                       [1000 + k, f"X{k}", codes])
    return engine


def fake_write_package(engine: DuckDBEngine) -> Callable[[Path, dict[str, Any]], dict[str, Any]]:
    """A stand-in for disclose.package.write_package: matched.csv, and the summary returned."""
    def write(folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
        rows = engine.fetchall("SELECT request_row_id, street, city, state, zip, "
                               "address_tax_year FROM match_result WHERE outcome = 'M' "
                               "ORDER BY source_row")
        with (folder / "matched.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["request_row_id", "street", "city", "state", "zip",
                             "address_tax_year"])
            writer.writerows(rows)
        total = engine.count("match_result")
        return {**summary, "rows_total": total, "rows_matched": len(rows),
                "rows_unmatched": total - len(rows), "rows_rejected": 0}
    return write


def decision_for(ledger: Ledger, batch: FakeBatch, rows: int,
                 policy: Policy | None = None) -> PolicyDecision:
    return check_policy(policy or Policy(), batch, row_count=rows, ledger=ledger)


def publish_kwargs(ledger: Ledger, engine: DuckDBEngine, batch: FakeBatch,
                   out: Path) -> dict[str, Any]:
    from datetime import UTC, datetime

    total = engine.count("match_result")
    return dict(ledger=ledger, batch=batch, engine=engine, final_dir=out,
                summary={"batch_id": batch.batch_id, "request_file": "request.csv"},
                write_package=fake_write_package(engine), intake=FakeIntake(row_count=total),
                validation=FakeValidation(valid_count=total, rejected_count=0),
                policy_decision=decision_for(ledger, batch, total), operator="tester",
                received_at=datetime.now(UTC), archive=out.parent / "archive")


# -- checks of the helpers themselves -------------------------------------------------


def test_engine_with_results_has_the_match_result_contract() -> None:
    engine = engine_with_results(matched=[synthetic_tin(1), synthetic_tin(2)], unmatched=3)
    assert engine.count("match_result") == 5
    assert engine.fetchall("SELECT count(*) FROM match_result WHERE outcome = 'M'")[0][0] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_gives_an_empty_ledger(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        assert ledger.head().seq == 0
        assert ledger.engine.dialect.name == ("sqlite" if backend == "sqlite" else "postgresql")
