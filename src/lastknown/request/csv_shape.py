"""The shape of a CSV request before DuckDB reads it: delimiter, header row, width.

Read from the file's first megabyte, in Python, so that a person gets an error
naming the row, the column, the cause and the fix instead of a parser's internals:

* an Excel ``sep=;`` first line sets the delimiter and is not a row of data;
* title rows above the header are recognised (a later row names three request
  columns) and the error says which ``--header-row`` to pass;
* a cell too large for a row is found and named with its column.

>>> shape = csv_shape("sep=;\\nRow ID;Last Name;City\\nR1;Lee;Boston\\n", "r.csv")
>>> shape.delimiter, shape.skip, shape.width, shape.header_row
(';', 1, 3, 2)
>>> csv_shape("Requests 2026\\n\\nRow ID,Last Name,City\\nR1,Lee,Boston\\n", "r.csv")
Traceback (most recent call last):
...
lastknown.errors.RequestFileError: r.csv: row 1 is not a header row (it names no request columns); row 3 looks like the header (`Row ID`, `Last Name`, `City`): pass --header-row 3, or delete the title rows above it
"""  # noqa: E501

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lastknown.errors import RequestFileError
from lastknown.request.headers import count_request_columns

DELIMITERS = (",", "\t", ";", "|")
TITLE_SEARCH_ROWS = 20
#: A header row wider than this is refused before any row is read: a cell typed far to
#: the right (Excel's last column, XFD, is the 16,384th) makes every row that wide, and a
#: few hundred KB of such a file took gigabytes of memory and minutes to stage.
MAX_COLUMNS = 1_000
_SEP_LINE = re.compile(r'^"?sep=(.)"?,*\s*$', re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class CsvShape:
    """``skip`` lines come before the header, which is file row ``header_row``."""

    delimiter: str
    skip: int
    width: int
    sep_line: bool = False
    mixed_newlines: bool = False

    @property
    def header_row(self) -> int:
        return self.skip + 1


def _delimiter(line: str) -> str:
    best = max(DELIMITERS, key=line.count)
    return best if line.count(best) else ","


def _fields(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
    except csv.Error:
        return []


def check_width(source: str, where: str, width: int) -> None:
    """Refuse a header row over :data:`MAX_COLUMNS` wide (CSV and XLSX alike)."""
    if width > MAX_COLUMNS:
        raise RequestFileError(
            f"{source}: {where} spans {width:,} columns; a request has at most "
            f"{MAX_COLUMNS:,}. Delete the columns right of the request's (and anything "
            "typed far to the right) and save it again")


def csv_shape(text: str, source: str, *, header_row: int | None = None) -> CsvShape:
    """The delimiter, lines to skip and header width of a CSV whose start is ``text``."""
    lines = text.lstrip("\ufeff").split("\n")
    lines = [line.rstrip("\r") for line in lines]
    skip = 0
    delimiter: str | None = None
    sep = _SEP_LINE.match(lines[0]) if lines else None
    if sep:
        delimiter, skip = sep.group(1), 1
    if header_row is not None:
        if header_row > len(lines):
            raise RequestFileError(f"{source}: --header-row {header_row} is beyond the "
                                   "file's first rows; give the row number of the header")
        skip = header_row - 1
    header = lines[skip] if skip < len(lines) else ""
    delimiter = delimiter or _delimiter(header)
    fields = _fields(header, delimiter)
    check_width(source, "the header row" if header_row is None else f"row {header_row}",
                len(fields))
    if not any(f.strip() for f in fields):
        where = f"row {skip + 1}" if skip else "the first row"
        fix = ("give the header's row number with --header-row" if header_row is None
               else "give the header's row number")
        raise RequestFileError(f"{source}: {where} is empty; it must hold the column "
                               f"headers ({fix})")
    if header_row is None and count_request_columns(fields) < 3:
        _refuse_title_rows(lines, skip, source, sep_delimiter=sep.group(1) if sep else None)
    crlf = text.count("\r\n")
    mixed = 0 < crlf < text.count("\n")
    return CsvShape(delimiter=delimiter, skip=skip, width=len(fields), sep_line=bool(sep),
                    mixed_newlines=mixed)


def _refuse_title_rows(lines: list[str], skip: int, source: str, *,
                       sep_delimiter: str | None) -> None:
    for number in range(skip + 2, min(len(lines), skip + 1 + TITLE_SEARCH_ROWS) + 1):
        line = lines[number - 1]
        fields = _fields(line, sep_delimiter or _delimiter(line))
        if count_request_columns(fields) >= 3:
            shown = ", ".join(f"`{f.strip()}`" for f in fields if f.strip())
            raise RequestFileError(
                f"{source}: row {skip + 1} is not a header row (it names no request "
                f"columns); row {number} looks like the header ({shown}): pass --header-row "
                f"{number}, or delete the title rows above it")


@contextmanager
def _no_field_limit() -> Iterator[None]:
    before = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def oversized_cell(path: Path, shape: CsvShape, line: int) -> str:
    """Where the longest cell of the record at ``line`` is, for a 'row too large' error."""
    with _no_field_limit(), path.open(encoding="utf-8", errors="replace", newline="") as f:
        records = csv.reader(f, delimiter=shape.delimiter)
        header: list[str] = []
        for number, record in enumerate(records, start=1):
            if number == shape.header_row:
                header = record
            if number == line:
                longest = max(range(len(record)), key=lambda i: len(record[i]), default=0)
                size = len(record[longest]) if record else 0
                name = header[longest] if longest < len(header) else "?"
                return (f"row {line}, column {longest + 1} (`{name}`) holds {size:,} "
                        "characters")
    return f"row {line} is too long"
