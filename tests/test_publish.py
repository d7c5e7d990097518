"""Publishing: ledger and package never disagree, whatever step the process dies at."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import child_env
from lastknown.disclose.ledger import Ledger, open_ledger
from lastknown.disclose.ledger.models import batches, disclosures
from lastknown.disclose.publish import STEPS, publish, recover, staging_dir_for
from lastknown.disclose.record import read_record, record_dir_for
from lastknown.errors import PipelineError
from test_ledger_fixtures import (
    AGENCY,
    BACKENDS,
    FakeBatch,
    engine_with_results,
    ledger_at,
    publish_kwargs,
    synthetic_tin,
)

MATCHED = [synthetic_tin(i) for i in range(7)]
COMMITTED_FROM = STEPS.index("committed")


class Killed(Exception):
    """Stands in for the process dying at a checkpoint."""


def _disclosure_count(ledger: Ledger, batch_id: str) -> int:
    with ledger.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(disclosures)
                                .where(disclosures.c.batch_id == batch_id)).scalar_one())


def receipt_head(out: Path) -> dict[str, object]:
    """The ledger head the package's receipt.json carries."""
    head = json.loads((out / "receipt.json").read_text(encoding="utf-8"))["ledger_head"]
    assert isinstance(head, dict)
    return head


def assert_consistent(ledger: Ledger, out: Path, batch_id: str = "B-1") -> bool:
    """After recovery: the batch is in the ledger exactly when its package is published,
    and its internal record is in the archive exactly then too (and never half-written)."""
    recover(ledger=ledger, final_dir=out)
    assert not staging_dir_for(out).exists()
    archive = out.parent / "archive"
    assert not list(archive.glob(".*.staging"))  # no record left half-way
    record = record_dir_for(archive, batch_id)
    recorded = ledger.batch_recorded(batch_id)
    assert recorded == out.is_dir() == record.is_dir()
    if recorded:
        head = receipt_head(out)
        assert ledger.entry_hash(int(str(head["sequence"]))) == head["hash"]
        assert read_record(record)["ledger_head"] == head
        assert sorted(p.name for p in out.iterdir()) == ["matched.csv", "receipt.json"]
        with (out / "matched.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == _disclosure_count(ledger, batch_id)
    else:
        assert _disclosure_count(ledger, batch_id) == 0
    ledger.verify(record=False)
    return recorded


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_records_every_disclosure_and_anchors_the_summary(backend: str,
                                                                  tmp_path: Path) -> None:
    engine = engine_with_results(matched=MATCHED, unmatched=3,
                                 rejected=("MISSING_NAME;INVALID_ZIP", "INVALID_ZIP"))
    with ledger_at(backend, tmp_path) as ledger:
        out = tmp_path / "response"
        done = publish(**publish_kwargs(ledger, engine, FakeBatch(), out))
        assert out.is_dir() and not done.recovered
        assert receipt_head(out) == {"sequence": done.head.seq, "hash": ledger.head().hash}
        assert done.head.hash == ledger.head().hash
        assert _disclosure_count(ledger, "B-1") == len(MATCHED)
        with ledger.connect() as conn:
            row = conn.execute(sa.select(batches)).one()
        assert (row.rows_disclosed, row.rows_unmatched) == (len(MATCHED), 3)
        assert json.loads(row.rejections_by_reason) == {"INVALID_ZIP": 2, "MISSING_NAME": 1}
        assert ledger.verify(anchors={done.head.seq: done.head.hash}, record=False).ok
        assert assert_consistent(ledger, out)


def _disclosed_rows(ledger: Ledger) -> list[tuple[object, ...]]:
    with ledger.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            disclosures.c.entry_seq, disclosures.c.request_row_id, disclosures.c.tin,
            disclosures.c.address_sha256, disclosures.c.request_statute,
        ).order_by(disclosures.c.entry_seq))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ahead", [1, 3, 7])
