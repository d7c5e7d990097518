"""Load a request file's cells, as text, into a DuckDB staging table.

Each reader leaves a table with one VARCHAR column per header position
(``c0``, ``c1`` …) and says how to compute ``source_row``, the row number a
person sees in the file (header = row 1, first data row = row 2).

* CSV is read by DuckDB itself (parallel, bounded memory). A file that is not
  UTF-8 is first transcoded to UTF-8 in streamed 4 MiB chunks. The row number is
  the row's position in the file + 1 (``Engine.numbered``: DuckDB's ``rowid``, which
  follows file order because the table is built with ``preserve_insertion_order =
  true``). It counts CSV *records*: a quoted field holding a line break makes that
  record span two lines, and DuckDB skips blank lines, so after such a record (or a
  blank line) ``source_row`` is the record number, not the line number. Exported
  spreadsheets have neither. The header is row 1, the row after an Excel ``sep=``
  line, or ``--header-row``
  (:mod:`lastknown.request.csv_shape` finds title rows and names the fix).
* XLSX is streamed with openpyxl (read-only) in Arrow chunks of 50,000 rows; the
  row number is the sheet's own row number. Wholly empty rows are skipped, and so
  are title rows above the header (the header is the first row naming three
  request columns). The sheet is the one visible sheet with such a header, or the
  one named; hidden sheets are read only when named.
* Parquet is read by the engine; row number = 0-based row index + 2.
"""

from __future__ import annotations

import codecs
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import pyarrow as pa
from charset_normalizer import from_bytes

from lastknown.engines.base import Engine
from lastknown.errors import CsvReadError, EngineError, RequestFileError
from lastknown.request.csv_shape import CsvShape, check_width, csv_shape, oversized_cell
from lastknown.request.headers import count_request_columns

SAMPLE_BYTES = 1 << 20
CHUNK_BYTES = 4 << 20
#: An XLSX is staged this many rows at a time, and at most this many cells at a time
#: (a wide sheet in fewer rows).
XLSX_CHUNK_ROWS = 50_000
XLSX_CHUNK_CELLS = 1_000_000
#: A zip bomb is refused before it is parsed: an XLSX whose parts unpack to more than
#: this many times its size, once they unpack to more than the floor (a 2 MB file of
#: identical rows unpacks to 2 GB: at the 50,000 rows a second measured, 15 minutes).
XLSX_MAX_RATIO = 100
XLSX_RATIO_FLOOR = 64 << 20
#: The same for Parquet, by rows: 8 MB of Parquet declaring 20 million rows (a unique
#: id and ten repeated values) took 51 s and 3.3 GB to stage. Real requests take tens
#: of bytes a row.
PARQUET_MAX_ROWS_PER_BYTE = 1
PARQUET_ROWS_FLOOR = 1_000_000
MAX_LINE_BYTES = 2_000_000
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Staged:
    """Cells of a request file in ``table``: columns ``c0``… by header position.

    ``source_row_sql`` and ``data_filter`` may use ``_lk_rowid``, the row's 0-based
    position in the file (:meth:`~lastknown.engines.Engine.numbered`); read the table
    through :attr:`relation` to have it.
    """

    table: str
    #: ``table`` with ``_lk_rowid``, aliased ``s`` (the engine's ``numbered``)
    relation: str
    headers: list[str | None]
    source_row_sql: str
    data_filter: str
    encoding: str | None = None
    sheet: str | None = None
    notes: tuple[str, ...] = ()
    header_row: int | None = None  # the file row of the headers (None: Parquet names)

    @property
    def columns(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.headers))]



# -- CSV -------------------------------------------------------------------------------------
def _codec(name: str, path: Path) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise RequestFileError(f"{path.name}: unknown encoding `{name}`; use e.g. utf-8, "
                               "cp1252 (Windows), latin-1") from exc


def detect_encoding(sample: bytes) -> str:
    """The codec of a CSV sample: UTF-8 (with/without BOM), UTF-16 by BOM, else Windows-1252.

    A sample that is not UTF-8 is read as Windows-1252 (the superset of Latin-1's
    printable characters that US spreadsheets use) whenever it decodes as such:
    statistical detection misreads short Western samples (``€`` as Baltic cp775).
    Only bytes that Windows-1252 leaves undefined bring in charset-normalizer.
    """
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample).best()
    return codecs.lookup(best.encoding).name if best is not None else "latin-1"


def _transcode(path: Path, encoding: str, out: Path) -> None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(CHUNK_BYTES):
            try:
                dst.write(decoder.decode(chunk))
            except UnicodeDecodeError as exc:
                raise RequestFileError(
                    f"{path.name}: byte {offset + exc.start:,} is not valid {encoding} text; "
                    "save the file as UTF-8 or pass the right --encoding") from exc
            offset += len(chunk)
        dst.write(decoder.decode(b"", final=True))


