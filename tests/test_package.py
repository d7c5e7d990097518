"""The response package: headers, no TIN anywhere, neutralised cells, accounting, sheets.

(The scan of a whole synthetic run's outgoing files is in test_package_leaks.py.)
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import openpyxl
import pytest

from lastknown.disclose.cells import FORMULA_TRIGGERS, neutralise, neutralise_sql
from lastknown.disclose.package import (
    DATA_FILES,
    DISCLOSED_COLUMNS,
    NOT_MATCHED,
    REJECTED_COLUMNS,
    UNMATCHED_COLUMNS,
    PackageCounts,
    stage_package,
    write_package,
)
from lastknown.engines import DuckDBEngine
from lastknown.errors import PipelineError

PLANTED_TIN = "987650123"  # synthetic; recognisable so that a leak is found by grep
SECOND_TIN = "912345678"

NASTY_NAMES = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2", "@SUM(A1)", "\tTab", "\rCr"]

# source_row, request_row_id, first, middle, last (request_raw / request_valid)
RAW = [
    (2, "R-1", NASTY_NAMES[0], None, "Doe"),
    (3, "R-2", "Ann", "B", NASTY_NAMES[1]),
    (4, "R-3", NASTY_NAMES[2], None, NASTY_NAMES[3]),
    (5, "R-4", NASTY_NAMES[4], NASTY_NAMES[5], "Roe"),
    (6, "R-5", "Noel", None, "Nomatch"),
    (7, "R-6", "Amb", None, "Iguous"),
    (8, "R-7", "", None, ""),
    (9, "R-7", "Dup", None, "Row"),
    (10, "=R-9", "Bad", None, "Zip"),
]
VALID_ROWS = {2, 3, 4, 5, 6, 7}
# source_row, outcome, probability, tin, year, street, unit, city, state, zip, detail
RESULT = [
    (2, "M", 0.9999991, PLANTED_TIN, 2023, "12 Elm St", None, "Springfield", "IL", "62701", None),
    (3, "M", 0.95, SECOND_TIN, 2022, "@4 Oak Ave", "Apt 4B", "Salem", "OR", "973011234", None),
    (4, "M", 0.9, "900000001", 2021, "-9 Pine Rd", None, "Dover", "DE", "19901", None),
    (5, "M", 0.8, "900000002", 2024, "1 Main St", "=1+1", "Austin", "TX", "73301", None),
    (6, "N", None, None, None, None, None, None, None, None, "no candidate"),
    (7, "A", 0.7, "900000003", None, None, None, None, None, None, "two candidates too close"),
]
REJECTED = [
    (8, "R-7", "MISSING_NAME;DUPLICATE_ROW_ID", "first_name is empty; request_row_id repeated"),
    (9, "R-7", "DUPLICATE_ROW_ID", "request_row_id repeated in rows 8, 9"),
    (10, "=R-9", "INVALID_ZIP", "=zip `1234` must have 5 or 9 digits"),
]


def _build(engine: DuckDBEngine) -> None:
    con = engine.con
    con.execute("CREATE TABLE request_raw (source_row BIGINT, request_row_id VARCHAR, "
                "first_name VARCHAR, middle_name VARCHAR, last_name VARCHAR, tin VARCHAR)")
    con.executemany("INSERT INTO request_raw VALUES (?, ?, ?, ?, ?, NULL)", RAW)
    con.execute("CREATE TABLE request_valid AS SELECT source_row, request_row_id, first_name, "
                "middle_name, last_name, tin FROM request_raw "
                f"WHERE source_row IN ({', '.join(map(str, VALID_ROWS))})")
    con.execute("CREATE TABLE match_result (source_row BIGINT, request_row_id VARCHAR, "
                "outcome VARCHAR, match_probability DOUBLE, tin VARCHAR, address_tax_year INTEGER, "
                "street VARCHAR, unit VARCHAR, city VARCHAR, state VARCHAR, zip VARCHAR, "
                "detail VARCHAR)")
    ids = {r[0]: r[1] for r in RAW}
    con.executemany("INSERT INTO match_result VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(r[0], ids[r[0]], *r[1:]) for r in RESULT])
    con.execute("CREATE TABLE request_rejected (source_row BIGINT, request_row_id VARCHAR, "
                "reason_codes VARCHAR, detail VARCHAR)")
    con.executemany("INSERT INTO request_rejected VALUES (?, ?, ?, ?)", REJECTED)


@pytest.fixture()
def engine() -> DuckDBEngine:
    eng = DuckDBEngine(threads=2)
    _build(eng)
    yield eng
    eng.close()


def _write(engine: DuckDBEngine, tmp_path: Path, **kwargs: object) -> tuple[Path, PackageCounts]:
    out = tmp_path / "pkg"
    out.mkdir()
    counts = write_package(engine, out, summary={"batch_id": "B-1", "rows_total": -1},
                           **kwargs)  # type: ignore[arg-type]
    return out, counts


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_files_headers_counts_and_summary(engine: DuckDBEngine, tmp_path: Path) -> None:
    out, counts = _write(engine, tmp_path)
    assert sorted(p.name for p in out.iterdir()) == sorted(counts.files) == sorted(DATA_FILES)
    matched, unmatched, rejected = (_csv(out / n) for n in
                                    ("matched.csv", "unmatched.csv", "rejected.csv"))
    assert tuple(matched[0]) == DISCLOSED_COLUMNS
    assert tuple(unmatched[0]) == UNMATCHED_COLUMNS
    assert tuple(rejected[0]) == REJECTED_COLUMNS
    m_rows = [r for r in RESULT if r[1] == "M"]
    assert (counts.matched, counts.unmatched, counts.rejected, counts.total) == (
        len(m_rows), len(RESULT) - len(m_rows), len(REJECTED), len(RAW))
    assert [r[DISCLOSED_COLUMNS.index("address_tax_year")] for r in matched[1:]] == [
        str(r[4]) for r in m_rows]  # source-row order
    assert matched[1][DISCLOSED_COLUMNS.index("match_probability")] == str(
        round(m_rows[0][2], 6))
    # the request's own id and name, and the same words whatever the outcome (N, then A)
    assert unmatched[1:] == [["R-5", "Noel", "", "Nomatch", NOT_MATCHED],
                             ["R-6", "Amb", "", "Iguous", NOT_MATCHED]]
    assert [r[1] for r in rejected[1:]] == [str(r[0]) for r in REJECTED]

    summary = counts.summary  # the internal record's summary: never written into the package
    assert summary["batch_id"] == "B-1"
    assert summary["rows_total"] == len(RAW)  # computed counts win over the caller's
    assert summary["outcome_counts"] == {"M": 4, "N": 1, "A": 1, "U": 0, "P": 0}
    assert summary["reason_counts"] == {"DUPLICATE_ROW_ID": 2, "INVALID_ZIP": 1,
                                        "MISSING_NAME": 1}
    assert summary["expected_false_matches"] == pytest.approx(
        sum(1 - r[2] for r in m_rows), abs=1e-6)
    assert summary["xlsx_sheets"] == counts.xlsx_parts == ["matched"]
    assert summary["files_sha256"]["matched.csv"] == counts.files["matched.csv"]


def test_no_tin_anywhere_in_outgoing_files(engine: DuckDBEngine, tmp_path: Path) -> None:
    out, _ = _write(engine, tmp_path)
    for path in out.iterdir():
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as archive:
                blobs = [archive.read(name) for name in archive.namelist()]
        else:
            blobs = [path.read_bytes()]
        for blob in blobs:
            assert PLANTED_TIN.encode() not in blob, path.name
            assert SECOND_TIN.encode() not in blob, path.name
        if path.suffix == ".csv":
            assert "tin" not in _csv(path)[0], path.name


def test_tin_in_an_outgoing_cell_stops_the_package(engine: DuckDBEngine,
                                                   tmp_path: Path) -> None:
    engine.execute(f"UPDATE match_result SET unit = 'near TIN {PLANTED_TIN[:3]}-"
                   f"{PLANTED_TIN[3:5]}-{PLANTED_TIN[5:]}' WHERE source_row = 2")
    with pytest.raises(PipelineError, match="contain the row's TIN") as info:
        _write(engine, tmp_path)
    assert PLANTED_TIN not in str(info.value)
    assert not list((tmp_path / "pkg").iterdir())


def _written_text_cells(out: Path) -> list[str]:
    cells = [c for name in ("matched.csv", "unmatched.csv", "rejected.csv")
             for row in _csv(out / name)[1:] for c in row]
    book = openpyxl.load_workbook(out / "matched.xlsx", read_only=True)
    for sheet in book.worksheets:
        for row in sheet.iter_rows(min_row=2, values_only=True):
            cells.extend(c for c in row if isinstance(c, str))
    book.close()
    return cells


def test_formula_injection_neutralised_in_csv_and_xlsx(engine: DuckDBEngine,
                                                       tmp_path: Path) -> None:
    out, _ = _write(engine, tmp_path)
    cells = _written_text_cells(out)
    for nasty in [*NASTY_NAMES, "@4 Oak Ave", "-9 Pine Rd", "=1+1", "=R-9"]:
        assert "'" + nasty in cells
        assert nasty not in cells
    assert not [c for c in cells if c.startswith(FORMULA_TRIGGERS)]
    with zipfile.ZipFile(out / "matched.xlsx") as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml  # no formula cells at all
    book = openpyxl.load_workbook(out / "matched.xlsx", read_only=True)
    first = next(book.worksheets[0].iter_rows(min_row=2, max_row=2, values_only=True))
    book.close()
    probability = first[DISCLOSED_COLUMNS.index("match_probability")]
    assert isinstance(probability, float)  # numbers stay numbers


def test_sql_and_python_neutralising_agree(engine: DuckDBEngine) -> None:
    samples = ["=a", "+b", "-c", "@d", "\te", "\rf", "plain", "'=q", " =x", "", "1-2"]
    for sample in samples:
        got = engine.fetchall(f"SELECT {neutralise_sql('?::VARCHAR')}", [sample] * 3)[0][0]
        assert got == neutralise(sample)
    assert engine.fetchall(f"SELECT {neutralise_sql('NULL::VARCHAR')}")[0][0] is None


@pytest.mark.parametrize("break_it, problem", [
    ("DELETE FROM request_rejected WHERE source_row = 10", "in no output file"),
    ("INSERT INTO request_rejected VALUES (9, 'R-7', 'DUPLICATE_ROW_ID', 'x')",
     "placed more than once"),
    ("INSERT INTO request_rejected VALUES (6, 'R-5', 'MISSING_NAME', 'x')",
     "placed more than once"),
    ("INSERT INTO match_result (source_row, request_row_id, outcome) VALUES (3, 'R-2', 'N')",
     "placed more than once"),
    ("DELETE FROM match_result WHERE source_row = 7", "without a match_result row"),
    ("INSERT INTO request_rejected VALUES (99, 'X', 'MISSING_NAME', 'x')", "not in request_raw"),
    ("UPDATE match_result SET outcome = 'Q' WHERE source_row = 6", "outcome other than"),
    ("UPDATE match_result SET zip = NULL WHERE source_row = 2", "no probability"),
    ("UPDATE request_rejected SET reason_codes = '' WHERE source_row = 10",
     "without a reason code"),
])
def test_accounting_failures_raise(engine: DuckDBEngine, tmp_path: Path, break_it: str,
                                   problem: str) -> None:
    engine.execute(break_it)
    with pytest.raises(PipelineError, match=problem):
        _write(engine, tmp_path)
    assert not list((tmp_path / "pkg").iterdir())  # nothing written before the check


def test_xlsx_split_into_sheets(engine: DuckDBEngine, tmp_path: Path) -> None:
    out, counts = _write(engine, tmp_path, xlsx_max_rows=3)
    assert counts.xlsx_parts == ["matched_1", "matched_2"]
    book = openpyxl.load_workbook(out / "matched.xlsx", read_only=True)
    assert book.sheetnames == counts.xlsx_parts
    rows = [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]
    book.close()
    assert [len(r) - 1 for r in rows] == [3, 1]
    assert all(tuple(r[0]) == DISCLOSED_COLUMNS for r in rows)
    ids = [row[0] for part in rows for row in part[1:]]
    csv_ids = [row[0] for row in _csv(out / "matched.csv")[1:]]
    assert ids == csv_ids
    summary = counts.summary
    assert summary["xlsx_sheets"] == ["matched_1", "matched_2"]
    assert "split" in summary["xlsx_note"]


def test_existing_files_are_never_overwritten(engine: DuckDBEngine, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "matched.csv").write_text("old")
    with pytest.raises(PipelineError, match="never overwritten"):
        write_package(engine, out, summary={})
    assert (out / "matched.csv").read_text() == "old"


def test_caller_summary_and_engine_settings_untouched(engine: DuckDBEngine,
                                                      tmp_path: Path) -> None:
    engine.execute("SET enable_progress_bar = true")
    caller = {"batch_id": "B-2", "timings_seconds": {"match": 1.5}}
    out = tmp_path / "pkg"
    out.mkdir()
    counts = write_package(engine, out, summary=caller)
    assert caller == {"batch_id": "B-2", "timings_seconds": {"match": 1.5}}
    assert counts.summary["timings_seconds"] == {"match": 1.5}
    assert engine.fetchall("SELECT current_setting('enable_progress_bar')")[0][0] is True


def test_return_fields_in_the_package_are_the_policy_fields() -> None:
    from lastknown.disclose.policy import DISCLOSED_FIELDS

    echoed_from_request = {"request_row_id", "first_name", "middle_name", "last_name",
                           "match_probability"}
    assert set(DISCLOSED_COLUMNS) - echoed_from_request == set(DISCLOSED_FIELDS)


def test_same_rows_and_receipt_time_give_the_same_bytes(engine: DuckDBEngine,
                                                         tmp_path: Path) -> None:
    digests = []
    for name in ("first", "second"):
        out = tmp_path / name
        out.mkdir()
        counts = write_package(engine, out, summary={"received_at": "2026-11-01T09:30:00+00:00"})
        digests.append(counts.files)
    assert digests[0] == digests[1]
    with zipfile.ZipFile(tmp_path / "first" / "matched.xlsx") as book:
        core = book.read("docProps/core.xml").decode()
    assert "2026-11-01T09:30:00Z" in core


@pytest.mark.parametrize("max_rows", [1_048_575, 3])
def test_a_spreadsheet_written_by_a_child_process_is_the_same_file(
        engine: DuckDBEngine, tmp_path: Path, max_rows: int) -> None:
    summary = {"received_at": "2026-11-01T09:30:00+00:00"}
    written = {}
    for name, background in (("inline", None), ("child", 0)):
        out = tmp_path / name
        out.mkdir()
        staged = stage_package(engine, out, summary=summary, xlsx_max_rows=max_rows,
                               background_xlsx_from=background)
        assert (staged.job is not None) == (background is not None)
        written[name] = staged.finish()
    assert written["child"].files == written["inline"].files  # every file, byte for byte
    assert written["child"].xlsx_parts == written["inline"].xlsx_parts
    assert len(written["child"].xlsx_parts) == (1 if max_rows > 4 else 2)
    assert not list(tmp_path.glob("child/*.parquet"))


def test_a_failing_spreadsheet_child_is_reported_and_cleans_up(engine: DuckDBEngine,
                                                               tmp_path: Path) -> None:
    from lastknown.disclose.package import matched_sql
    from lastknown.disclose.xlsx_job import start_xlsx_job

    job = start_xlsx_job(engine, matched_sql(result_table="match_result",
                                             valid_table="request_valid"),
                         tmp_path / "matched.xlsx", columns=DISCLOSED_COLUMNS,
                         sheet_stem="matched", max_rows=100, expected_rows=5)  # 4 rows exist
    with pytest.raises(PipelineError, match=r"matched.xlsx: the spreadsheet writer \(a child "
                                            r"process\) failed .*wrote 4 rows, expected 5"):
        job.wait()
    assert not job.workdir.exists()


def test_a_cancelled_spreadsheet_child_stops_and_cleans_up(engine: DuckDBEngine,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    staged = stage_package(engine, out, summary={}, background_xlsx_from=0)
    job = staged.job
    assert job is not None
    staged.cancel()
    assert job.process.returncode is not None and not job.workdir.exists()
    staged.cancel()  # idempotent
    with pytest.raises(PipelineError, match="already finished or cancelled"):
        staged.finish()
