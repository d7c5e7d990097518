"""The evaluator: precision, recall, false disclosures, rejections, alignment gaps."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from lastknown.disclose.package import NOT_MATCHED, UNMATCHED_COLUMNS, write_package
from lastknown.disclose.record import (
    OUTCOMES_CSV,
    RECORD_JSON,
    record_dir_for,
    seal,
    write_record_tables,
)
from lastknown.engines import DuckDBEngine
from lastknown.errors import InputError
from lastknown.evaluate import TRUTH_COLUMNS, evaluate, format_report
from test_package import RAW, REJECTED, RESULT, _build

ADDRESS = {"street": "12 Elm St", "unit": "", "city": "Springfield", "state": "IL",
           "zip": "62701"}
UNIT_ADDRESS = {"street": "4 Oak Ave", "unit": "Apt 4B", "city": "Salem", "state": "OR",
                "zip": "97301"}

# (id, expected outcome, expected reason, expected address, what the package holds, kind)
# The package side: ("M", address) | ("N"/"A"/..., None) | ("R", codes) | None (absent).
CASES = [
    ("A1", "M", "", ADDRESS, ("M", {**ADDRESS, "street": "12  elm st ", "city": "SPRINGFIELD",
                                    "zip": "627011234"}), "correct"),
    ("A2", "M", "", ADDRESS, ("M", {**ADDRESS, "zip": "62702"}), "wrong_person_or_address"),
    ("A3", "M", "", ADDRESS, ("N", None), "missed"),
    ("A4", "N", "", None, ("M", ADDRESS), "disclosed_when_expected_other"),
    ("A5", "R", "MISSING_NAME", None, ("R", "MISSING_NAME;INVALID_ZIP"), "reason_agrees"),
    ("A6", "R", "DUPLICATE_ROW_ID", None, ("R", "DUPLICATE_ROW_ID"), "reason_agrees"),
    ("A6", None, None, None, ("R", "DUPLICATE_ROW_ID"), "second_line"),
    ("A7", "R", "INVALID_ZIP", None, ("R", "MISSING_ADDRESS"), "reason_disagrees"),
    ("A8", "R", "INVALID_TIN", None, ("N", None), "not_rejected"),
    ("-9", "M", "", UNIT_ADDRESS, ("M", {**UNIT_ADDRESS, "unit": "APT  4b"}), "correct"),
    ("A10", "U", "", None, None, "missing"),
    ("Z1", None, None, None, ("N", None), "not_in_truth"),
    ("Z2", None, None, None, ("M", ADDRESS), "not_in_truth"),
]
EXPECTED_FALSE_MATCHES = 0.25


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _hand_made(tmp_path: Path) -> tuple[Path, Path]:
    """A package in tmp_path/pkg, its internal record in tmp_path/record, and truth."""
    pkg, record = tmp_path / "pkg", tmp_path / "record"
    pkg.mkdir()
    record.mkdir()
    matched, unmatched, rejected, truth, outcomes = [], [], [], [], []
    for number, (rid, exp, reason, address, got, _) in enumerate(CASES, start=2):
        if exp is not None:
            a = address or dict.fromkeys(ADDRESS, "")
            truth.append([rid, "", exp, a["street"], a["unit"], a["city"], a["state"], a["zip"],
                          "2023" if exp == "M" else "", reason or ""])
        if got is None:
            continue
        outcome, value = got
        outcomes.append([_neutral(rid), outcome])
        if outcome == "M":
            matched.append([_neutral(rid), "F", "", "L", "0.9", "2023", value["street"],
                            value["unit"], value["city"], value["state"], value["zip"]])
        elif outcome == "R":
            rejected.append([_neutral(rid), str(number), value, "detail"])
        else:
            unmatched.append([_neutral(rid), "F", "", "L", NOT_MATCHED])
    _write_csv(pkg / "matched.csv", ["request_row_id", "first_name", "middle_name", "last_name",
                                     "match_probability", "address_tax_year",
                                     "street", "unit", "city", "state", "zip"], matched)
    _write_csv(pkg / "unmatched.csv", list(UNMATCHED_COLUMNS), unmatched)
    _write_csv(pkg / "rejected.csv", ["request_row_id", "source_row", "reason_codes", "detail"],
               rejected)
    _write_csv(record / OUTCOMES_CSV, ["request_row_id", "outcome"], outcomes)
    (record / RECORD_JSON).write_text(json.dumps(
        {"expected_false_matches": EXPECTED_FALSE_MATCHES}))
    truth_path = tmp_path / "truth.csv"
    _write_csv(truth_path, ["request_row_id", "true_tin", *TRUTH_COLUMNS[1:]], truth)
    return pkg, truth_path


def test_hand_made_package_scores_exactly(tmp_path: Path) -> None:
    pkg, truth = _hand_made(tmp_path)
    metrics = evaluate(pkg, truth, record_dir=tmp_path / "record")
    kinds = Counter(kind for *_, kind in CASES)
    disclosures = sum(1 for c in CASES if c[4] is not None and c[4][0] == "M")
    expected_m = sum(1 for c in CASES if c[1] == "M")
    expected_r = sum(1 for c in CASES if c[1] == "R")
    rejected_ok = kinds["reason_agrees"] + kinds["reason_disagrees"]
    assert metrics["precision"] == pytest.approx(kinds["correct"] / disclosures)
    assert metrics["recall"] == pytest.approx(kinds["correct"] / expected_m)
    assert metrics["false_disclosures_by_kind"] == {
        "wrong_person_or_address": kinds["wrong_person_or_address"],
        "disclosed_when_expected_other": kinds["disclosed_when_expected_other"],
        "not_in_truth": 1,
    }
    assert metrics["false_disclosures"] == disclosures - kinds["correct"]
    assert metrics["rejection_recall"] == pytest.approx(rejected_ok / expected_r)
    assert metrics["rejection_reason_agreement"] == pytest.approx(
        kinds["reason_agrees"] / rejected_ok, abs=1e-6)
    assert metrics["expected_false_matches"] == EXPECTED_FALSE_MATCHES
    assert metrics["confusion"] == {"M": {"M": 3, "N": 1}, "N": {"M": 1},
                                    "R": {"R": 3, "N": 1}, "U": {"missing": 1}}
    counts = metrics["counts"]
    assert counts["truth_ids_missing_from_package"] == kinds["missing"]
    assert counts["package_ids_not_in_truth"] == kinds["not_in_truth"]
    assert counts["rejected_rows"] == 4 and counts["package_ids"] == len(CASES) - 2
    assert counts["correct_disclosures_with_expected_tax_year"] == kinds["correct"]
    json.dumps(metrics)  # JSON-able
    report = format_report(metrics)
    assert "Precision 40.00%" in report and "not in truth" in report
    assert "truth_ids_missing_from_package 1" in report


def test_missing_package_file_and_bad_truth_are_input_errors(tmp_path: Path) -> None:
    pkg, truth = _hand_made(tmp_path)
    lines = truth.read_text().splitlines()
    duplicated = tmp_path / "dup.csv"
    duplicated.write_text("\n".join([*lines, lines[1]]) + "\n")
    record = tmp_path / "record"
    with pytest.raises(InputError, match="more than one line"):
        evaluate(pkg, duplicated, record_dir=record)
    no_column = tmp_path / "nocol.csv"
    no_column.write_text("request_row_id,expected_outcome\nA1,M\n")
    with pytest.raises(InputError, match="expected_street"):
        evaluate(pkg, no_column, record_dir=record)
    with pytest.raises(InputError, match=r"receipt.json is missing"):
        evaluate(pkg, truth)  # no receipt: the record cannot be found, and says so
    (record / OUTCOMES_CSV).unlink()
    with pytest.raises(InputError, match="outcomes.csv is missing"):
        evaluate(pkg, truth, record_dir=record)
    (pkg / "unmatched.csv").unlink()
    with pytest.raises(InputError, match="unmatched.csv is missing"):
        evaluate(pkg, truth, record_dir=record)


def test_an_unmatched_row_without_a_recorded_outcome_is_counted(tmp_path: Path) -> None:
    pkg, truth = _hand_made(tmp_path)
    record = tmp_path / "record"
    kept = [line for line in (record / OUTCOMES_CSV).read_text().splitlines()
            if not line.startswith("A3,")]
    (record / OUTCOMES_CSV).write_text("\n".join(kept) + "\n")
    metrics = evaluate(pkg, truth, record_dir=record)
    assert metrics["counts"]["unmatched_rows_without_record_outcome"] == 1
    assert metrics["confusion"]["M"] == {"M": 3, "?": 1}
    assert "unmatched_rows_without_record_outcome 1" in format_report(metrics)


def test_evaluates_a_package_written_by_write_package(tmp_path: Path) -> None:
    engine = DuckDBEngine(threads=2)
    archive = tmp_path / "archive"
    record = record_dir_for(archive, "B-1")
    try:
        _build(engine)
        out = tmp_path / "pkg"
        out.mkdir()
        record.mkdir(parents=True)
        counts = write_package(engine, out, summary={"batch_id": "B-1"})
        write_record_tables(engine, record)
        seal(out, record, {**counts.summary, "ledger_head": {"sequence": 3, "hash": "ab"}})
    finally:
        engine.close()
    ids = {r[0]: r[1] for r in RAW}
    truth_rows = []
    for source_row, outcome, _p, _tin, year, street, unit, city, state, zipc, _d in RESULT:
        if outcome == "M":  # the street of row 3 is wrong in truth: one false disclosure
            expected = "4 Oak Ave" if source_row == 3 else street
            truth_rows.append([ids[source_row], "", "M", expected, unit or "", city, state,
                               zipc, str(year), ""])
        else:
            truth_rows.append([ids[source_row], "", outcome, "", "", "", "", "", "", ""])
    for rid in dict.fromkeys(r[1] for r in REJECTED):  # one truth line per duplicated id
        truth_rows.append([rid, "", "R", "", "", "", "", "", "", "DUPLICATE_ROW_ID"])
    truth = tmp_path / "truth.csv"
    _write_csv(truth, ["request_row_id", "true_tin", *TRUTH_COLUMNS[1:]], truth_rows)
    metrics = evaluate(out, truth, archive=archive)  # found through receipt.json
    m_rows = sum(1 for r in RESULT if r[1] == "M")
    assert metrics["precision"] == pytest.approx((m_rows - 1) / m_rows)
    assert metrics["false_disclosures_by_kind"]["wrong_person_or_address"] == 1
    assert metrics["rejection_recall"] == 1.0
    assert metrics["rejection_reason_agreement"] == pytest.approx(0.5)  # R-7 yes, =R-9 no
    assert metrics["counts"]["truth_ids_missing_from_package"] == 0
    assert metrics["counts"]["package_ids_not_in_truth"] == 0
    assert metrics["expected_false_matches"] > 0
    assert metrics["confusion"]["A"] == {"A": 1} and metrics["confusion"]["N"] == {"N": 1}

    other = tmp_path / "other"  # a record sealed with another ledger head is not this one's
    other.mkdir()
    (other / RECORD_JSON).write_text(json.dumps({"ledger_head": {"sequence": 4, "hash": "cd"}}))
    with pytest.raises(InputError, match="is not the record of"):
        evaluate(out, truth, record_dir=other)
    with pytest.raises(InputError, match="no internal record of batch B-1"):
        evaluate(out, truth, archive=tmp_path / "elsewhere")
