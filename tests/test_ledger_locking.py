"""Locking: writers serialise and re-check the caps under the lock; readers never wait."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import Ledger
from lastknown.disclose.ledger.models import audit_events, batches, disclosures
from lastknown.disclose.policy import Policy
from lastknown.disclose.publish import publish, staging_dir_for
from lastknown.errors import PolicyError
from test_ledger_fixtures import (
    BACKENDS,
    FakeBatch,
    decision_for,
    engine_with_results,
    ledger_at,
    publish_kwargs,
    synthetic_tin,
)

SEVEN_ROWS = dict(matched=[synthetic_tin(i) for i in range(5)], unmatched=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reader_gets_the_head_at_once_while_a_writer_holds_the_lock(
        backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger, ThreadPoolExecutor(1) as pool:
        before = ledger.audit(event_type="report_run", success=True, obj="report 2026")
        with ledger.transaction() as tx:
            tx.audit(event_type="report_run", success=True, obj="report 2027")
            started = time.monotonic()
            head = pool.submit(ledger.head).result(timeout=10)
            waited = time.monotonic() - started
        assert head == before  # the last committed head, not the writer's
        assert waited < 2.0
        assert ledger.head().seq == before.seq + 1


def test_a_sqlite_ledger_runs_in_wal_mode(tmp_path: Path) -> None:
    with ledger_at("sqlite", tmp_path) as ledger, ledger.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def _counts(ledger: Ledger) -> dict[str, int]:
    with ledger.connect() as conn:
        rows = conn.execute(sa.select(disclosures.c.batch_id, sa.func.count())
                            .group_by(disclosures.c.batch_id)).all()
    return {str(b): int(n) for b, n in rows}


def _rejections(ledger: Ledger) -> list[str]:
    with ledger.connect() as conn:
        return [str(d) for d in conn.execute(
            sa.select(audit_events.c.detail).where(audit_events.c.event_type == "batch_rejected")
            .order_by(audit_events.c.entry_seq)).scalars()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_official_cap_is_rechecked_at_commit(backend: str, tmp_path: Path) -> None:
    policy = Policy(max_rows_per_official_per_period=12)
    with ledger_at(backend, tmp_path) as ledger:
        runs = []
        for batch_id in ("B-1", "B-2"):  # both pass the early check: nothing committed yet
            approved = {"overrides": {"reason": "cap under test", "approved_by": "Counsel",
                                      "policy": {"max_rows_per_official_per_period": 12}}}
            batch = FakeBatch(batch_id=batch_id)
            engine = engine_with_results(**SEVEN_ROWS)
            kwargs = publish_kwargs(ledger, engine, batch, tmp_path / batch_id)
            decision = decision_for(ledger, FakeBatch(batch_id=batch_id, extra=approved), 7,
                                    policy)
            runs.append({**kwargs, "policy_decision": decision})
        publish(**runs[0])
        with pytest.raises(PolicyError, match="now has 7 rows .* over "
                                              "max_rows_per_official_per_period = 12"):
            publish(**runs[1])
        assert _counts(ledger) == {"B-1": 5}
        assert not (tmp_path / "B-2").exists() and not staging_dir_for(tmp_path / "B-2").exists()
        assert _rejections(ledger)[-1].startswith("at commit: the certifying official now has 7")
        assert ledger.verify(record=False).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_id_is_answered_once_whatever_its_case(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        runs = []
        # two archives (publish_kwargs puts one beside each --out): the archive's own
        # refusal of a batch it holds is not what is tested here, the ledger's at commit is
        for batch_id, out in (("B-1", "r1"), ("b-1", "other/r2")):
            batch, engine = FakeBatch(batch_id=batch_id), engine_with_results(**SEVEN_ROWS)
            runs.append(publish_kwargs(ledger, engine, batch, tmp_path / out))
        publish(**runs[0])
        with pytest.raises(PolicyError, match="'b-1' was recorded in the ledger by another run"):
            publish(**runs[1])
        with ledger.connect() as conn:
            assert conn.execute(sa.select(batches.c.batch_id)).scalars().all() == ["B-1"]
        assert not (tmp_path / "other" / "r2").exists()
