"""The internal record: every row's outcome, the explanation, staging and delivery."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lastknown.disclose.receipt import RECEIPT_JSON, receipt_head
from lastknown.disclose.record import (
    EXPLANATION_CSV,
    MARKER,
    OUTCOME_COLUMNS,
    OUTCOMES_CSV,
    RECORD_JSON,
    begin_record,
    deliver_record,
    discard_record,
    read_record,
    record_dir_for,
    seal,
    write_record_tables,
)
from lastknown.engines import DuckDBEngine
from lastknown.errors import InputError, LedgerError
from test_package import PLANTED_TIN, RAW, REJECTED, RESULT, _build


@pytest.fixture()
def engine() -> DuckDBEngine:
    eng = DuckDBEngine(threads=2)
    _build(eng)
    yield eng
    eng.close()


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_outcomes_hold_every_request_row_with_its_code(engine: DuckDBEngine,
                                                        tmp_path: Path) -> None:
    written = write_record_tables(engine, tmp_path)
    assert written == {OUTCOMES_CSV: len(RAW)}  # no match_explanation table: no file
    assert not (tmp_path / EXPLANATION_CSV).exists()
    rows = _csv(tmp_path / OUTCOMES_CSV)
    assert tuple(rows[0]) == OUTCOME_COLUMNS
    assert [int(r["source_row"]) for r in rows] == [r[0] for r in RAW]
    by_row = {int(r["source_row"]): r for r in rows}
    for source_row, outcome, *_rest, detail in RESULT:
        assert by_row[source_row]["outcome"] == outcome
        assert by_row[source_row]["detail"] == (detail or "")
    for source_row, _rid, codes, _detail in REJECTED:
        assert (by_row[source_row]["outcome"], by_row[source_row]["reason_codes"]) == ("R", codes)
    assert by_row[10]["request_row_id"] == "'=R-9"  # neutralised: officers open it too
    assert by_row[10]["detail"].startswith("'=zip")


def test_explanation_and_candidates_when_the_matcher_left_them(engine: DuckDBEngine,
                                                               tmp_path: Path) -> None:
    engine.execute("CREATE TABLE lk_scored AS SELECT * FROM (VALUES (2, 'x1'), (2, 'x2'), "
                   "(2, 'x2'), (7, 'x3')) t(source_row, tin)")
    engine.execute(f"CREATE TABLE match_explanation AS SELECT * FROM (VALUES "
                   f"(7, '=R-6', 'A', '{PLANTED_TIN}', 2, 1.5), (7, '=R-6', 'A', 'x3', 1, 2.0)) "
                   "t(source_row, request_row_id, outcome, tin, tin_rank, match_weight)")
    write_record_tables(engine, tmp_path)
    candidates = {r["source_row"]: r["candidates"] for r in _csv(tmp_path / OUTCOMES_CSV)}
    assert (candidates["2"], candidates["6"], candidates["7"], candidates["8"]) == ("2", "0",
                                                                                  "1", "")
    explained = _csv(tmp_path / EXPLANATION_CSV)
    assert [(r["tin_rank"], r["tin"], r["request_row_id"]) for r in explained] == [
        ("1", "x3", "'=R-6"), ("2", PLANTED_TIN, "'=R-6")]


def test_a_record_is_staged_sealed_and_delivered(engine: DuckDBEngine, tmp_path: Path) -> None:
    package, archive = tmp_path / ".response.staging", tmp_path / "archive"
    package.mkdir()
    staging = begin_record(package, archive=archive, batch_id="Batch-7")
    assert (package / MARKER).is_file() and staging.is_dir()
    assert staging.stat().st_mode & 0o077 == archive.stat().st_mode & 0o077 == 0  # owner only
    write_record_tables(engine, staging)
    head = {"sequence": 12, "hash": "ab" * 32}
    record = seal(package, staging, {"batch_id": "Batch-7", "rows_total": 9, "model_id": "m",
                                     "ledger_head": head})
    assert receipt_head(package) == (12, "ab" * 32)
    assert "model_id" not in json.loads((package / RECEIPT_JSON).read_text())
    assert set(record["record_files_sha256"]) == {OUTCOMES_CSV}
    final = deliver_record(package)
    assert final == record_dir_for(archive.resolve(), "batch-7") == archive.resolve() / "batch-7"
    assert not (package / MARKER).exists() and not staging.exists()
    assert read_record(final)["ledger_head"] == head
    assert deliver_record(package) is None  # delivered once; the marker is gone
    with pytest.raises(LedgerError, match="already holds the internal record of batch BATCH-7"):
        begin_record(package, archive=archive, batch_id="BATCH-7")  # ids ignore case


def test_a_discarded_record_leaves_nothing(tmp_path: Path) -> None:
    package, archive = tmp_path / ".response.staging", tmp_path / "archive"
    package.mkdir()
    staging = begin_record(package, archive=archive, batch_id="B-1")
    (staging / OUTCOMES_CSV).write_text("x")
    discard_record(package)
    assert not staging.exists() and not (package / MARKER).exists()
    assert list(archive.iterdir()) == []
    discard_record(package)  # nothing left to discard


def test_an_interrupted_staging_blocks_a_second_publish_of_the_batch(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    begin_record(first, archive=tmp_path / "archive", batch_id="B-1")
    with pytest.raises(LedgerError, match="interrupted publish of batch B-1"):
        begin_record(second, archive=tmp_path / "archive", batch_id="B-1")
    assert not (second / MARKER).exists()


def test_a_missing_or_broken_record_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="record.json is missing"):
        read_record(tmp_path)
    (tmp_path / RECORD_JSON).write_text("[1]")
    with pytest.raises(InputError, match="not a JSON object"):
        read_record(tmp_path)


def test_recovery_after_the_record_was_delivered_but_not_the_package(tmp_path: Path) -> None:
    """A crash between the record's rename and the package's: the package follows."""
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.publish import publish, recover, staging_dir_for
    from test_ledger_fixtures import FakeBatch, engine_with_results, publish_kwargs

    class Killed(Exception):
        pass

    def die(step: str) -> None:
        if step == "committed":
            raise Killed(step)

    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    out = tmp_path / "response"
    kwargs = publish_kwargs(ledger, engine_with_results(matched=["900000011"], unmatched=2),
                            FakeBatch(), out)
    with pytest.raises(Killed):
        publish(**kwargs, checkpoint=die)
    record = deliver_record(staging_dir_for(out))  # ... and the process died here
    assert record is not None and record.is_dir() and not out.exists()
    done = recover(ledger=ledger, final_dir=out)
    assert done is not None and done.recovered and out.is_dir()
    assert done.summary["rows_total"] == 3 and done.summary["rows_matched"] == 1
    assert done.summary["ledger_head"] == read_record(record)["ledger_head"]
    assert not staging_dir_for(out).exists() and not (out / MARKER).exists()
    ledger.close()
