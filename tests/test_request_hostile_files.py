"""Request files made to hurt the reader: as wide as Excel allows, entity bombs and
external entities, zip bombs, run-length-encoded Parquet. Each is refused as a request-file
error (what the submitter sees as the failed batch's message) before it is staged, in
little time and memory, where before it took seconds to minutes and gigabytes, or failed
the job as an internal error. (The service's attacks are in test_service_attacks.py.)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pytest

from lastknown.engines import DuckDBEngine
from lastknown.errors import RequestFileError
from lastknown.request import readers
from lastknown.request.headers import REQUIRED_COLUMNS
from lastknown.request.intake import read_request

HEADER = ["request_row_id", "first_name", "last_name", *REQUIRED_COLUMNS[1:]]
#: Ten rows fitting :data:`HEADER`.
ROWS = "".join(f"{n},Dana,Example,1 Main St,Springfield,IL,62701,2024-01-05,A{n},"
               "8 USC 1326,2023\n" for n in range(1, 11))


SHEET = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def header_cells(header: list[str]) -> str:
    return "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>'
                   for i, h in enumerate(header))


def wide_sheet(header: list[str], rows: int) -> str:
    """A header row with a cell in the sheet's last column (XFD): openpyxl hands back
    every row padded to that width."""
    data = "".join(f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>' for i in range(2, rows))
    return (f'{SHEET}<dimension ref="A1:XFD1048576"/><sheetData><row r="1">'
            f'{header_cells(header)}<c r="XFD1" t="inlineStr"><is><t>x</t></is></c></row>'
            f'{data}</sheetData></worksheet>')


def entity_sheet(header: list[str], kind: str) -> str:
    """A billion-laughs entity bomb, or an external entity (XXE), in a header cell."""
    if kind == "bomb":
        levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
        dtd, use = f'<!DOCTYPE w [<!ENTITY l0 "lollollol">{levels}]>', "&l9;"
    else:
        dtd, use = '<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"
    cells = header_cells([*header[:-1], use])
    return (f'<?xml version="1.0"?>{dtd}{SHEET}<sheetData><row r="1">{cells}</row>'
            '<row r="2"><c r="A2"><v>1</v></c></row></sheetData></worksheet>')


def write_xlsx(path: Path, sheet: str) -> None:
    """A one-sheet workbook, written part by part, around ``sheet`` (the sheet's XML)."""
    main = "http://schemas.openxmlformats.org/"
    rel = f'{main}officeDocument/2006/relationships'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", f'<Types xmlns="{main}package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                   'package.relationships+xml"/><Default Extension="xml" '
                   'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                   'sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                   'worksheet+xml"/></Types>')
        z.writestr("_rels/.rels", f'<Relationships xmlns="{main}package/2006/relationships">'
                   f'<Relationship Id="rId1" Type="{rel}/officeDocument" '
                   'Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{main}spreadsheetml/2006/main" '
                   f'xmlns:r="{rel}"><sheets><sheet name="Requests" sheetId="1" r:id="rId1"/>'
                   '</sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{main}package/2006/'
                   f'relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
                   'Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", sheet)


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_request_as_wide_as_excel_allows_is_refused_before_it_is_read(
        tmp_path: Path, engine: DuckDBEngine, kind: str) -> None:
    """40 KB of XLSX whose rows each span 16,384 columns took 22 s and 2.9 GB to stage;
    a 400 KB CSV with a 200,000-field header 42 s and 1.2 GB."""

    path = tmp_path / f"wide.{kind}"
    if kind == "xlsx":
        write_xlsx(path, wide_sheet(HEADER, rows=5000))
    else:
        wide = HEADER + [""] * (16_383 - len(HEADER)) + ["x"]
        path.write_text(",".join(wide) + "\n" + ROWS * 30, encoding="utf-8")
    assert path.stat().st_size < 100_000
    with pytest.raises(RequestFileError, match="spans 16,384 columns"):
        read_request(engine, path)


@pytest.mark.parametrize("kind", ["bomb", "external"])
def test_an_xlsx_with_an_entity_bomb_or_external_entity_is_refused_as_such(
        tmp_path: Path, engine: DuckDBEngine, kind: str) -> None:
    """The parser (expat) refuses both; intake must say so as a request-file error, not
    fail the job with "internal error"."""

    path = tmp_path / "entities.xlsx"
    write_xlsx(path, entity_sheet(HEADER, kind))
    with pytest.raises(RequestFileError, match="well-formed XML"):
        read_request(engine, path)


def test_an_xlsx_zip_bomb_is_refused_before_it_is_parsed(
        tmp_path: Path, engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical rows pack about 1,000 times: a 2 MB upload would unpack to 2 GB and be
    parsed for a quarter of an hour. (The floor is lowered so the bomb stays small.)"""

    monkeypatch.setattr(readers, "XLSX_RATIO_FLOOR", 1 << 20)
    rows = '<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 100_000
    path = tmp_path / "bomb.xlsx"
    write_xlsx(path, f'{SHEET}<sheetData><row r="1">{header_cells(HEADER)}</row>{rows}'
                     '</sheetData></worksheet>')
    assert path.stat().st_size < 60_000
    with pytest.raises(RequestFileError, match="would unpack"):
        read_request(engine, path)


def test_a_parquet_file_of_run_length_encoded_rows_is_refused_before_it_is_read(
        tmp_path: Path, engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated values pack without bound: 8 MB declaring 20 million rows took 51 s and
    3.3 GB to stage. (The floor is lowered so the file stays small.)"""

    monkeypatch.setattr(readers, "PARQUET_ROWS_FLOOR", 1_000)
    path = tmp_path / "rle.parquet"
    columns = ", ".join(f"'1' AS \"{name}\"" for name in HEADER)
    duckdb.sql(f"COPY (SELECT {columns} FROM range(200000)) TO '{path}' (FORMAT parquet)")
    assert path.stat().st_size < 50_000
    with pytest.raises(RequestFileError, match="more rows than"):
        read_request(engine, path)
