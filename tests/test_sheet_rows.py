"""matched.xlsx's rows written a batch at a time (lastknown.disclose.sheet_rows) are the bytes
xlsxwriter writes one cell at a time, for every kind of text and number a package carries."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest
import xlsxwriter

from lastknown.disclose.cells import _new_sheet, _sheet_names, write_xlsx_batches
from lastknown.errors import PipelineError

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COLUMNS = ("request_row_id", "name", "probability", "year", "street")

AWKWARD_TEXT = [
    "", " leading", "trailing ", "\u00a0no-break", "ideographic\u3000", "\u2003em",
    "a&b<c>d\"e'f", "_x0041_ stays text", "_X00e9_ and _x12_", "ctrl\x01\x1f", "tab\tinside",
    "\tleading tab", "new\nline", "ends in newline\n", "\r\ncarriage", "\ufffe\uffff",
    "emoji 😀", "漢字 テスト", "Ñandú Çé", "'=1+1", "x" * 20_000, "😀" * 10_000,
    "\x1c\x1d\x1e\x1f", " ", "\x0b", "&amp;", "]]>", "<b>not markup</b>",
]
NUMBERS = [0.0, -0.0, 1e-7, 1e20, 0.1, 0.30000000000000004, 1 / 3, 123456.789, 0.999999,
           -5.5, 2.5e-300, 1.7976931348623157e308]


def _rows() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i, text in enumerate(AWKWARD_TEXT * 2):
        rows.append((f"R{i:04d}", text, NUMBERS[i % len(NUMBERS)], 2000 + i,
                     None if i % 3 == 0 else AWKWARD_TEXT[-1 - i % len(AWKWARD_TEXT)]))
    rows.insert(5, (None, None, None, None, None))  # a row of NULLs: no <row> at all
    rows.insert(9, (None, "only the name", None, None, None))
    rows.append(("last", None, None, None, None))
    return rows


def _table(rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table({"request_row_id": pa.array(cols[0], pa.string()),
                     "name": pa.array(cols[1], pa.string()),
                     "probability": pa.array(cols[2], pa.float64()),
                     "year": pa.array(cols[3], pa.int32()),
                     "street": pa.array(cols[4], pa.large_string())})


def _reference(path: Path, rows: list[tuple[Any, ...]], max_rows: int) -> None:
    """What xlsxwriter's public API writes, cell by cell (the bytes before sheet_rows)."""
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False, "nan_inf_to_errors": False})
    workbook.set_properties({"created": CREATED})
    sheets = [_new_sheet(workbook, name, COLUMNS)
              for name in _sheet_names("matched", len(rows), max_rows)]
    for n, row in enumerate(rows):
        part, offset = divmod(n, max_rows)
        for col, value in enumerate(row):
            if isinstance(value, str):
                assert sheets[part].write_string(offset + 1, col, value) == 0
            elif value is not None:
                assert sheets[part].write_number(offset + 1, col, float(value)) == 0
    workbook.close()


def _write(path: Path, table: pa.Table, *, max_rows: int, batch_rows: int) -> list[str]:
    return write_xlsx_batches(table.to_batches(max_chunksize=batch_rows), path,
                              columns=COLUMNS, sheet_stem="matched", max_rows=max_rows,
                              expected_rows=table.num_rows, created=CREATED)


def _read(path: Path, *, min_row: int = 1) -> list[tuple[Any, ...]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(cell.value for cell in row)
                for row in workbook["matched"].iter_rows(min_row=min_row)]
    finally:
        workbook.close()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize(("max_rows", "batch_rows"), [(1_048_575, 50_000), (1_048_575, 7),
                                                      (13, 5), (13, 13), (20, 1)])
