"""A worksheet's data rows written a batch at a time, as xlsxwriter writes them one cell at a time.

xlsxwriter is pure Python and spends about 5 µs on each cell (argument checks, a dict per
row, three regular expressions, an XML call and a file write per cell). A national batch's
``matched.xlsx`` (550,000 rows of 11 columns) took its child process about 25 s, and the
ledger commits only after that child has finished, so those seconds sit on publishing's
critical path. Here the ``<row>`` and ``<c>`` elements of a whole Arrow batch are built
column by column — the rare text that needs escaping is found by one vectorised regular
expression per column and handled on its own — and written to the worksheet's row-data
file in one call. Everything else in the workbook (header, styles, dimension, zip) is still
xlsxwriter's own; the worksheet must be in ``constant_memory`` mode with default rows and
unformatted columns (:func:`can_write_rows` says so; the workbook writer refuses
anything else with a PipelineError).

The bytes are xlsxwriter's: ``tests/test_sheet_rows.py`` writes awkward values both ways
and compares the files. One deliberate difference: xlsxwriter writes a text that starts
with ``<r>`` and ends with ``</r>`` as raw rich-text markup; here it is escaped like any
other text (what a requester typed never becomes markup in the package).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet
from xlsxwriter.xmlwriter import XMLwriter

from lastknown.errors import PipelineError

#: Excel's longest text in a cell, in UTF-16 code units.
TEXT_LIMIT = 32_767

#: Text a plain f-string cannot carry as xlsxwriter writes it: control characters and
#: ``_xHHHH_`` (escaped as ``_xHHHH_``), XML's ``& < >``, U+FFFE/U+FFFF, and a first or last
#: character that is (or may be, outside ASCII) whitespace (``xml:space="preserve"``).
#: RE2 syntax (pyarrow); its ``\\s`` is ASCII only, hence any non-ASCII end goes this way.
_SPECIAL = (r"[\x00-\x08\x0b-\x1f&<>\x{FFFE}\x{FFFF}]|_x[0-9a-fA-F]{4}_"
            r"|^[\s\x{80}-\x{10FFFF}]|[\s\x{80}-\x{10FFFF}]$")


def can_write_rows(sheet: Worksheet) -> bool:
    """Whether :func:`write_rows` writes what xlsxwriter would for ``sheet``."""
    default_rows = (sheet.default_row_height == sheet.original_row_height
                    and not sheet.row_info and sheet.excel_version == 2007)
    plain_columns = all(getattr(info, "column_format", None) is None
                        for info in sheet.col_info.values())
    return bool(sheet.constant_memory) and default_rows and plain_columns


def write_rows(sheet: Worksheet, first_row: int, batch: pa.RecordBatch,
               name: str = "spreadsheet") -> None:
    """Write ``batch`` as ``sheet``'s rows ``first_row`` onwards (0-based; rows before it
    are written or pending). NULL leaves a cell empty; a row of NULLs is not written."""
    if batch.num_rows == 0:
        return
    if first_row <= sheet.previous_row:
        raise PipelineError(f"{name}: row {first_row} cannot be written after row "
                            f"{sheet.previous_row}")
    numbers = range(first_row + 1, first_row + batch.num_rows + 1)
    columns = [_cells(batch.column(i), xl_col_to_name(i), numbers, name, batch.schema[i].name)
               for i in range(batch.num_columns)]
    bodies = list(map("".join, zip(*columns, strict=True)))
    filled = [i for i, body in enumerate(bodies) if body]
    if not filled:
        return
    last_row = first_row + filled[-1]
    used = [i for i in range(batch.num_columns) if batch.column(i).null_count < batch.num_rows]
    if (sheet._check_dimensions(first_row + filled[0], used[0])
            or sheet._check_dimensions(last_row, used[-1])):
        raise PipelineError(f"{name}: row {last_row} is beyond a worksheet's last row")
    sheet._write_single_row(first_row)  # flushes the row xlsxwriter still holds (the header)
    sheet.fh.write("".join([f'<row r="{r}">{body}</row>'
                            for r, body in zip(numbers, bodies, strict=True) if body]))
    sheet.previous_row = last_row  # what xlsxwriter's row bookkeeping expects next


def _cells(array: pa.Array, letter: str, numbers: range, name: str,
           column: str) -> list[str]:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _text_cells(array, letter, numbers, name, column)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _number_cells(array, letter, numbers, name, column)
    raise PipelineError(f"{name}: column {column} has type {kind}, neither text nor number")


def _text_cells(array: pa.Array, letter: str, numbers: range, name: str,
                column: str) -> list[str]:
    if pa.types.is_string_view(array.type):  # pyarrow's regex kernels take no views
        array = array.cast(pa.large_string())
    values = array.to_pylist()
    cells = [f'<c r="{letter}{r}" t="inlineStr"><is><t>{v}</t></is></c>' if v is not None
             else "" for r, v in zip(numbers, values, strict=True)]
    special = pc.or_(pc.match_substring_regex(array, _SPECIAL),
                     pc.greater(pc.utf8_length(array), TEXT_LIMIT // 2))
    for i in pc.indices_nonzero(pc.fill_null(special, False)).to_pylist():
        cells[i] = _special_text_cell(values[i], f"{letter}{numbers[i]}", name, column)
    return cells


def _special_text_cell(value: str, ref: str, name: str, column: str) -> str:
    """One text cell as xlsxwriter's constant-memory path writes it (but never as markup)."""
    if len(value) > TEXT_LIMIT // 2 and len(value.encode("utf-16-le")) // 2 > TEXT_LIMIT:
        raise PipelineError(f"{name}: cell {ref} (column {column}) holds more than "
                            f"{TEXT_LIMIT:,} characters, more than a spreadsheet cell takes")
    text = XMLwriter._escape_control_characters(value)
    preserve = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}" t="inlineStr"><is><t{preserve}>{text}</t></is></c>'


def _number_cells(array: pa.Array, letter: str, numbers: range, name: str,
                  column: str) -> list[str]:
    if pa.types.is_floating(array.type):
        bad = pc.or_(pc.is_nan(array), pc.is_inf(array))
        if pc.any(bad).as_py():
            row = numbers[pc.indices_nonzero(pc.fill_null(bad, False))[0].as_py()]
            raise PipelineError(f"{name}: cell {letter}{row} (column {column}) is not a "
                                "finite number (NaN or infinity)")
    return [f'<c r="{letter}{r}"><v>{float(v):.16G}</v></c>' if v is not None else ""
            for r, v in zip(numbers, array.to_pylist(), strict=True)]