def test_entries_beyond_those_prepared_ahead_are_appended_in_order_under_the_lock(
        backend: str, ahead: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A national batch's disclosures are not all held in memory before the write lock
    (PREPARED_DISCLOSURES): the rest are appended under it, the same entries in the same
    order as when all are prepared ahead."""
    rows = {}
    for label, limit in (("all", 10_000), ("some", ahead)):
        monkeypatch.setattr("lastknown.disclose.publish.PREPARED_DISCLOSURES", limit)
        engine = engine_with_results(matched=MATCHED, unmatched=2)
        # source_row reversed: the entries follow it, not the table's order
        engine.execute("UPDATE match_result SET source_row = 1000 - source_row")
        engine.execute("UPDATE request_valid SET source_row = 1000 - source_row")
        (tmp_path / label).mkdir()
        with ledger_at(backend, tmp_path / label) as ledger:
            publish(**publish_kwargs(ledger, engine, FakeBatch(), tmp_path / label / "out"))
            rows[label] = _disclosed_rows(ledger)
            assert ledger.verify(record=False).ok
    assert len(rows["some"]) == len(MATCHED)
    assert rows["some"] == rows["all"]
    assert [r[1] for r in rows["some"]] == [f"R{i + 2}" for i in reversed(range(len(MATCHED)))]
    assert {r[4] for r in rows["some"]} == {"8 U.S.C. 1253(A)(1)"}  # joined on source_row


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_person_disclosed_recently_to_the_agency_is_flagged(backend: str,
                                                              tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        first = engine_with_results(matched=MATCHED[:3])
        publish(**publish_kwargs(ledger, first, FakeBatch(), tmp_path / "r1"))
        second = engine_with_results(matched=[MATCHED[5], MATCHED[1]])
        done = publish(**publish_kwargs(ledger, second, FakeBatch(batch_id="B-2"),
                                        tmp_path / "r2"))
        flagged = done.summary["recently_disclosed"]
        assert flagged["rows"] == 1
        assert flagged["request_row_ids"] == ["R3"]  # second row of batch 2 is MATCHED[1]
        assert MATCHED[1] not in json.dumps(done.summary)  # ids only, never TINs


@pytest.mark.parametrize("backend", BACKENDS)
def test_recent_tins_read_a_chunk_at_a_time_flag_the_same_rows(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's recent TINs reach the engine in chunks (here one TIN each): every
    chunk counts, and a TIN disclosed twice before is flagged once."""
    monkeypatch.setattr("lastknown.disclose.publish.RECENT_TINS_CHUNK", 1)
    with ledger_at(backend, tmp_path) as ledger:
        publish(**publish_kwargs(ledger, engine_with_results(matched=MATCHED[:3]), FakeBatch(),
                                 tmp_path / "r1"))
        publish(**publish_kwargs(ledger, engine_with_results(matched=MATCHED[1:2]),
                                 FakeBatch(batch_id="B-2"), tmp_path / "r2"))
        done = publish(**publish_kwargs(
            ledger, engine_with_results(matched=[MATCHED[5], MATCHED[2], MATCHED[4], MATCHED[1]]),
            FakeBatch(batch_id="B-3"), tmp_path / "r3"))
        flagged = done.summary["recently_disclosed"]
        assert flagged["rows"] == 2
        assert flagged["request_row_ids"] == ["R3", "R5"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_agency_spelt_with_other_case_and_spacing_is_the_same_recipient(
        backend: str, tmp_path: Path) -> None:
    """Recent disclosures compare agencies as the policy does (agency_key), not by lower()."""
    with ledger_at(backend, tmp_path) as ledger:
        publish(**publish_kwargs(ledger, engine_with_results(matched=MATCHED[:3]), FakeBatch(),
                                 tmp_path / "r1"))
        respelt = " " + AGENCY.upper().replace(" ", "  ") + " "
        done = publish(**publish_kwargs(
            ledger, engine_with_results(matched=[MATCHED[1]]),
            FakeBatch(batch_id="B-2", requesting_agency=respelt), tmp_path / "r2"))
        assert done.summary["recently_disclosed"]["request_row_ids"] == ["R2"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_ledger_and_package_consistent(
        backend: str, step: str, tmp_path: Path) -> None:
    engine = engine_with_results(matched=MATCHED)
    with ledger_at(backend, tmp_path) as ledger:
        out = tmp_path / "response"

        def fail(name: str) -> None:
            if name == step:
                raise Killed(name)

        with pytest.raises(Killed):
            publish(**publish_kwargs(ledger, engine, FakeBatch(), out), checkpoint=fail)
        assert assert_consistent(ledger, out) == (STEPS.index(step) >= COMMITTED_FROM)


def test_a_failing_package_writer_records_nothing(tmp_path: Path) -> None:
    engine = engine_with_results(matched=MATCHED)
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    kwargs = publish_kwargs(ledger, engine, FakeBatch(), tmp_path / "response")

    def broken(folder: Path, summary: dict[str, object]) -> dict[str, object]:
        raise OSError("disk full")

    head = ledger.head()
    with pytest.raises(OSError):
        publish(**{**kwargs, "write_package": broken})
    assert ledger.head() == head
    assert assert_consistent(ledger, tmp_path / "response") is False


_KILL_SCRIPT = """
import os
from pathlib import Path
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.publish import publish
from test_ledger_fixtures import FakeBatch, engine_with_results, publish_kwargs, synthetic_tin

def die(name):
    if name == {step!r}:
        os._exit(17)

ledger = open_ledger(Path({ledger!r}), create=True)
engine = engine_with_results(matched=[synthetic_tin(i) for i in range(7)])
publish(**publish_kwargs(ledger, engine, FakeBatch(), Path({out!r})), checkpoint=die)
"""


@pytest.mark.parametrize("step", STEPS[:-1])
def test_a_process_killed_at_any_step_is_recovered_consistently(step: str,
                                                                  tmp_path: Path) -> None:
    ledger_path, out = tmp_path / "ledger.sqlite", tmp_path / "response"
    script = _KILL_SCRIPT.format(step=step,
                                 ledger=str(ledger_path), out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=child_env(),
                          timeout=120, check=False)
    assert done.returncode == 17, done.stderr[-2000:]
    ledger = open_ledger(ledger_path, create=True)
    was_committed = STEPS.index(step) >= COMMITTED_FROM
    assert staging_dir_for(out).exists() == (step != "start")  # killed: nothing cleaned up
    assert assert_consistent(ledger, out) == was_committed
    if not was_committed:  # the batch can simply run again
        engine = engine_with_results(matched=MATCHED)
        publish(**publish_kwargs(ledger, engine, FakeBatch(), out))
        assert assert_consistent(ledger, out)


def test_publishing_again_after_a_crash_finishes_the_committed_package(tmp_path: Path) -> None:
    engine = engine_with_results(matched=MATCHED)
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out = tmp_path / "response"
    kwargs = publish_kwargs(ledger, engine, FakeBatch(), out)

    def fail(name: str) -> None:
        if name == "committed":
            raise Killed(name)

    with pytest.raises(Killed):
        publish(**kwargs, checkpoint=fail)
    again = publish(**kwargs)
    assert again.recovered and out.is_dir()
    assert _disclosure_count(ledger, "B-1") == len(MATCHED)  # nothing recorded twice


class FakePending:
    """A package whose last file is still being written (publish finishes or cancels it)."""

    def __init__(self, write: Callable[[], dict[str, object]], *, fails: bool = False) -> None:
        self.write, self.fails = write, fails
        self.events: list[str] = []

    def finish_summary(self) -> dict[str, object]:
        self.events.append("finish")
        if self.fails:
            raise PipelineError("matched.xlsx: the spreadsheet writer failed")
        return self.write()

    def cancel(self) -> None:
        self.events.append("cancel")


def _pending_kwargs(ledger: Ledger, out: Path, pendings: list[FakePending],
                    fails: bool = False) -> dict[str, object]:
    engine = engine_with_results(matched=MATCHED)
    kwargs = publish_kwargs(ledger, engine, FakeBatch(), out)
    writer = kwargs["write_package"]

    def stage(folder: Path, summary: dict[str, object]) -> FakePending:
        pendings.append(FakePending(lambda: writer(folder, summary), fails=fails))
        return pendings[-1]
    return {**kwargs, "write_package": stage}


@pytest.mark.parametrize("step", STEPS)
def test_a_package_still_being_written_is_finished_before_commit_or_cancelled(
        step: str, tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out, pendings = tmp_path / "response", []
    kwargs = _pending_kwargs(ledger, out, pendings)

    def fail(name: str) -> None:
        if name == step:
            raise Killed(name)

    with pytest.raises(Killed):
        publish(**kwargs, checkpoint=fail)
    at = STEPS.index(step)
    expected = ([] if step == "start" else  # not staged yet
                ["finish", "cancel"] if at < COMMITTED_FROM else  # finished, then rolled back
                ["finish"])  # failed after the commit: the package is complete
    assert [p.events for p in pendings] == ([] if step == "start" else [expected])
    assert assert_consistent(ledger, out) == (STEPS.index(step) >= COMMITTED_FROM)


def test_the_spreadsheet_finishes_before_the_ledger_write_lock_is_taken(tmp_path: Path) -> None:
    import sqlite3

    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out, pendings, probes = tmp_path / "response", [], []
    kwargs = _pending_kwargs(ledger, out, pendings)
    stage = kwargs["write_package"]

    def probe_then_stage(folder: Path, summary: dict[str, object]) -> FakePending:
        pending = stage(folder, summary)  # type: ignore[operator]
        finish = pending.finish_summary

        def finish_while_probing() -> dict[str, object]:
            other = sqlite3.connect(tmp_path / "ledger.sqlite", timeout=0.2,
                                    isolation_level=None)
            try:  # another writer gets the lock at once: publish does not hold it yet
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                probes.append("unlocked")
            except sqlite3.OperationalError:
                probes.append("locked")
            finally:
                other.close()
            return finish()

        pending.finish_summary = finish_while_probing  # type: ignore[method-assign]
        return pending

    publish(**{**kwargs, "write_package": probe_then_stage})
    assert probes == ["unlocked"]
    assert assert_consistent(ledger, out)


def test_a_failed_pending_package_records_nothing(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out, pendings = tmp_path / "response", []
    kwargs = _pending_kwargs(ledger, out, pendings, fails=True)
    head = ledger.head()
    with pytest.raises(PipelineError, match="spreadsheet writer failed"):
        publish(**kwargs)
    assert pendings[0].events == ["finish", "cancel"]
    assert ledger.head() == head
    assert assert_consistent(ledger, out) is False


def test_a_pending_package_is_published_with_the_ledger_head(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out, pendings = tmp_path / "response", []
    done = publish(**_pending_kwargs(ledger, out, pendings))
    assert pendings[0].events == ["finish"]
    assert receipt_head(out)["hash"] == done.head.hash == ledger.head().hash
    assert assert_consistent(ledger, out)
