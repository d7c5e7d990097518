"""Cell safety and the streaming spreadsheet writer shared by the response writers.

Spreadsheet programs run a cell as a formula when its text starts with ``=``,
``+``, ``-`` or ``@`` (tab and CR can hide such a start). A request file is
written by someone outside the agency, so every text cell that leaves the system
is *neutralised*: a single quote ``'`` is put in front, and the program shows the
text as text. Numbers are never neutralised; they stay numbers.

The rule exists twice, once as SQL (:func:`neutralise_sql`, used on whole tables
inside the engine) and once in Python (:func:`neutralise`, for single values and
tests); both read :data:`FORMULA_TRIGGERS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from lastknown.disclose.sheet_rows import can_write_rows, write_rows
from lastknown.engines.base import Engine
from lastknown.errors import PipelineError

FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""A text cell that starts with one of these is prefixed with :data:`NEUTRALISER`."""

NEUTRALISER = "'"


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled).

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def neutralise_sql(expr: str) -> str:
    """A SQL expression: the VARCHAR ``expr`` neutralised; NULL stays NULL.

    >>> neutralise_sql("name")  # doctest: +ELLIPSIS
    "CASE WHEN left(name, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || name ..."
    """
    triggers = ", ".join(
        f"chr({ord(t)})" if not t.isprintable() else sql_literal(t) for t in FORMULA_TRIGGERS
    )
    return (
        f"CASE WHEN left({expr}, 1) IN ({triggers}) "
        f"THEN {sql_literal(NEUTRALISER)} || {expr} ELSE {expr} END"
    )


def neutralise(value: str | None) -> str | None:
    """The Python twin of :func:`neutralise_sql`.

    >>> neutralise("=HYPERLINK(1)"), neutralise("Main St"), neutralise(None)
    ("'=HYPERLINK(1)", 'Main St', None)
    """
    if value is not None and value.startswith(FORMULA_TRIGGERS):
        return NEUTRALISER + value
    return value


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (files may be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def progress_bar_off(engine: Engine) -> Iterator[None]:
    """Keep the engine's own progress display off stdout while the package streams out
    (:meth:`~lastknown.engines.Engine.progress_off`)."""
    with engine.progress_off():
        yield


def _sheet_names(stem: str, rows: int, max_rows: int) -> list[str]:
    parts = max(1, -(-rows // max_rows))
    return [stem] if parts == 1 else [f"{stem}_{i}" for i in range(1, parts + 1)]


def write_xlsx_sheets(engine: Engine, sql: str, path: Path, *, columns: tuple[str, ...],
                      sheet_stem: str, max_rows: int, expected_rows: int,
                      batch_rows: int = 50_000, created: datetime | None = None) -> list[str]:
    """Stream the result of ``sql`` into a new workbook; return the sheet names.

    Rows come from the engine in Arrow batches of ``batch_rows`` (see
    :func:`write_xlsx_batches` for the layout and cell rules).
    """
    return write_xlsx_batches(engine.stream_arrow(sql, batch_rows), path,
                              columns=columns, sheet_stem=sheet_stem, max_rows=max_rows,
                              expected_rows=expected_rows, created=created)


def write_xlsx_batches(batches: Iterable[pa.RecordBatch], path: Path, *,
                       columns: tuple[str, ...], sheet_stem: str, max_rows: int,
                       expected_rows: int, created: datetime | None = None) -> list[str]:
    """Write Arrow record batches into a new workbook; return the sheet names.

    The workbook is written in constant-memory mode. Over ``max_rows`` data rows the
    rows go on to ``<stem>_1``, ``<stem>_2`` ... each with the header. Every text value
    is written as ``write_string`` writes it (never read as a formula, number or link);
    numbers as ``write_number`` does; NULL leaves the cell empty. The data rows go in a
    batch at a time (:mod:`lastknown.disclose.sheet_rows`: the same bytes, ~4 × faster with zlib).
    ``created`` fixes the workbook's creation date, so the same rows give the same bytes.
    """
    names = _sheet_names(sheet_stem, expected_rows, max_rows)
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False, "nan_inf_to_errors": False,
    })
    if created is not None:
        workbook.set_properties({"created": created})
    try:
        sheets = [_new_sheet(workbook, name, columns) for name in names]
        if not all(can_write_rows(sheet) for sheet in sheets):
            raise PipelineError(f"{path.name}: this xlsxwriter lays out rows in a way "
                                "lastknown.disclose.sheet_rows does not write")
        written = 0
        for batch in batches:
            if tuple(batch.schema.names) != columns:
                raise PipelineError(f"{path.name}: columns {batch.schema.names} are not {columns}")
            if written + batch.num_rows > len(sheets) * max_rows:
                raise PipelineError(f"{path.name}: more rows than the {expected_rows:,} "
                                    "counted before writing")
            start = 0
            while start < batch.num_rows:
                part, offset = divmod(written + start, max_rows)
                size = min(batch.num_rows - start, max_rows - offset)
                write_rows(sheets[part], offset + 1, batch.slice(start, size), path.name)
                start += size
            written += batch.num_rows
    finally:
        workbook.close()
    if written != expected_rows:
        raise PipelineError(f"{path.name}: wrote {written:,} rows, expected {expected_rows:,}")
    return names


def _new_sheet(workbook: Workbook, name: str, columns: tuple[str, ...]) -> Worksheet:
    sheet = workbook.add_worksheet(name)
    sheet.set_column(0, len(columns) - 1, 16)
    sheet.freeze_panes(1, 0)
    for col, title in enumerate(columns):
        sheet.write_string(0, col, title)
    return sheet
