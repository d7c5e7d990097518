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
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

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


def _sheet_names(stem: str, rows: int, max_rows: int) -> list[str]:
    parts = max(1, -(-rows // max_rows))
    return [stem] if parts == 1 else [f"{stem}_{i}" for i in range(1, parts + 1)]


def write_xlsx_sheets(engine: Engine, sql: str, path: Path, *, columns: tuple[str, ...],
                      sheet_stem: str, max_rows: int, expected_rows: int,
                      batch_rows: int = 50_000) -> list[str]:
    """Stream the result of ``sql`` into a new workbook; return the sheet names.

    Rows come from the engine in Arrow batches of ``batch_rows``; the workbook is
    written in constant-memory mode. Over ``max_rows`` data rows the rows go on to
    ``<stem>_1``, ``<stem>_2`` ... each with the header. Every text value is written
    with ``write_string`` (never read as a formula, number or link); numbers with
    ``write_number``; NULL leaves the cell empty.
    """
    from lastknown.engines.duckdb import DuckDBEngine

    if not isinstance(engine, DuckDBEngine):
        raise PipelineError(f"the spreadsheet writer needs the duckdb engine, not {engine.name}")
    names = _sheet_names(sheet_stem, expected_rows, max_rows)
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False, "nan_inf_to_errors": False,
    })
    try:
        sheets = [_new_sheet(workbook, name, columns) for name in names]
        written = 0
        reader = engine.con.sql(sql).to_arrow_reader(batch_rows)
        for batch in reader:
            if tuple(batch.schema.names) != columns:
                raise PipelineError(f"{path.name}: columns {batch.schema.names} are not {columns}")
            values = [batch.column(i).to_pylist() for i in range(len(columns))]
            for row in zip(*values, strict=True):
                part, offset = divmod(written, max_rows)
                if part >= len(sheets):
                    raise PipelineError(f"{path.name}: more rows than the {expected_rows:,} "
                                        "counted before writing")
                _write_row(sheets[part], offset + 1, row)
                written += 1
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


def _write_row(sheet: Worksheet, row: int, values: tuple[Any, ...]) -> None:
    for col, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, str):
            status = sheet.write_string(row, col, value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise PipelineError(f"spreadsheet cell ({row}, {col}) has unexpected type "
                                f"{type(value).__name__}")
        else:
            status = sheet.write_number(row, col, value)
        if status != 0:
            raise PipelineError(f"spreadsheet cell ({row}, {col}) could not be written "
                                f"(xlsxwriter status {status}; text over 32,767 characters?)")
