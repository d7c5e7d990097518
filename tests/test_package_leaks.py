"""Every file meant to leave, of a whole synthetic run, scanned: no TIN, nothing about the
master for a row that was not disclosed (DESIGN.md, "Response package").

The internal record of the same run holds the outcome codes the package must not: the
test proves the unmatched rows differ there (N, A, U, P) and read the same outside.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest

from conftest import World
from lastknown.disclose.cells import neutralise, sha256_file
from lastknown.disclose.package import (
    DISCLOSED_COLUMNS,
    NOT_MATCHED,
    PACKAGE_FILES,
    REJECTED_COLUMNS,
    UNMATCHED_COLUMNS,
)
from lastknown.disclose.record import EXPLANATION_CSV, OUTCOMES_CSV, RECORD_JSON
from lastknown.pipeline import ProcessOptions, ProcessResult, process_request
from lastknown.request.reasons import REASON_CODES

NAME_COLUMNS = ("first_name", "middle_name", "last_name")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory,
        medium_world: World) -> tuple[Path, ProcessResult]:
    """A synthetic population with every kind of outcome, processed end to end."""
    root = tmp_path_factory.mktemp("leaks")
    data = medium_world.data
    result = process_request(
        data / "request.csv", master=medium_world.index, batch_path=data / "batch.toml",
        out=root / "response",
        options=ProcessOptions(ledger=str(root / "ledger.sqlite"), archive=root / "archive",
                               today=date(2026, 11, 1), threads=2, memory_limit="2GB"))
    return data, result


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _master_tins(master: Path) -> set[str]:
    rows = duckdb.sql(f"SELECT DISTINCT tin FROM read_parquet('{master}/**/*.parquet')").fetchall()
    return {str(r[0]) for r in rows}


def _outgoing_texts(out: Path) -> dict[str, list[str]]:
    """Every text that leaves, per file: CSV cells, every XML part of the spreadsheet
    (cells, shared strings, properties), the receipt as written."""
    texts: dict[str, list[str]] = {}
    for path in sorted(out.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                texts[path.name] = [cell for row in csv.reader(handle) for cell in row]
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                texts[path.name] = [book.read(n).decode("utf-8") for n in book.namelist()]
        else:
            texts[path.name] = [path.read_text(encoding="utf-8")]
    return texts


def test_the_folder_holds_exactly_the_package_files(run: tuple[Path, ProcessResult]) -> None:
    _, result = run
    assert sorted(p.name for p in result.out.iterdir()) == sorted(PACKAGE_FILES)
    assert not list(result.out.parent.glob(".*staging*"))
    assert result.record is not None
    assert sorted(p.name for p in result.record.iterdir()) == sorted(
        [RECORD_JSON, OUTCOMES_CSV, EXPLANATION_CSV])


def test_no_tin_of_the_master_in_any_outgoing_file(run: tuple[Path, ProcessResult]) -> None:
    data, result = run
    tins = _master_tins(data / "master")
    assert len(tins) > 1_000
    texts = _outgoing_texts(result.out)
    assert set(texts) == set(PACKAGE_FILES)
    for name, parts in texts.items():
        for text in parts:
            digits = set(re.findall(r"\d{9}", re.sub(r"[-\s]", "", text)))
            assert not digits & tins, name
    book = openpyxl.load_workbook(result.out / "matched.xlsx", read_only=True)
    headers = [next(s.iter_rows(max_row=1, values_only=True)) for s in book.worksheets]
    book.close()
    headers += [tuple(_csv_header(result.out / n)) for n in texts if n.endswith(".csv")]
    assert not [h for header in headers for h in header if "tin" in str(h).lower()]
    # the record does hold TINs (explanation.csv): the scan above would have found them
    explained = (result.record or Path()).joinpath(EXPLANATION_CSV).read_text(encoding="utf-8")
    assert set(re.findall(r"\d{9}", explained)) & tins


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def test_unmatched_rows_all_read_the_same(run: tuple[Path, ProcessResult]) -> None:
    data, result = run
    out, record = result.out, result.record or Path()
    unmatched = _csv(out / "unmatched.csv")
    assert _csv_header(out / "unmatched.csv") == list(UNMATCHED_COLUMNS)
    request = {neutralise(r["request_row_id"]): r for r in _csv(data / "request.csv")}
    for row in unmatched:  # only the request's own id and name, and the same words
        asked = request[row["request_row_id"]]
        assert {c: row[c] for c in NAME_COLUMNS} == {
            c: neutralise(asked[c].strip()) or "" for c in NAME_COLUMNS}, row["request_row_id"]
        assert row["result"] == NOT_MATCHED
    # ... while the internal record knows why: several different outcomes behind the same words
    outcomes = {r["request_row_id"]: r["outcome"] for r in _csv(record / OUTCOMES_CSV)}
    behind = {outcomes[r["request_row_id"]] for r in unmatched}
    assert behind <= {"N", "A", "U", "P"} and len(behind) >= 3, behind
    # no candidate, weight, probability or year of an unmatched row anywhere outside
    ids = {r["request_row_id"] for r in unmatched}
    assert not ids & {r["request_row_id"] for r in _csv(out / "matched.csv")}
    book = openpyxl.load_workbook(out / "matched.xlsx", read_only=True)
    in_sheet = {str(r[0]) for s in book.worksheets for r in s.iter_rows(min_row=2,
                                                                        values_only=True)}
    book.close()
    assert not ids & in_sheet


def test_rejected_rows_carry_only_reason_codes_of_the_request(
        run: tuple[Path, ProcessResult]) -> None:
    _, result = run
    rejected = _csv(result.out / "rejected.csv")
    assert _csv_header(result.out / "rejected.csv") == list(REJECTED_COLUMNS)
    assert rejected
    for row in rejected:
        assert set(row["reason_codes"].split(";")) <= set(REASON_CODES), row["reason_codes"]


def test_matched_rows_carry_only_the_allowlist(run: tuple[Path, ProcessResult]) -> None:
    _, result = run
    assert _csv_header(result.out / "matched.csv") == list(DISCLOSED_COLUMNS)
    assert _csv(result.out / "matched.csv")


def test_the_receipt_holds_totals_head_and_digests_only(
        run: tuple[Path, ProcessResult]) -> None:
    _, result = run
    receipt: dict[str, Any] = json.loads((result.out / "receipt.json").read_text("utf-8"))
    assert set(receipt) == {"batch_id", "totals", "ledger_head", "files_sha256"}
    assert receipt["totals"] == {"rows": result.rows_total, "matched": result.rows_matched,
                                 "rejected": result.rows_rejected,
                                 "not_matched": result.rows_unmatched}
    assert set(receipt["ledger_head"]) == {"sequence", "hash"}
    assert receipt["files_sha256"] == {n: sha256_file(result.out / n)
                                       for n in PACKAGE_FILES if n != "receipt.json"}
    record = json.loads(((result.record or Path()) / RECORD_JSON).read_text("utf-8"))
    assert record["ledger_head"] == receipt["ledger_head"]
    assert record["receipt_sha256"] == sha256_file(result.out / "receipt.json")
    assert set(record["outcome_counts"]) == {"M", "N", "A", "U", "P"}
    for kept in ("model_id", "match_settings", "policy", "timings_seconds",
                 "expected_false_matches", "recently_disclosed", "files_sha256"):
        assert kept in record, kept  # the former summary.json, now internal
    assert record["files_sha256"] == receipt["files_sha256"]
