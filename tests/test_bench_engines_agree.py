"""bench/engines_agree.py's comparison of two runs (no engine runs here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import engines_agree as ea
import pytest

OUTCOMES = ("source_row,request_row_id,outcome,match_probability,address_tax_year,candidates,"
            "reason_codes,detail\n2,R-2,M,0.999592,2023,1,,\n3,R-3,N,,,0,,\n")
EXPLANATION = ("source_row,request_row_id,outcome,tin,tin_rank,record_id,match_weight,"
               "match_probability,mw_zip5,address_confirmed\n"
               "2,R-2,M,123456789,1,17,12.5,0.999592,3.25,true\n")
MATCHED = ("request_row_id,first_name,match_probability,address_tax_year,street,zip\n"
           "R-2,Ann,0.999592,2023,1 Main St,22201\n")


def _run(root: Path, *, outcomes: str = OUTCOMES, explanation: str = EXPLANATION,
         matched: str = MATCHED) -> Path:
    record = root / "archive" / "2026-x"
    record.mkdir(parents=True)
    (root / "response").mkdir()
    (record / "outcomes.csv").write_text(outcomes, encoding="utf-8")
    (record / "explanation.csv").write_text(explanation, encoding="utf-8")
    (root / "response" / "matched.csv").write_text(matched, encoding="utf-8")
    (root / "response" / "unmatched.csv").write_text("request_row_id,result\nR-3,not matched\n",
                                                     encoding="utf-8")
    (root / "response" / "rejected.csv").write_text("request_row_id,source_row,reason_codes\n",
                                                    encoding="utf-8")
    with sqlite3.connect(root / "ledger.sqlite") as con:
        con.execute("CREATE TABLE ledger_disclosures (request_row_id, tin, address_tax_year, "
                    "address_sha256, request_statute, recipient, disclosed_at)")
        con.execute("INSERT INTO ledger_disclosures VALUES ('R-2', '123456789', 2023, 'h', "
                    f"'s', 'r', '{root.name}')")  # the time differs between runs
    return root


def test_two_runs_that_agree_agree_whatever_their_times(tmp_path: Path) -> None:
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", explanation=EXPLANATION.replace("12.5,", "12.5000000001,"))
    agree, lines = ea.compare_runs(a, b, 1e-9)
    assert agree, lines
    assert lines[1].startswith("same: explanation.csv: rows 1 / 1, largest numeric gap 1e-10")


@pytest.mark.parametrize(("change", "table", "column"), [
    ({"outcomes": OUTCOMES.replace("3,R-3,N", "3,R-3,U")}, "outcomes.csv", "outcome"),
    ({"matched": MATCHED.replace("1 Main St", "1 Main Street")}, "matched.csv", "street"),
    ({"explanation": EXPLANATION.replace("3.25", "3.5")}, "explanation.csv", "mw_zip5"),
    ({"explanation": EXPLANATION.replace(",1,17,", ",1,18,")}, "explanation.csv", "record_id"),
])
def test_a_changed_answer_or_weight_is_a_difference_named_by_column(
        tmp_path: Path, change: dict[str, str], table: str, column: str) -> None:
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", **change)
    agree, lines = ea.compare_runs(a, b, 1e-9)
    assert not agree
    [line] = [x for x in lines if x.startswith("DIFFERENT")]
    assert line.startswith(f"DIFFERENT: {table}: ") and f"'{column}': 1" in line
