"""Request intake: encodings, formats, row numbers, header mapping, bad files."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastknown.engines import DuckDBEngine
from lastknown.errors import RequestFileError
from lastknown.request import readers
from lastknown.request.headers import CANONICAL_COLUMNS, SYNONYMS, map_headers
from lastknown.request.intake import read_request
from lastknown.request.names import parse_full_name

HEADER = ["Row ID", "First Name", "Last Name", "Street Address", "Apt", "City", "State",
          "Zip Code", "Removal Order Date", "Case Number", "Statute", "Tax Year(s)"]
ROW = ["R1", "José", "Muñoz", "123 Main St", "", "Springfield", "IL", "62701", "2024-03-05",
       "C-1", "8 U.S.C. 1253(a)(1)", "2021-2023"]


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    with DuckDBEngine() as e:
        yield e  # type: ignore[misc]


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8",
              delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def raw(engine: DuckDBEngine, columns: str = "*") -> list[tuple[object, ...]]:
    return engine.fetchall(f"SELECT {columns} FROM request_raw ORDER BY source_row")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252"])
def test_encodings_keep_accented_names(engine: DuckDBEngine, tmp_path: Path,
                                       encoding: str) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER, ROW, ["R2", "Zoë", "Peña", *ROW[3:]]],
                     encoding=encoding)
    result = read_request(engine, path)
    assert raw(engine, "source_row, first_name, last_name") == [
        (2, "José", "Muñoz"), (3, "Zoë", "Peña")]
    assert result.row_count == 2
    assert result.encoding == ("utf-8" if encoding.startswith("utf") else "cp1252")


def test_mojibake_is_put_back(engine: DuckDBEngine, tmp_path: Path) -> None:
    """UTF-8 read as Windows-1252 upstream and saved again: JOSÃ‰ is JOSÉ."""
    path = write_csv(tmp_path / "r.csv", [
        HEADER, ["R1", "JOSÃ‰", "MuÃ±oz", "12 PeÃ±a St", "", "SÃ£o Paulo", *ROW[6:]],
        ["R2", "MARÃ\x8dA", "Oâ€™Brien", *ROW[3:]], ["R3", "Ã", "Smith", *ROW[3:]]])
    read_request(engine, path)
    assert raw(engine, "first_name, last_name, street, city") == [
        ("JOSÉ", "Muñoz", "12 Peña St", "São Paulo"), ("MARÍA", "O’Brien", "123 Main St",
                                                       "Springfield"),
        ("Ã", "Smith", "123 Main St", "Springfield")]


@pytest.mark.parametrize(("first", "last", "want"), [
    ("", "Garcia Lopez, Maria Elena", ("Maria", "Elena", "Garcia Lopez")),
    ("Fowler, Michel", "", ("Michel", None, "Fowler")),
    # without a comma, one part of a name: stays, and the row is rejected MISSING_NAME
    ("Kenneth Jordan", "", ("Kenneth Jordan", None, None)),
    ("", "De La Cruz", (None, None, "De La Cruz")),
    ("", "Woodyard,", (None, None, "Woodyard,")),  # no given name to find: stays, rejected
    ("", "Garcia", (None, None, "Garcia")),
    ("Ana", "Lopez Diaz", ("Ana", None, "Lopez Diaz")),  # both filled: as given
])
def test_a_whole_name_in_one_name_column_is_split(
        engine: DuckDBEngine, tmp_path: Path, first: str, last: str,
        want: tuple[str | None, ...]) -> None:
    header = [*HEADER[:2], "Middle Name", *HEADER[2:]]
    path = write_csv(tmp_path / "r.csv", [header, ["R1", first, "", last, *ROW[3:]]])
    read_request(engine, path)
    assert raw(engine, "first_name, middle_name, last_name") == [want]


def test_cp1252_only_characters_and_explicit_encoding(engine: DuckDBEngine,
                                                      tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER, ["R1", "Ana", "O’Brien", *ROW[3:]]],
                     encoding="cp1252")
    read_request(engine, path)
    assert raw(engine, "last_name") == [("O’Brien",)]
    read_request(engine, path, encoding="latin-1")
    assert raw(engine, "last_name") != [("O’Brien",)]
    with pytest.raises(RequestFileError, match="unknown encoding"):
        read_request(engine, path, encoding="klingon")


def test_non_utf8_byte_after_the_sample_falls_back(engine: DuckDBEngine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [HEADER] + [[f"R{i}", "Ana", "Lopez", *ROW[3:]] for i in range(200)]
    rows.append(["R200", "José", "Muñoz", *ROW[3:]])
    path = write_csv(tmp_path / "r.csv", rows, encoding="cp1252")
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 256)
    result = read_request(engine, path)
    assert result.encoding == "cp1252"
    assert raw(engine, "last_name")[-1] == ("Muñoz",)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(engine: DuckDBEngine, tmp_path: Path, delimiter: str) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER, ROW], delimiter=delimiter)
    read_request(engine, path)
    assert raw(engine, "street, statute") == [("123 Main St", "8 U.S.C. 1253(a)(1)")]


def test_trimmed_empty_is_null_and_absent_optional_columns_are_null(
        engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER, ["  R1 ", "\u00a0Ana ", *ROW[2:4], "   ",
                                                   *ROW[5:]]])
    read_request(engine, path)
    assert raw(engine, "request_row_id, first_name, unit, middle_name, tin") == [
        ("R1", "Ana", None, None, None)]
    assert [c for c in engine.columns("request_raw")] == ["source_row", *CANONICAL_COLUMNS]


def test_row_numbers_follow_the_file_in_parallel_reads(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with DuckDBEngine(threads=2) as engine:
        columns = ", ".join(f"'x' AS {c}" for c in CANONICAL_COLUMNS[1:])
        engine.execute(f"COPY (SELECT CAST(i AS VARCHAR) AS request_row_id, {columns} "
                       f"FROM range(300000) t(i)) TO '{path}' (HEADER true)")
        assert read_request(engine, path).row_count == 300_000
        wrong = engine.fetchall("SELECT count(*) FROM request_raw "
                                "WHERE source_row <> CAST(request_row_id AS BIGINT) + 2")
        assert wrong[0][0] == 0
        setting = engine.fetchall("SELECT current_setting('preserve_insertion_order')")
        assert setting[0][0] is False


def test_quoted_newline_counts_records(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER, ["R1", "Ana", "Lopez", "123 Main St\nRear",
                                                   *ROW[4:]], ["R2", *ROW[1:]]])
    read_request(engine, path)
    assert raw(engine, "source_row, request_row_id, street") == [
        (2, "R1", "123 Main St\nRear"), (3, "R2", "123 Main St")]


@pytest.mark.parametrize("column", sorted(SYNONYMS))
def test_header_synonyms(column: str) -> None:
    for spelling in (column, *SYNONYMS[column]):
        for variant in (spelling, spelling.upper(), spelling.lower().replace(" ", "_")):
            assert map_headers([variant], source="r.csv", require=False) == {0: column}


@pytest.mark.parametrize("header", ["A-Number", "Alien Number", "Notes", ""])
def test_unrelated_headers_map_to_nothing(header: str) -> None:
    assert map_headers([header], source="r.csv", require=False) == {}


def test_column_mapping_is_reported(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [[*HEADER, "A-Number"], [*ROW, "A123"]])
    result = read_request(engine, path)
    assert result.column_mapping["Zip Code"] == "zip"
    assert result.column_mapping["Tax Year(s)"] == "tax_periods"
    assert "A-Number" not in result.column_mapping
    assert result.format == "csv"
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_required_column_is_one_clear_error(engine: DuckDBEngine,
                                                    tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [HEADER[:7], ROW[:7]])
    with pytest.raises(RequestFileError) as info:
        read_request(engine, path)
    message = str(info.value)
    assert "r.csv" in message and "zip" in message and "`Street Address`" in message
    assert "Zip Code" in message  # an expected spelling


def test_duplicate_mapped_headers(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [[*HEADER, "Surname"], [*ROW, "X"]])
    with pytest.raises(RequestFileError, match="`Last Name`.*`Surname`"):
        read_request(engine, path)


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("r.csv", b"", "empty"),
    ("r.csv", ",".join(HEADER).encode() + b"\n", "no data rows"),
    ("r.csv", b"\n\n", "first row is empty"),
    ("r.doc", b"x", "unsupported extension"),
    ("r.xls", b"x", "save it as .xlsx"),
    ("r.csv", b"PK\x03\x04rest", "rename it to .xlsx"),
    ("r.xlsx", b"a,b\n1,2\n", "rename it to .csv"),
    ("r.xlsx", b"PK\x03\x04broken", "cannot be opened"),
    ("r.parquet", b"PAR1broken", "cannot be read as Parquet"),
])
def test_bad_files(engine: DuckDBEngine, tmp_path: Path, name: str, content: bytes,
                   needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RequestFileError, match=needle) as info:
        read_request(engine, path)
    assert name in str(info.value)


def test_missing_file(engine: DuckDBEngine, tmp_path: Path) -> None:
    with pytest.raises(RequestFileError, match="does not exist"):
        read_request(engine, tmp_path / "absent.csv")


def test_ragged_row_names_the_row(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(ROW) + "\n"
                    "R2,Ana,Lopez,12 Elm St, Rear,Apt 4,Boston,MA,02134,2024-03-05,C,"
                    "8 USC 1253(a)(1),2023\n", encoding="utf-8")
    with pytest.raises(RequestFileError, match=r"r\.csv row 3 has 13 fields .* 12"):
        read_request(engine, path)


def make_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Cover"
    cover["A1"] = "not the data"
    sheet = book.create_sheet("Requests")
    sheet.append(["Request list"])
    sheet.append([])
    sheet.append(HEADER)
    sheet.append(["R1", "José", "Muñoz", "123 Main St", None, "Boston", "MA", 2134,
                  datetime(2024, 3, 5), 7, "8 U.S.C. 1253(a)(1)", 2023])
    sheet.append([])
    sheet.append(["R2", "Ana", "Lopez", "12 Elm St", "Apt 4", "Boston", "MA", 2134.5,
                  date(2024, 3, 6), "C-2", "8 U.S.C. 1253(a)(1)", "2022;2023"])
    book.save(path)
    return path


def test_xlsx_sheet_selection_and_cell_text(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "r.xlsx")
    result = read_request(engine, path, sheet="Requests")
    assert (result.format, result.row_count, result.encoding) == ("xlsx", 2, None)
    assert raw(engine, "source_row, first_name, zip, removal_order_date, "
                       "removal_order_case_number, tax_periods") == [
        (4, "José", "2134", "2024-03-05", "7", "2023"),
        (6, "Ana", "2134.5", "2024-03-06", "C-2", "2022;2023")]
    unnamed = read_request(engine, path)  # the cover has no request columns: not a choice
    assert (unnamed.sheet, unnamed.row_count, unnamed.warnings) == ("Requests", 2, ())
    with pytest.raises(RequestFileError, match="`Cover`, `Requests`"):
        read_request(engine, path, sheet="Data")


def test_xlsx_in_chunks(engine: DuckDBEngine, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for i in range(25):
        sheet.append([f"R{i}", *ROW[1:]])
    book.save(tmp_path / "r.xlsx")
    monkeypatch.setattr(readers, "XLSX_CHUNK_ROWS", 7)
    assert read_request(engine, tmp_path / "r.xlsx").row_count == 25
    assert raw(engine, "source_row")[-1] == (26,)


def test_parquet(engine: DuckDBEngine, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    engine.execute(f"COPY (SELECT 'R' || i AS request_id, 'Ana' AS fname, 'Lopez' AS lname, "
                   "'1 Main St' AS address, 'Boston' AS city, 'MA' AS state, 2134 AS zip, "
                   "DATE '2024-03-05' AS order_date, 'C' AS case_no, 'x' AS statute, "
                   f"2023 AS tax_year FROM range(3) t(i)) TO '{path}' (FORMAT parquet)")
    result = read_request(engine, path)
    assert result.format == "parquet"
    assert raw(engine, "source_row, request_row_id, zip, removal_order_date") == [
        (2, "R0", "2134", "2024-03-05"), (3, "R1", "2134", "2024-03-05"),
        (4, "R2", "2134", "2024-03-05")]


def test_full_name_column_is_parsed(engine: DuckDBEngine, tmp_path: Path) -> None:
    header = ["Row ID", "Full Name", *HEADER[3:]]
    rows = [header, ["R1", "Jose Luis Garcia Lopez", *ROW[3:]],
            ["R2", "de la Cruz, Maria", *ROW[3:]], ["R3", "Jose Luis Garcia Lopez", *ROW[3:]],
            ["R4", "", *ROW[3:]]]
    result = read_request(engine, write_csv(tmp_path / "r.csv", rows))
    assert result.column_mapping["Full Name"] == "full_name"
    assert raw(engine, "first_name, middle_name, last_name") == [
        ("Jose", "Luis", "Garcia Lopez"), ("Maria", None, "de la Cruz"),
        ("Jose", "Luis", "Garcia Lopez"), (None, None, None)]


@pytest.mark.parametrize(("text", "parts"), [
    ("Jose Luis Garcia Lopez", ("Jose", "Luis", "Garcia Lopez")),
    ("Garcia Lopez, Jose Luis", ("Jose", "Luis", "Garcia Lopez")),
    ("Maria de la Cruz", ("Maria", None, "de la Cruz")),
    ("Juan Carlos de la Cruz Reyes", ("Juan", "Carlos", "de la Cruz Reyes")),
    ("Jose Garcia y Lopez", ("Jose", None, "Garcia y Lopez")),
    ("Maria del Carmen Rodriguez Lopez", ("Maria", "del Carmen", "Rodriguez Lopez")),
    ("John Paul Smith", ("John", "Paul", "Smith")),
    ("John Smith Jr", ("John", None, "Smith Jr")),
    ("John Smith, Jr.", ("John", None, "Smith Jr.")),
    ("Dr. Jane Q Public III", ("Jane", "Q", "Public III")),
    ("Ludwig van Beethoven", ("Ludwig", None, "van Beethoven")),
    ("Madonna", (None, None, "Madonna")),
    ("  ", (None, None, None)),
])
def test_parse_full_name(text: str, parts: tuple[str | None, ...]) -> None:
    assert parse_full_name(text) == parts


_TRIMMED = re.compile("^[\t\n\f\r \u00a0\ufeff]+|[\t\n\f\r \u00a0\ufeff]+$")
_header_choices = st.sampled_from(
    [s for c in CANONICAL_COLUMNS for s in (c, *SYNONYMS[c])] + ["Notes", "A-Number", ""])
_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=10)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(headers=st.lists(_header_choices, min_size=1, max_size=8),
       body=st.lists(st.lists(_cell, min_size=8, max_size=8), max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
def test_intake_never_crashes(tmp_path: Path, headers: list[str], body: list[list[str]],
                              encoding: str) -> None:
    path = tmp_path / "fuzz.csv"
    width = len(headers)
    rows = [headers] + [r[:width] for r in body]
    with path.open("w", encoding=encoding, errors="replace", newline="") as f:
        csv.writer(f).writerows(rows)
    try:  # what the headers alone make of the file: the error intake must give, or none
        map_headers(headers, source="fuzz.csv")
        expected = None
    except RequestFileError as exc:
        expected = str(exc).splitlines()[0]
    if any("\x00" in c for r in rows for c in r):
        expected = "fuzz.csv is not a CSV/spreadsheet: it looks like a binary file"
    elif not any(h.strip() for h in headers):
        expected = "fuzz.csv: the first row is empty"
    elif expected is None and not any(_TRIMMED.sub("", c) for r in rows[1:] for c in r):
        expected = "fuzz.csv has a header row but no data rows"
    with DuckDBEngine() as engine:
        if expected is not None:
            with pytest.raises(RequestFileError) as info:
                read_request(engine, path)
            assert str(info.value).startswith(expected)
            return
        result = read_request(engine, path)
        assert result.row_count == engine.count("request_raw")
        assert 0 < result.row_count <= len(body)
        numbers = [r[0] for r in raw(engine, "source_row")]
        assert len(set(numbers)) == len(numbers)
        assert all(2 <= n <= len(body) + 1 for n in numbers)