def _csv_error(path: Path, source: Path, shape: CsvShape, exc: CsvReadError) -> RequestFileError:
    where = f" row {exc.line}" if exc.line is not None else ""
    if exc.line_too_long and exc.line is not None:
        cell = oversized_cell(source, shape, exc.line)
        return RequestFileError(
            f"{path.name}: {cell}, more than a row may hold ({MAX_LINE_BYTES:,} bytes): a "
            "request cell holds a name, an address or a date. The file is damaged, or a "
            "quote (\") is missing so that many lines ran together: fix that row")
    if exc.fields is not None:
        what = (f"has {exc.fields[1]} fields where the header (row {shape.header_row}) has "
                f"{exc.fields[0]}: put fields that contain the delimiter "
                f"`{_shown(shape.delimiter)}` in double quotes, or fill in missing fields")
    elif shape.mixed_newlines:
        what = ("mixes Windows (CRLF) and Unix (LF) line endings: save the file again with one "
                "kind, e.g. from the spreadsheet as CSV")
    elif exc.not_utf8:
        what = "is not valid UTF-8 text: pass the file's --encoding (e.g. cp1252)"
    else:
        what = (f"cannot be read as CSV with the delimiter `{_shown(shape.delimiter)}` and "
                "double quotes (\"): check for a quote that is opened and never closed, or "
                "save the file again from the spreadsheet as CSV")
    return RequestFileError(f"{path.name}{where} {what}")


def _shown(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else delimiter


def stage_csv(engine: Engine, path: Path, *, encoding: str | None,
              table: str, workdir: Path, header_row: int | None = None) -> Staged:
    """Read a CSV (any common encoding) into ``table``; rowid follows file order.

    The header is row 1, or the row after an Excel ``sep=`` line, or ``header_row``.
    """
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES)
    codec = _codec(encoding, path) if encoding else detect_encoding(sample)
    for attempt in (codec, "cp1252", "latin-1"):
        source = path
        if attempt not in ("utf-8", "utf-8-sig"):
            source = workdir / "request-utf8.csv"
            try:
                _transcode(path, attempt, source)
            except RequestFileError:
                if encoding is not None or attempt == "latin-1":
                    raise
                continue  # detected wrongly: a byte later on does not fit; try the next
        with source.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
        text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head)
        shape = csv_shape(text, path.name, header_row=header_row)
        try:
            engine.read_csv(table, source, width=shape.width, skip=shape.skip,
                            delimiter=shape.delimiter, max_line_bytes=MAX_LINE_BYTES)
        except CsvReadError as exc:
            error = _csv_error(path, source, shape, exc)
            if encoding is None and attempt == "utf-8" and "UTF-8" in str(error):
                continue  # a non-UTF-8 byte beyond the sample: retry as Windows-1252
            raise error from exc
        cells = ", ".join(f"c{i}" for i in range(shape.width))
        rows = engine.fetchall(f"SELECT {cells} FROM {engine.numbered(table)} s "
                               "WHERE _lk_rowid = 0")
        first = rows[0] if rows else ()
        headers: list[str | None] = [None if h is None else str(h).lstrip("\ufeff")
                                     for h in first]
        return Staged(table=table, relation=f"{engine.numbered(table)} s", headers=headers,
                      header_row=shape.header_row,
                      source_row_sql=f"_lk_rowid + {shape.header_row}",
                      data_filter="_lk_rowid > 0", encoding=attempt)
    raise RequestFileError(f"{path.name}: cannot decode the file; pass its --encoding")


