"""Request files a person gets wrong: sheets, title rows, `sep=`, huge cells, not a CSV at all.

Each error must name the file, the row or sheet, the cause and the fix, and never a
parser's internals. ``engine`` is the fresh DuckDB engine of tests/conftest.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from lastknown.engines import DuckDBEngine
from lastknown.errors import RequestFileError
from lastknown.request.intake import read_request

HEADER = ["Row ID", "First Name", "Last Name", "Street Address", "Apt", "City", "State",
          "Zip Code", "Removal Order Date", "Case Number", "Statute", "Tax Year(s)"]


def row(n: int) -> list[str]:
    return [f"R{n}", "Ana", f"Lopez{n}", "12 Elm St", "", "Boston", "MA", "02134",
            "2024-03-05", f"C-{n}", "8 U.S.C. 1253(a)(1)", "2023"]


def last_names(engine: DuckDBEngine) -> list[tuple[object, ...]]:
    return engine.fetchall("SELECT source_row, last_name FROM request_raw ORDER BY source_row")


def workbook(path: Path, sheets: dict[str, list[list[str]]],
             hidden: tuple[str, ...] = ()) -> Path:
    book = openpyxl.Workbook()
    default = book.active
    assert default is not None
    book.remove(default)
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for r in rows:
            ws.append(r)
        if title in hidden:
            ws.sheet_state = "hidden"
    book.save(path)
    return path


# -- sheets --------------------------------------------------------------------------------
def test_a_hidden_sheet_is_never_read_unless_named(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Old": [HEADER, row(1), row(2)],
                                          "Data": [HEADER, row(3)]}, hidden=("Old",))
    result = read_request(engine, path)
    assert (result.sheet, last_names(engine)) == ("Data", [(2, "Lopez3")])
    named = read_request(engine, path, sheet="Old")
    assert (named.sheet, named.row_count, named.warnings) == (
        "Old", 2, ("r.xlsx: only sheet `Old` was read; sheet `Data` also has request columns "
                   "and its rows were not read",))


def test_several_data_sheets_need_sheet(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Cover": [["Requests, November"]],
                                          "Data": [HEADER, row(1)], "Data2": [HEADER, row(2)]})
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == (
        "r.xlsx: sheets `Data`, `Data2` all have request columns: pass --sheet NAME to say "
        "which one to answer (put rows meant for one request on one sheet)")


def test_a_named_sheet_says_which_rows_were_left(engine: DuckDBEngine, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Data": [HEADER, row(1)], "More": [HEADER, row(2)]})
    result = read_request(engine, path, sheet="Data")
    assert last_names(engine) == [(2, "Lopez1")]
    note = ("r.xlsx: only sheet `Data` was read; sheet `More` also has request columns and "
            "its rows were not read")
    assert result.warnings == (note,)
    assert note in caplog.messages


def test_no_data_sheet_among_several_talks_about_sheet(engine: DuckDBEngine,
                                                       tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Cover": [["hello"]], "Notes": [["a", "b"]],
                                          "Secret": [HEADER, row(1)]}, hidden=("Secret",))
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == (
        "r.xlsx: none of the sheets `Cover`, `Notes` has a header row naming the request "
        "columns (Row ID, Last Name, Street, City ...); hidden sheets (`Secret`) are read only "
        "when named with --sheet. Pass --sheet NAME for the sheet that holds the request, and "
        "name its columns in its header row")


def test_xlsx_header_row_option(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Data": [["Title"], ["Sub", "title", "x"],
                                                   HEADER, row(1)]})
    read_request(engine, path, header_row=3)
    assert last_names(engine) == [(4, "Lopez1")]
    with pytest.raises(RequestFileError, match=r"row 5 of sheet `Data` is empty"):
        read_request(engine, path, header_row=5)


# -- CSV -------------------------------------------------------------------------------------
def write(path: Path, rows: list[list[str]], *, first: str = "", delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(first)
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def test_title_rows_are_detected_and_header_row_reads_them(engine: DuckDBEngine,
                                                           tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", [["Requests from the field office"], [], HEADER, row(1),
                                      row(2)])
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    message = str(info.value)
    assert message.startswith("r.csv: row 1 is not a header row (it names no request "
                              "columns); row 3 looks like the header (`Row ID`, ")
    assert message.endswith(": pass --header-row 3, or delete the title rows above it")
    read_request(engine, path, header_row=3)
    assert last_names(engine) == [(4, "Lopez1"), (5, "Lopez2")]


def test_header_row_pointing_at_an_empty_row(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", [["Title"], [], HEADER, row(1)])
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path, header_row=2)
    assert str(info.value) == ("r.csv: row 2 is empty; it must hold the column headers "
                               "(give the header's row number)")


@pytest.mark.parametrize("first", ["sep=;\r\n", '"sep=;"\r\n', "SEP=;\r\n"])
def test_an_excel_sep_line_is_honoured(engine: DuckDBEngine, tmp_path: Path,
                                       first: str) -> None:
    path = write(tmp_path / "r.csv", [HEADER, row(1), row(2)], first=first, delimiter=";")
    result = read_request(engine, path)
    assert result.column_mapping["Last Name"] == "last_name"
    assert last_names(engine) == [(3, "Lopez1"), (4, "Lopez2")]  # the sep line is row 1


def test_mixed_line_endings_are_named(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", [HEADER, row(1)], first="sep=;\n", delimiter=";")
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == ("r.csv mixes Windows (CRLF) and Unix (LF) line endings: save "
                               "the file again with one kind, e.g. from the spreadsheet as CSV")


def test_a_huge_cell_names_row_and_column(engine: DuckDBEngine, tmp_path: Path) -> None:
    big = row(2)
    big[3] = "A" * 3_000_000
    path = write(tmp_path / "r.csv", [HEADER, row(1), big])
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == (
        "r.csv: row 3, column 4 (`Street Address`) holds 3,000,000 characters, more than a "
        "row may hold (2,000,000 bytes): a request cell holds a name, an address or a date. "
        "The file is damaged, or a quote (\") is missing so that many lines ran together: "
        "fix that row")


def test_an_unclosed_quote_is_explained_without_parser_internals(engine: DuckDBEngine,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(row(1)) + "\n"
                    + '"R2,Ana,"Lopez' + ",x" * 10 + "\n", encoding="utf-8")
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == (
        "r.csv row 3 cannot be read as CSV with the delimiter `,` and double quotes (\"): "
        "check for a quote that is opened and never closed, or save the file again from the "
        "spreadsheet as CSV")


@pytest.mark.parametrize(("content", "kind"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300), "a PNG image"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "an Excel 97-2003 (.xls) or other old "
                                                       "Office file"),
    (b"Row ID,Name\x00\x01\x02" + bytes(50), "a binary file (it holds NUL bytes)"),
])
def test_a_file_that_is_not_text(engine: DuckDBEngine, tmp_path: Path, content: bytes,
                                 kind: str) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value) == (f"r.csv is not a CSV/spreadsheet: it looks like {kind}. Give "
                               "the request as .csv, .xlsx or .parquet")


def test_header_row_on_parquet_is_refused(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    engine.execute(f"COPY (SELECT 'R1' AS \"Row ID\") TO '{path}' (FORMAT parquet)")
    with pytest.raises(RequestFileError, match="--header-row applies to CSV and XLSX files"):
        read_request(engine, path, header_row=2)


def test_options_that_do_not_apply_are_refused(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Data": [HEADER, row(1)]})
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path, encoding="cp1252")
    assert str(info.value) == ("r.xlsx: --encoding applies to CSV files; this is an XLSX file, "
                               "whose text is always Unicode: leave --encoding out")


def test_the_header_error_names_the_header_row(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"Data": [["Title"], [], ["Row ID", "Surname", "City",
                                                                   "Notes"], row(1)]})
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    assert str(info.value).startswith("r.xlsx: cannot find the required column(s) street, ")
    assert str(info.value).endswith("  Rename the headers in row 3 of the file to one of these.")
