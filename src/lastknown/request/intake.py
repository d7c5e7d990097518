"""Read a request file (CSV, XLSX or Parquet) into the ``request_raw`` table.

``request_raw`` (docs/INTERNALS.md) has one row per data row of the file:
``source_row`` (the row number a person sees; header = 1) and the canonical
columns as trimmed VARCHAR, empty → NULL, absent optional columns NULL. A
``full_name`` column is split into first/middle/last over its DISTINCT values
(:mod:`lastknown.request.names`); so is a whole name keyed into the first- or the
last-name column while the other is empty (``Garcia Lopez, Maria`` under Last Name).
Text that went through a program reading UTF-8 as Windows-1252 (``JOSÃ‰``) is put back
(:mod:`lastknown.request.mojibake`). Wholly empty rows are not data rows and are
skipped (their row numbers are not reused).

>>> result = read_request(engine, Path("request.csv"))  # doctest: +SKIP
>>> result.row_count, result.column_mapping["Last Name"]  # doctest: +SKIP
(1000, 'last_name')
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lastknown.engines.base import Engine
from lastknown.errors import EngineError, PipelineError, RequestFileError
from lastknown.request.headers import CANONICAL_COLUMNS, map_headers
from lastknown.request.mojibake import MOJIBAKE_MARKERS, undo_mojibake
from lastknown.request.names import parse_full_names_arrow
from lastknown.request.readers import Staged, stage_csv, stage_parquet, stage_xlsx

_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
            ".parquet": "parquet", ".pq": "parquet"}
_A_FORMAT = {"csv": "a CSV", "xlsx": "an XLSX", "parquet": "a Parquet"}
_MAGIC = {"xlsx": b"PK\x03\x04", "parquet": b"PAR1"}
_NOT_TEXT = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image",
             b"GIF8": "a GIF image", b"%PDF": "a PDF document", b"II*\x00": "a TIFF image",
             b"MM\x00*": "a TIFF image", b"\xd0\xcf\x11\xe0": "an Excel 97-2003 (.xls) or "
             "other old Office file", b"\x1f\x8b": "a gzip archive", b"7z\xbc\xaf": "a 7-Zip "
             "archive", b"Rar!": "a RAR archive", b"SQLite format 3": "a SQLite database"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_STAGE = "_lk_intake_stage"
_NAMES = "_lk_intake_full_names"
_TEXT_COLUMNS = ("first_name", "middle_name", "last_name", "street", "unit", "city")
_TRIM = "'^[\\s\u00a0\ufeff]+|[\\s\u00a0\ufeff]+$'"


@dataclass(frozen=True, kw_only=True)
class IntakeResult:
    """What was read: the file, its format and hash, rows, and how headers were mapped.

    ``sheet`` is the worksheet read (XLSX); ``warnings`` name request-like rows not read.
    """

    path: Path
    format: str
    sha256: str
    row_count: int
    column_mapping: dict[str, str]
    encoding: str | None
    sheet: str | None = None
    warnings: tuple[str, ...] = ()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    """``csv``, ``xlsx`` or ``parquet`` from the extension, checked against the content."""
    if not path.is_file():
        raise RequestFileError(f"request file {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise RequestFileError(f"{path.name} is an old Excel 97-2003 workbook: open it in "
                               "Excel and save it as .xlsx (or CSV)")
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise RequestFileError(f"{path.name}: unsupported extension `{path.suffix}`; give the "
                               "request as .csv, .xlsx or .parquet")
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise RequestFileError(f"{path.name} is empty (0 bytes)")
    actual = next((k for k, magic in _MAGIC.items() if head == magic), "csv")
    if actual != fmt:
        raise RequestFileError(f"{path.name} has the extension {path.suffix} but its content "
                               f"is {actual.upper()}: rename it to .{actual}")
    if fmt == "csv":
        _refuse_binary(path)
    return fmt


def _refuse_binary(path: Path) -> None:
    """A .csv that is an image, a PDF, an archive ... is named as such, not parsed."""
    with path.open("rb") as f:
        head = f.read(8192)
    what = next((kind for magic, kind in _NOT_TEXT.items() if head.startswith(magic)), None)
    if what is None and b"\x00" in head and not head.startswith(_UTF16_BOMS):
        what = "a binary file (it holds NUL bytes)"
    if what is not None:
        raise RequestFileError(f"{path.name} is not a CSV/spreadsheet: it looks like {what}. "
                               "Give the request as .csv, .xlsx or .parquet")


def _clean(column: str) -> str:
    return f"NULLIF(regexp_replace({column}, {_TRIM}, '', 'g'), '')"


def _parse_full_names(engine: Engine, staged: Staged, column: str) -> None:
    _parse_names(engine, f"SELECT DISTINCT {_clean(column)} AS full_name FROM {staged.relation} "
                      f"WHERE {staged.data_filter} AND {_clean(column)} IS NOT NULL")


def _parse_names(engine: Engine, distinct_names_sql: str) -> None:
    engine.execute(f"CREATE OR REPLACE TABLE {_NAMES} (full_name VARCHAR, first_name VARCHAR, "
                   "middle_name VARCHAR, last_name VARCHAR)")
    # streams the distinct names while the engine inserts the parts
    for batch in engine.stream_arrow(distinct_names_sql, 50_000, alongside=True):
        engine.register_arrow("_lk_names_chunk", parse_full_names_arrow(batch.column(0)))
        engine.execute(f"INSERT INTO {_NAMES} SELECT * FROM _lk_names_chunk")
        engine.unregister("_lk_names_chunk")


def _one_column_sql(table: str) -> str:
    """One name column of ``table`` filled, the other empty, the filled one written
    ``LAST, FIRST`` (a comma). Without a comma a value such as ``DE LA CRUZ`` or ``MARIA
    ELENA`` is one part of a name, not a whole one: the row lacks the other part and is
    rejected ``MISSING_NAME``, as the request contract says."""
    first, last = f"{table}.first_name", f"{table}.last_name"
    return (f"({first} IS NULL) <> ({last} IS NULL) "
            f"AND contains(coalesce({first}, {last}), ',')")


def _split_names_in_one_column(engine: Engine, table: str) -> None:
    """A whole name in the first- or last-name column, the other empty, split as a
    ``full_name`` is; a middle name already given is kept. A value that does not split
    into a first and a last name stays as it is (the row is then ``MISSING_NAME``)."""
    _parse_names(engine, f"SELECT DISTINCT coalesce(first_name, last_name) FROM {table} "
                         f"WHERE {_one_column_sql(table)}")
    engine.execute(
        f"UPDATE {table} SET first_name = n.first_name, last_name = n.last_name, "
        f"middle_name = coalesce({table}.middle_name, n.middle_name) FROM {_NAMES} n "
        f"WHERE n.full_name = coalesce({table}.first_name, {table}.last_name) "
        f"AND n.first_name IS NOT NULL AND n.last_name IS NOT NULL "
        f"AND {_one_column_sql(table)}")


def _undo_mojibake(engine: Engine, table: str) -> None:
    """Names and address text read with the wrong code page, put back (DISTINCT values
    holding a marker only)."""
    for column in _TEXT_COLUMNS:
        values = [v for (v,) in engine.fetchall(
            f"SELECT DISTINCT {column} FROM {table} "
            f"WHERE regexp_matches({column}, '[{MOJIBAKE_MARKERS}]')")]
        fixed = [(v, undo_mojibake(v)) for v in values]
        fixed = [(v, f) for v, f in fixed if f != v]
        for v, f in fixed:
            engine.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", [f, v])


def _build_raw(engine: Engine, staged: Staged, mapping: dict[int, str],
               table_name: str) -> None:
    by_column = {canonical: f"s.c{pos}" for pos, canonical in mapping.items()}
    full_name = by_column.pop("full_name", None)
    join = ""
    if full_name is not None:
        _parse_full_names(engine, staged, full_name)
        for part in ("first_name", "middle_name", "last_name"):
            by_column[part] = f"n.{part}"
        join = f" LEFT JOIN {_NAMES} n ON n.full_name = {_clean(full_name)}"
    selects = [f"{staged.source_row_sql} AS source_row"]
    for column in CANONICAL_COLUMNS:
        expr = by_column.get(column)
        if expr is None:
            selects.append(f"CAST(NULL AS VARCHAR) AS {column}")
        elif expr.startswith("n."):
            selects.append(f"{expr} AS {column}")
        else:
            selects.append(f"{_clean(expr)} AS {column}")
    any_cell = " OR ".join(f"{_clean('s.' + c)} IS NOT NULL" for c in staged.columns)
    engine.execute(
        f"CREATE OR REPLACE TABLE {table_name} AS SELECT {', '.join(selects)} "
        f"FROM {staged.relation}{join} WHERE {staged.data_filter} AND ({any_cell})")
    _undo_mojibake(engine, table_name)
    if full_name is None:
        _split_names_in_one_column(engine, table_name)


def read_request(engine: Engine, path: Path, *, encoding: str | None = None,
                 sheet: str | None = None, header_row: int | None = None,
                 table_name: str = "request_raw") -> IntakeResult:
    """Read the request file at ``path`` into ``table_name`` (see module doc).

    ``header_row`` (CSV, XLSX) is the file row holding the headers when title rows come
    first (an XLSX's header is otherwise found among its first rows).
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table_name):
        raise PipelineError(f"read_request: `{table_name}` is not a plain table name")
    fmt = detect_format(path)
    if header_row is not None and fmt == "parquet":
        raise RequestFileError(f"{path.name}: --header-row applies to CSV and XLSX files; a "
                               "Parquet file's column names are its headers")
    if sheet is not None and fmt != "xlsx":
        raise RequestFileError(f"{path.name}: --sheet applies to XLSX workbooks; this is "
                               f"{_A_FORMAT[fmt]} file: leave --sheet out")
    if encoding is not None and fmt != "csv":
        raise RequestFileError(f"{path.name}: --encoding applies to CSV files; this is "
                               f"{_A_FORMAT[fmt]} file, whose text is always Unicode: leave "
                               "--encoding out")
    try:
        with tempfile.TemporaryDirectory(prefix="lastknown-intake-") as tmp:
            with engine.insertion_order_kept():
                if fmt == "csv":
                    staged = stage_csv(engine, path, encoding=encoding, table=_STAGE,
                                       workdir=Path(tmp), header_row=header_row)
                elif fmt == "xlsx":
                    staged = stage_xlsx(engine, path, sheet=sheet, table=_STAGE,
                                        header_row=header_row)
                else:
                    staged = stage_parquet(engine, path, table=_STAGE)
            mapping = map_headers(staged.headers, source=path.name,
                                  header_row=staged.header_row)
            _build_raw(engine, staged, mapping, table_name)
        row_count = engine.count(table_name)
    except EngineError as exc:
        raise RequestFileError(f"{path.name} cannot be read: "
                               f"{exc.detail.splitlines()[0][:200]}") from exc
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        engine.execute(f"DROP TABLE IF EXISTS {_NAMES}")
    if row_count == 0:
        raise RequestFileError(f"{path.name} has a header row but no data rows")
    return IntakeResult(
        path=path, format=fmt, sha256=_sha256(path), row_count=row_count,
        column_mapping={str(staged.headers[p]): c for p, c in sorted(mapping.items())},
        encoding=staged.encoding, sheet=staged.sheet, warnings=staged.notes,
    )