# -- XLSX ------------------------------------------------------------------------------------
def cell_text(value: Any) -> str | None:
    """A spreadsheet cell as text: integers without ``.0``, dates as ISO ``YYYY-MM-DD``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _rows(ws: Any, first: int = 1) -> Iterator[tuple[int, tuple[Any, ...]]]:
    return enumerate(ws.iter_rows(min_row=first, values_only=True), start=first)


def _is_table(ws: Any) -> bool:
    return hasattr(ws, "reset_dimensions")  # a worksheet, not a chart sheet


def _has_request_columns(ws: Any) -> bool:
    return _is_table(ws) and _find_header(_rows(ws), strict=True) is not None


def _names(sheets: list[Any]) -> str:
    return ", ".join(f"`{ws.title}`" for ws in sheets)


def _choose_sheet(path: Path, book: Any, sheet: str | None) -> tuple[Any, list[str]]:
    """The worksheet to read, and notes on request-like sheets that were not read.

    Without ``sheet``: the one visible sheet with request columns (hidden sheets are never
    read unless named); several such sheets, or none among several sheets, is an error that
    asks for ``--sheet``. With ``sheet``: that sheet (hidden or not), noting any other
    visible sheet that also has request columns, whose rows are not read.
    """
    visible = [ws for ws in book.worksheets if ws.sheet_state == "visible"]
    hidden = [ws for ws in book.worksheets if ws.sheet_state != "visible"]
    if sheet is not None:
        if sheet not in book.sheetnames:
            raise RequestFileError(f"{path.name}: no sheet named `{sheet}`; the sheets are "
                                   + ", ".join(f"`{n}`" for n in book.sheetnames))
        chosen = book[sheet]
        others = [ws for ws in visible if ws is not chosen and _has_request_columns(ws)]
        notes = [f"{path.name}: only sheet `{sheet}` was read; sheet `{ws.title}` also has "
                 "request columns and its rows were not read" for ws in others]
        return chosen, notes
    if not visible:
        raise RequestFileError(f"{path.name}: the workbook has no visible worksheets; pass "
                               "--sheet NAME to read a hidden one")
    data = [ws for ws in visible if _has_request_columns(ws)]
    if len(data) == 1:
        return data[0], []
    if len(data) > 1:
        raise RequestFileError(
            f"{path.name}: sheets {_names(data)} all have request columns: pass --sheet NAME "
            "to say which one to answer (put rows meant for one request on one sheet)")
    if len(visible) == 1:
        return visible[0], []  # its headers are reported by the header mapping
    hint = (f"; hidden sheets ({_names(hidden)}) are read only when named with --sheet"
            if hidden else "")
    raise RequestFileError(
        f"{path.name}: none of the sheets {_names(visible)} has a header row naming the "
        f"request columns (Row ID, Last Name, Street, City ...){hint}. Pass --sheet NAME "
        "for the sheet that holds the request, and name its columns in its header row")


def _check_unpacked_size(path: Path, handle: Any) -> None:
    """Refuse a zip bomb: parts declaring more than :data:`XLSX_MAX_RATIO` times the
    file's size (past :data:`XLSX_RATIO_FLOOR`). A part cannot unpack to more than it
    declares (zipfile stops there, and the CRC check then fails)."""
    with zipfile.ZipFile(handle) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    handle.seek(0)
    packed = max(path.stat().st_size, 1)
    if unpacked > XLSX_RATIO_FLOOR and unpacked > XLSX_MAX_RATIO * packed:
        raise RequestFileError(
            f"{path.name} would unpack to {unpacked / 2**20:,.0f} MiB from "
            f"{packed / 2**20:,.1f} MiB ({unpacked // packed:,} times; a workbook saved by "
            "Excel packs about 5 to 20 times): it is not an ordinary workbook. Save it "
            "again from Excel as .xlsx, or as CSV")


def _open_sheet(path: Path, handle: Any, sheet: str | None) -> tuple[Any, Any, list[str]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        _check_unpacked_size(path, handle)
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise RequestFileError(f"{path.name} cannot be opened as an Excel workbook (.xlsx): "
                               f"{exc}; save it again from Excel as .xlsx, or as CSV") from exc
    try:
        if not book.worksheets:
            raise RequestFileError(f"{path.name}: the workbook has no worksheets")
        ws, notes = _choose_sheet(path, book, sheet)
        if not _is_table(ws):
            raise RequestFileError(f"{path.name}: sheet `{ws.title}` is a chart, not a table")
    except (RequestFileError, ParseError):
        book.close()
        raise
    ws.reset_dimensions()
    return book, ws, notes


def _find_header(rows: Iterator[tuple[int, tuple[Any, ...]]], *,
                 strict: bool = False) -> tuple[int, list[str | None]] | None:
    """The header row's number and cells: the first of the first 20 non-empty rows that
    names 3 request columns (title rows above it are skipped), else the first non-empty
    row (``None`` when ``strict``)."""
    first: tuple[int, list[str | None]] | None = None
    for seen, (number, row) in enumerate(
            r for r in rows if any(v not in (None, "") for v in r[1])):
        texts = [cell_text(v) for v in row]
        first = first or (number, texts)
        if count_request_columns(texts) >= 3:
            return number, texts
        if seen >= 20:
            break
    return None if strict else first


def stage_xlsx(engine: Engine, path: Path, *, sheet: str | None,
               table: str, header_row: int | None = None) -> Staged:
    """Stream one worksheet into ``table`` in Arrow chunks; row numbers are the sheet's.

    The header is found among the first rows, or is row ``header_row`` when given. XML
    that is not well-formed, or that expands entities past the parser's limit (an
    entity bomb) or names an external one, is refused as such.
    """
    try:  # the file is ours to close: openpyxl leaves it open when a sheet's XML fails
        with path.open("rb") as handle:
            return _stage_sheet(engine, path, handle, sheet=sheet, table=table,
                                header_row=header_row)
    except ParseError as exc:
        raise RequestFileError(f"{path.name}: part of the workbook is not well-formed XML "
                               f"({exc}); save it again from Excel as .xlsx, or as CSV"
                               ) from exc


def _stage_sheet(engine: Engine, path: Path, handle: Any, *,
                 sheet: str | None, table: str, header_row: int | None) -> Staged:
    book, ws, notes = _open_sheet(path, handle, sheet)
    try:
        rows = _rows(ws, header_row or 1)
        if header_row is None:
            header_row, headers = _find_header(rows) or (1, [])
        else:
            headers = [cell_text(v) for v in next(rows, (0, ()))[1]]
            if all(h is None or not h.strip() for h in headers):
                raise RequestFileError(f"{path.name}: row {header_row} of sheet `{ws.title}` "
                                       "is empty; give the header's row number with "
                                       "--header-row")
        while headers and headers[-1] in (None, ""):
            headers.pop()
        if not headers:
            raise RequestFileError(f"{path.name}: sheet `{ws.title}` is empty")
        width = len(headers)
        check_width(path.name, f"the header row of sheet `{ws.title}`", width)
        chunk_rows = max(1, min(XLSX_CHUNK_ROWS, XLSX_CHUNK_CELLS // width))
        cols = ", ".join(f"c{i} VARCHAR" for i in range(width))
        engine.execute(f"CREATE OR REPLACE TABLE {table} (source_row BIGINT, {cols})")
        numbers: list[int] = []
        cells: list[list[str | None]] = [[] for _ in range(width)]

        def flush() -> None:
            data = {"source_row": pa.array(numbers, pa.int64())}
            data.update({f"c{i}": pa.array(cells[i], pa.string()) for i in range(width)})
            engine.register_arrow("_lk_xlsx_chunk", pa.table(data))
            engine.execute(f"INSERT INTO {table} SELECT * FROM _lk_xlsx_chunk")
            engine.unregister("_lk_xlsx_chunk")
            numbers.clear()
            for column in cells:
                column.clear()

        for number, row in rows:
            texts = [cell_text(v) for v in row[:width]]
            if all(t is None or not t.strip() for t in texts):
                continue
            numbers.append(number)
            for i in range(width):
                cells[i].append(texts[i] if i < len(texts) else None)
            if len(numbers) >= chunk_rows:
                flush()
        flush()
    finally:
        book.close()
    for note in notes:
        log.warning(note)
    return Staged(table=table, relation=f"{table} s", headers=headers,
                  source_row_sql="source_row", data_filter="true", sheet=ws.title,
                  notes=tuple(notes), header_row=header_row)


# -- Parquet ---------------------------------------------------------------------------------
def _check_parquet_rows(engine: Engine, path: Path) -> None:
    """Refuse a Parquet file declaring more rows than :data:`PARQUET_MAX_ROWS_PER_BYTE`
    per byte of file (past :data:`PARQUET_ROWS_FLOOR`): run-length encoding packs
    repeated values without bound."""
    rows, size = engine.parquet_row_count(path), path.stat().st_size
    if rows > PARQUET_ROWS_FLOOR and rows > PARQUET_MAX_ROWS_PER_BYTE * size:
        raise RequestFileError(
            f"{path.name} declares {rows:,} rows in {size / 2**20:,.1f} MiB, more rows than "
            "bytes: it is not an ordinary request. Give the request as CSV, or write the "
            "Parquet file without repeating values so heavily")


def stage_parquet(engine: Engine, path: Path, *, table: str) -> Staged:
    """Read a Parquet file into ``table``, every column cast to VARCHAR."""
    view = f"{table}_parquet"
    try:
        # the engine reads the file (Engine.register_parquet); lk_source_row counts from 1
        engine.register_parquet(view, path, positions=True)
        names = [n for n in engine.columns(view) if n not in ("lk_source_file", "lk_source_row")]
        check_width(path.name, "the file", len(names))
        _check_parquet_rows(engine, path)
        casts = ", ".join(
            f"CAST(\"{n.replace(chr(34), chr(34) * 2)}\" AS VARCHAR) AS c{i}"
            for i, n in enumerate(names))
        engine.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT lk_source_row + 1 "
                       f"AS source_row, {casts} FROM {view}")
    except EngineError as exc:
        raise RequestFileError(f"{path.name} cannot be read as Parquet: "
                               f"{exc.detail.splitlines()[0][:200]}") from exc
    finally:
        engine.execute(f"DROP VIEW IF EXISTS {view}")
    headers: list[str | None] = list(names)
    return Staged(table=table, relation=f"{table} s", headers=headers,
                  source_row_sql="source_row", data_filter="true")
