"""Rejection reason codes, in the order DESIGN.md lists them.

A rejected row carries every code that applies, ``;``-joined in this order.
``MISSING_ROW_ID`` is an addition to DESIGN's list (see docs/INTERNALS.md) and
comes last but one, next to the other row-identity code.

>>> REASON_CODES.index("MISSING_NAME")
0
"""

from __future__ import annotations

#: Every reason code, with what it means; the order is the order codes are joined in.
REASONS: dict[str, str] = {
    "MISSING_NAME": "first or last name is empty",
    "PLACEHOLDER_NAME": "a name is placeholder text (UNKNOWN, FNU, LNU, BABY GIRL, JOHN DOE …)",
    "MISSING_ADDRESS": "street, city, state or ZIP is empty",
    "PLACEHOLDER_ADDRESS": "street or city is placeholder text or not an address",
    "INVALID_STATE": "state is not a USPS two-letter code",
    "INVALID_ZIP": "ZIP is not 5 or 9 digits",
    "MISSING_REMOVAL_ORDER_DATE": "removal order date is empty",
    "INVALID_REMOVAL_ORDER_DATE": "removal order date is not a real past date",
    "MISSING_CASE_NUMBER": "removal order case number is empty",
    "MISSING_STATUTE": "statute is empty",
    "STATUTE_NOT_AUTHORISED": "statute is not on the batch's authorised list",
    "MISSING_TAX_PERIOD": "tax periods are empty",
    "INVALID_TAX_PERIOD": "tax periods cannot be read or lie outside the years on file",
    "INVALID_TIN": "TIN is given but is not 9 digits",
    "MISSING_ROW_ID": "request_row_id is empty",
    "DUPLICATE_ROW_ID": "request_row_id is used by more than one row",
}

REASON_CODES: tuple[str, ...] = tuple(REASONS)

#: What joins the codes of one row in ``reason_codes`` (rejected.csv and the tables).
SEPARATOR = ";"


def reason_counts_sql(table: str) -> str:
    """SQL counting the rows of ``table`` (``source_row``, ``reason_codes``) per reason
    code: ``code, n``, ordered by code; a row counts once per code it carries. The one
    way the validation result, the package's summary and the ledger's batch record count
    rejections.

    >>> from lastknown.engines import make_engine
    >>> rows = ("(VALUES (2, 'INVALID_ZIP;MISSING_NAME'), (3, 'INVALID_ZIP')) "
    ...         "t(source_row, reason_codes)")
    >>> with make_engine() as engine:
    ...     engine.fetchall(reason_counts_sql(rows))
    [('INVALID_ZIP', 2), ('MISSING_NAME', 1)]
    """
    return ("SELECT code, count(*) AS n FROM (SELECT DISTINCT source_row, "
            f"trim(unnest(string_split(reason_codes, '{SEPARATOR}'))) AS code FROM {table}) "
            "WHERE code <> '' GROUP BY code ORDER BY code")
