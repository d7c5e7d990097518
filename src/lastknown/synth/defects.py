"""Bad request rows: a valid-looking row with exactly one defect, labelled with its reason code.

Each defect changes only the columns it needs, with the spellings seen in real requests
(``FNU``, ``BABY GIRL``, ``Failed to Provide``, ``Don't Care 12345`` ...). For
``DUPLICATE_ROW_ID`` two neighbouring otherwise-valid rows get the same id; both must be
rejected, and the truth holds one line for that id.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import polars as pl

IntArray = npt.NDArray[np.int64]

DUPLICATE_ROW_ID = "DUPLICATE_ROW_ID"

#: code -> {column: candidate values}; "{zip5}" and "{future}" / "{reversed}" are filled in.
_DEFECTS: dict[str, list[dict[str, str]]] = {
    "MISSING_NAME": [{"first_name": ""}, {"last_name": ""},
                     {"first_name": "", "middle_name": "", "last_name": ""}],
    "PLACEHOLDER_NAME": [{"first_name": "FNU"}, {"last_name": "LNU"}, {"first_name": "UNKNOWN"},
                         {"last_name": "Unknown"}, {"first_name": "BABY GIRL", "middle_name": ""},
                         {"first_name": "Baby Boy", "middle_name": ""}],
    "MISSING_ADDRESS": [{"street": "", "unit": ""},
                        {"street": "", "unit": "", "city": "", "state": "", "zip": ""}],
    "PLACEHOLDER_ADDRESS": [{"street": v, "unit": ""} for v in (
        "UNKNOWN", "Failed to Provide", "Unknown Address", "NONE", "N/A", "XXX",
        "Don't Care {zip5}", "{zip5}")],
    "INVALID_STATE": [{"state": v} for v in ("XX", "ZZ", "QQ", "KK")],
    "INVALID_ZIP": [{"zip": v} for v in ("ABCDE", "123", "123456", "9021O", "1234567")],
    "MISSING_REMOVAL_ORDER_DATE": [{"removal_order_date": ""}],
    "INVALID_REMOVAL_ORDER_DATE": [{"removal_order_date": v} for v in (
        "not known", "2024-13-45", "31/31/2023", "{future}")],
    "MISSING_CASE_NUMBER": [{"removal_order_case_number": ""}],
    "MISSING_STATUTE": [{"statute": ""}],
    "STATUTE_NOT_AUTHORISED": [{"statute": v} for v in (
        "8 U.S.C. 1231(a)(1)", "18 U.S.C. 1326", "8 U.S.C. 1227(a)(2)", "8 U.S.C. 1357")],
    "MISSING_TAX_PERIOD": [{"tax_periods": ""}],
    "INVALID_TAX_PERIOD": [{"tax_periods": v} for v in ("20X3", "last year", "{reversed}",
                                                        "2099")],
    "INVALID_TIN": [{"tin": v} for v in ("12345678", "ABCDEFGHI", "1234567890", "12-345678")],
}
#: Every single-row defect code, in DESIGN order.
DEFECT_CODES: tuple[str, ...] = tuple(_DEFECTS)


def apply_defects(rng: np.random.Generator, rows: pl.DataFrame, truth: pl.DataFrame,
                  bad: IntArray, codes: npt.NDArray[np.str_], *, today: dt.date,
                  first_tax_year: int, years: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give rows ``bad[i]`` the defect ``codes[i]``; label them ``R`` in the truth."""
    n = rows.height
    code_col = np.full(n, "", dtype=object)
    code_col[bad] = codes
    variant = rng.integers(0, 1_000_000, n)
    future = (today + dt.timedelta(days=int(rng.integers(30, 400)))).isoformat()
    reversed_range = f"{first_tax_year + years - 1}-{first_tax_year}"
    if years == 1:
        reversed_range = f"{first_tax_year}-{first_tax_year - 1}"
    frame = rows.with_columns(pl.Series("_code", code_col.astype(str)),
                              pl.Series("_v", variant))
    updates: dict[str, pl.Expr] = {}
    for code, options in _DEFECTS.items():
        for i, change in enumerate(options):
            hit = (pl.col("_code") == code) & ((pl.col("_v") % len(options)) == i)
            for column, value in change.items():
                text = value.format(zip5="", future=future, reversed=reversed_range)
                expr = (pl.col("zip").str.slice(0, 5) if value == "{zip5}"
                        else pl.lit("Don't Care ") + pl.col("zip").str.slice(0, 5)
                        if value == "Don't Care {zip5}" else pl.lit(text))
                base = updates.get(column, pl.col(column))
                updates[column] = pl.when(hit).then(expr).otherwise(base)
    frame = frame.with_columns(**{c: e for c, e in updates.items()})

    # Duplicates: the second row of each adjacent pair takes the first row's id.
    dup = np.flatnonzero(codes == DUPLICATE_ROW_ID)
    ids = frame["request_row_id"].to_numpy().astype(object)
    first_of_pair, second_of_pair = bad[dup[0::2]], bad[dup[1::2]]
    ids[second_of_pair] = ids[first_of_pair]
    frame = frame.with_columns(pl.Series("request_row_id", ids.astype(str))).drop("_code", "_v")
    reason = np.full(n, "", dtype=object)
    reason[bad] = codes
    is_bad = np.zeros(n, dtype=bool)
    is_bad[bad] = True
    truth = truth.with_columns(
        pl.Series("request_row_id", ids.astype(str)),
        expected_outcome=pl.when(pl.Series(is_bad)).then(pl.lit("R"))
        .otherwise(pl.col("expected_outcome")),
        expected_reason=pl.Series(reason.astype(str)),
    )
    blank = ("expected_street", "expected_unit", "expected_city", "expected_state",
             "expected_zip", "expected_tax_year")
    truth = truth.with_columns(
        [pl.when(pl.Series(is_bad)).then(pl.lit("")).otherwise(pl.col(c)).alias(c) for c in blank])
    return frame, truth
