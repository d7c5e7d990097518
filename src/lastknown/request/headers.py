"""Map the request file's headers onto the canonical request columns.

Headers are compared loosely: accents, case, spaces and punctuation are ignored
(``Last Name``, ``LAST_NAME`` and ``last-name`` are one key, ``lastname``), and
common synonyms are known (``surname``, ``LNAME``, ``Family Name`` …). A case
number is never taken for an A-number: ``A-Number`` maps to nothing.

>>> header_key("Tax Year(s)")
'taxyears'
>>> map_headers(["Row ID", "Surname"], source="r.csv", require=False)
{0: 'request_row_id', 1: 'last_name'}
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from unidecode import unidecode

from lastknown.errors import RequestFileError

#: The columns of ``request_raw`` after the source_row, in order (docs/INTERNALS.md).
CANONICAL_COLUMNS: tuple[str, ...] = (
    "request_row_id", "first_name", "middle_name", "last_name", "street", "unit", "city",
    "state", "zip", "removal_order_date", "removal_order_case_number", "statute",
    "tax_periods", "tin",
)

#: Columns a request file must have (the name as first+last, or as one full_name).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "request_row_id", "street", "city", "state", "zip", "removal_order_date",
    "removal_order_case_number", "statute", "tax_periods",
)

#: Header spellings per column, as people write them; compared by :func:`header_key`.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "request_row_id": ("Request Row ID", "Row ID", "Request ID", "Record ID", "ID",
                       "Reference ID", "Ref ID", "Reference", "Ref No", "Reference Number",
                       "Request Number", "Request No", "Row Number", "Row No", "Line ID"),
    "first_name": ("First Name", "FNAME", "First", "Given Name", "Forename", "Given",
                   "Name First", "First Given Name"),
    "middle_name": ("Middle Name", "MNAME", "Middle", "Middle Initial", "MI", "Middle Names",
                    "Name Middle"),
    "last_name": ("Last Name", "LNAME", "Last", "Surname", "Surnames", "Family Name",
                  "Name Last", "Apellido", "Apellidos"),
    "full_name": ("Full Name", "Name", "Subject Name", "Person Name", "Complete Name"),
    "street": ("Street", "Street Address", "Address", "Address 1", "Address Line 1", "Addr1",
               "Addr", "Street 1", "Street Line 1", "Previous Address", "Prior Address",
               "Last Known Address", "Residence Address", "Home Address"),
    "unit": ("Unit", "Apt", "Apartment", "Apt No", "Apt Number", "Apartment Number", "Suite",
             "Ste", "Unit Number", "Unit No", "Address 2", "Address Line 2", "Addr2",
             "Street 2", "Apt Unit", "Apt Suite"),
    "city": ("City", "Town", "City Name", "Municipality", "Locality"),
    "state": ("State", "ST", "State Code", "State Abbreviation", "State Abbr"),
    "zip": ("ZIP", "Zip Code", "ZIP5", "ZIP9", "Postal Code", "Postcode", "Postal",
            "ZIP Postal Code"),
    "removal_order_date": ("Removal Order Date", "Order Date", "Date of Removal Order",
                           "Removal Date", "Final Order Date", "Date of Order",
                           "Final Order of Removal Date"),
    "removal_order_case_number": ("Removal Order Case Number", "Case Number", "Case No",
                                  "Case Num", "Case", "Case Nbr", "Case ID",
                                  "Order Case Number", "Removal Case Number"),
    "statute": ("Statute", "Statutes", "Authority", "Statutory Authority", "Legal Authority",
                "Statute Citation"),
    "tax_periods": ("Tax Periods", "Tax Period", "Tax Years", "Tax Year(s)", "Tax Year",
                    "Years", "Tax Yrs", "Periods", "Tax Periods Requested",
                    "Tax Years Requested", "Years Requested"),
    "tin": ("TIN", "SSN", "ITIN", "Taxpayer Identification Number", "Tax ID", "SSN/ITIN",
            "Social Security Number", "SSN or TIN", "TIN/SSN"),
}


def header_key(text: str) -> str:
    """A header's comparison key: ASCII, lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", unidecode(text).lower())


_KEY_TO_COLUMN: dict[str, str] = {
    header_key(spelling): column
    for column, spellings in SYNONYMS.items()
    for spelling in (column, *spellings)
}


def _expected() -> str:
    lines = [f"    {c}: e.g. {', '.join(SYNONYMS[c][:4])}" for c in REQUIRED_COLUMNS]
    lines.insert(1, "    first_name + last_name, or full_name: e.g. First Name, Last Name, "
                    "Full Name")
    return "\n".join(lines)


def count_request_columns(headers: Sequence[str | None]) -> int:
    """How many cells of a row name a request column (a header row names several).

    >>> count_request_columns(["Requests 2026", None])
    0
    >>> count_request_columns(["ID", "Surname", "Surname"])
    3
    """
    return sum(header_key(h or "") in _KEY_TO_COLUMN for h in headers)


def map_headers(headers: Sequence[str | None], *, source: str, require: bool = True,
                header_row: int | None = 1) -> dict[int, str]:
    """Column position -> canonical column for every header that maps.

    ``full_name`` is kept only when the file has no first/last name columns.
    Raises RequestFileError when two headers map to one column, or (``require``)
    when a required column is missing — naming the headers found and expected, and
    ``header_row`` (the file row holding them; ``None`` for a Parquet file's names).
    """
    mapping: dict[int, str] = {}
    seen: dict[str, int] = {}
    for position, header in enumerate(headers):
        column = _KEY_TO_COLUMN.get(header_key(header or ""))
        if column is None:
            continue
        if column in seen:
            first = headers[seen[column]]
            raise RequestFileError(
                f"{source}: headers `{first}` (column {seen[column] + 1}) and `{header}` "
                f"(column {position + 1}) both mean `{column}`: rename or delete one of them")
        seen[column] = position
        mapping[position] = column
    has_parts = "first_name" in seen or "last_name" in seen
    if has_parts and "full_name" in seen:
        del mapping[seen.pop("full_name")]
    if not require:
        return mapping
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if "full_name" not in seen:
        missing += [c for c in ("first_name", "last_name") if c not in seen]
    if missing:
        found = ", ".join(f"`{h}`" for h in headers if h) or "(no headers)"
        fix = (f"Rename the headers in row {header_row} of the file" if header_row
               else "Rename the file's columns")
        raise RequestFileError(
            f"{source}: cannot find the required column(s) {', '.join(missing)}.\n"
            f"  Headers found: {found}\n  Expected (any of these spellings):\n{_expected()}\n"
            f"  {fix} to one of these.")
    return mapping