def test_batch_rows_are_the_bytes_xlsxwriter_writes_cell_by_cell(
        tmp_path: Path, max_rows: int, batch_rows: int) -> None:
    rows = _rows()
    _reference(tmp_path / "reference.xlsx", rows, max_rows)
    sheets = _write(tmp_path / "batched.xlsx", _table(rows), max_rows=max_rows,
                    batch_rows=batch_rows)
    assert len(sheets) == -(-len(rows) // max_rows)
    ours, theirs = _members(tmp_path / "batched.xlsx"), _members(tmp_path / "reference.xlsx")
    assert ours.keys() == theirs.keys()
    for name in theirs:  # member by member, so a difference names its part
        assert ours[name] == theirs[name], name
    assert (tmp_path / "batched.xlsx").read_bytes() == (tmp_path / "reference.xlsx").read_bytes()


def test_the_text_reads_back_as_written_and_numbers_as_numbers(tmp_path: Path) -> None:
    rows = [("R1", "<r><t>markup</t></r>", 0.25, 2024, "  12 Main St  "),
            ("R2", "tab\tand newline\n", 1e-7, 2023, "a&b")]
    _write(tmp_path / "m.xlsx", _table(rows), max_rows=100, batch_rows=1)
    values = _read(tmp_path / "m.xlsx")
    # the rich-text look-alike stays text (xlsxwriter alone would write it as markup)
    assert values == [COLUMNS, *[(a, b, c, d, e) for a, b, c, d, e in rows]]


def test_a_string_view_column_gives_the_same_bytes(tmp_path: Path) -> None:
    table = _table(_rows())
    views = table.set_column(1, "name", table.column("name").cast(pa.string_view()))
    _write(tmp_path / "plain.xlsx", table, max_rows=100, batch_rows=9)
    _write(tmp_path / "views.xlsx", views, max_rows=100, batch_rows=9)
    assert (tmp_path / "views.xlsx").read_bytes() == (tmp_path / "plain.xlsx").read_bytes()


def test_decimal_and_integer_columns_are_numbers(tmp_path: Path) -> None:
    table = pa.table({"request_row_id": ["R1", "R2"], "name": ["a", "b"],
                      "probability": pa.array([Decimal("0.5"), None], pa.decimal128(5, 3)),
                      "year": pa.array([2**40, -3], pa.int64()), "street": ["s", None]})
    _write(tmp_path / "d.xlsx", table, max_rows=10, batch_rows=10)
    assert _read(tmp_path / "d.xlsx", min_row=2) == [
        ("R1", "a", 0.5, 2**40, "s"), ("R2", "b", None, -3, None)]


@pytest.mark.parametrize(("value", "problem"), [
    (float("nan"), "cell C3 (column probability) is not a finite number"),
    (float("inf"), "cell C3 (column probability) is not a finite number"),
])
def test_a_number_that_is_not_finite_is_refused_by_cell(tmp_path: Path, value: float,
                                                         problem: str) -> None:
    rows = [("R1", "a", 0.5, 1, "s"), ("R2", "b", value, 2, "t")]
    with pytest.raises(PipelineError, match=re.escape(problem)):
        _write(tmp_path / "n.xlsx", _table(rows), max_rows=10, batch_rows=10)


def test_text_longer_than_a_cell_takes_is_refused_by_cell(tmp_path: Path) -> None:
    rows = [("R1", "a", 0.5, 1, "s"), ("R2", "😀" * 16_384, 0.5, 2, "t")]  # 32,768 UTF-16 units
    with pytest.raises(PipelineError, match=r"cell B3 \(column name\) holds more than 32,767"):
        _write(tmp_path / "t.xlsx", _table(rows), max_rows=10, batch_rows=10)
    fits = [("R1", "😀" * 16_383 + "x", 0.5, 1, "s")]  # exactly 32,767: written whole
    _write(tmp_path / "f.xlsx", _table(fits), max_rows=10, batch_rows=10)
    assert _read(tmp_path / "f.xlsx", min_row=2)[0][1] == fits[0][1]


def test_a_column_neither_text_nor_number_is_refused(tmp_path: Path) -> None:
    table = _table([("R1", "a", 0.5, 1, "s")]).set_column(
        3, "year", pa.array([True], pa.bool_()))
    with pytest.raises(PipelineError, match="column year has type bool, neither text nor number"):
        _write(tmp_path / "b.xlsx", table, max_rows=10, batch_rows=10)
