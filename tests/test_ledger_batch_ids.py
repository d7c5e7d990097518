"""Batch ids are one batch regardless of case, in the database too (migration 0002),
and a ledger written at 0001 upgrades and keeps verifying."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import Ledger, open_ledger
from lastknown.disclose.ledger.store import migrate
from lastknown.errors import LedgerError
from test_ledger_fixtures import (
    BACKENDS,
    PG_URL,
    ledger_at,
    pg_schemas,
    search_path,
    synthetic_tin,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _batch(batch_id: str) -> dict[str, Any]:
    return {"batch_id": batch_id, "agency": "Agency A", "requesting_official": "Dana Example",
            "official_title": "Special Agent", "certified": True, "certification": "yes",
            "statutes": ["8 U.S.C. 1253(a)(1)"], "reason": "locate", "source_file": "r.csv",
            "source_sha256": "0" * 64, "rows_total": 1, "rows_valid": 1, "rows_rejected": 0,
            "rows_disclosed": 1, "rows_unmatched": 0, "rejections_by_reason": {}, "policy": {},
            "received_at": T0, "finished_at": T0, "operator": "tester", "origin": "host",
            "package": "out"}


def _disclosure(batch_id: str) -> dict[str, Any]:
    return {"batch_id": batch_id, "request_row_id": "R1", "tin": synthetic_tin(1),
            "fields": ["street"], "address_tax_year": 2024, "address_sha256": "0" * 64,
            "legal_authority": "26 U.S.C. 6103(i)(2)", "request_statute": None,
            "recipient": "Agency A", "disclosed_at": T0}


def _record(ledger: Ledger, batch_id: str) -> None:
    with ledger.transaction() as tx:
        tx.add("batch", _batch(batch_id))
        tx.add("disclosure", _disclosure(batch_id))


def _batch_ids(ledger: Ledger) -> list[str]:
    with ledger.connect() as conn:
        return list(conn.execute(sa.text("SELECT batch_id FROM ledger_batches "
                                         "ORDER BY entry_seq")).scalars())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("second", ["b-1", "B-1", " b-1 "])
def test_the_database_refuses_a_second_batch_id_differing_only_in_case(
        backend: str, second: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        _record(ledger, "B-1")
        head = ledger.head()
        with pytest.raises(LedgerError, match="could not append"):
            _record(ledger, second)
        assert ledger.head() == head  # nothing of the refused batch was kept
        assert _batch_ids(ledger) == ["B-1"]
        _record(ledger, "B-2")  # a different id still goes in
        assert _batch_ids(ledger) == ["B-1", "B-2"]
        assert ledger.verify(record=False).entries == 4


@contextmanager
def ledger_at_0001(backend: str, tmp_path: Path) -> Iterator[tuple[str | Path, dict[str, Any]]]:
    """A ledger as lastknown wrote it before 0002: yields what open_ledger needs to reopen it."""
    if backend == "sqlite":
        tmp_path.mkdir(exist_ok=True)
        path = tmp_path / "old.sqlite"
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            migrate(engine, "0001_ledger")
        finally:
            engine.dispose()
        yield path, {}
        return
    with pg_schemas() as (schema,):
        args = search_path(schema)
        engine = sa.create_engine(PG_URL, connect_args=args)
        try:
            migrate(engine, "0001_ledger")
            engine.dispose()
            yield PG_URL, args
        finally:
            engine.dispose()


def _old_ledger(target: str | Path, args: dict[str, Any]) -> Ledger:
    """The 0001 ledger, opened without migrating it."""
    url = f"sqlite:///{target}" if isinstance(target, Path) else target
    return Ledger(sa.create_engine(url, connect_args=args))


def _revision(ledger: Ledger) -> str:
    with ledger.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_ledger_written_at_0001_upgrades_keeps_verifying_and_gains_the_rule(
        backend: str, tmp_path: Path) -> None:
    with ledger_at_0001(backend, tmp_path) as (target, args):
        old = _old_ledger(target, args)
        try:
            assert _revision(old) == "0001_ledger"
            _record(old, "B-1")
            _record(old, "b-1")  # 0001 compared batch ids exactly: the database let this in
            assert _batch_ids(old) == ["B-1", "b-1"]
        finally:
            old.close()
        with pytest.raises(LedgerError, match="differ only in case.*'b-1'"):
            open_ledger(target, connect_args=args)

    with ledger_at_0001(backend, tmp_path / "clean") as (target, args):
        old = _old_ledger(target, args)
        try:
            _record(old, "B-1")
            old.audit(event_type="report_run", success=True, obj="report")
            head = old.head()
        finally:
            old.close()
        upgraded = open_ledger(target, connect_args=args)
        try:
            assert _revision(upgraded) == "0002_batch_id_nocase"
            report = upgraded.verify(record=False, anchors={head.seq: head.hash})
            assert (report.entries, report.head_seq) == (3, head.seq)
            with pytest.raises(LedgerError, match="could not append"):
                _record(upgraded, "b-1")
            _record(upgraded, "B-2")
            assert upgraded.verify(record=False).entries == 5
        finally:
            upgraded.close()
