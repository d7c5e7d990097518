"""Validate ``request_raw`` into ``request_valid`` and ``request_rejected``, in SQL.

Every row of ``request_raw`` lands in exactly one of the two tables (checked in
code: a failure raises PipelineError). A rejected row carries *all* of its
problems at once: reason codes ``;``-joined in DESIGN order and a detail text
naming each column and how to fix it (:mod:`lastknown.request.rules`).

Dates, tax periods and statutes are parsed over their DISTINCT values, everything else
row-wise in one pass; nothing is fetched into Python but counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lastknown.engines.base import Engine
from lastknown.errors import PipelineError
from lastknown.normalize.placeholders import clean_sql, optional_placeholder_sql, statute_sql
from lastknown.request.batch import Batch
from lastknown.request.reasons import REASON_CODES, reason_counts_sql
from lastknown.request.rules import (
    detail_sql,
    flags_sql,
    helper_flags_sql,
    parse_date_sql,
    reason_codes_sql,
    row_checks,
    tax_periods_sql,
)

_DATES = "_lk_valid_dates"
_PERIODS = "_lk_valid_periods"
_CHECKED = "_lk_valid_checked"
_STATUTES = "_lk_valid_statutes"


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    """How many rows passed, how many were rejected, and how often each reason occurred."""

    valid_count: int
    rejected_count: int
    reason_counts: dict[str, int]
    #: valid rows asking for some years that are not on file (answered from the rest)
    periods_partly_on_file: int = 0


def _lookups(engine: Engine, raw: str, *, years: Sequence[int], today: date) -> None:
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE {_DATES} AS SELECT text, {parse_date_sql('text')} "
        f"AS order_date FROM (SELECT DISTINCT removal_order_date AS text FROM {raw} "
        "WHERE removal_order_date IS NOT NULL)")
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE {_STATUTES} AS SELECT text, {statute_sql('text')} "
        f"AS statute_n FROM (SELECT DISTINCT statute AS text FROM {raw} "
        "WHERE statute IS NOT NULL)")
    norm, shape, parts = tax_periods_sql("text")
    on_file_list = "[" + ", ".join(str(int(y)) for y in sorted(set(years))) + "]"
    years_sql = ("list_sort(list_distinct(flatten(list_transform(parts, lambda p: "
                 "generate_series(CAST(p[1:4] AS INTEGER), "
                 "CAST(CASE WHEN length(p) = 9 THEN p[6:9] ELSE p[1:4] END AS INTEGER))))))")
    backwards = "list_bool_or(list_transform(parts, lambda p: length(p) = 9 AND p[6:9] < p[1:4]))"
    on_file = f"length(list_filter(tax_years, lambda y: list_contains({on_file_list}, y)))"
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE {_PERIODS} AS "
        f"WITH n AS (SELECT text, {norm} AS t FROM (SELECT DISTINCT tax_periods AS text "
        f"FROM {raw} WHERE tax_periods IS NOT NULL)), "
        f"p AS (SELECT text, {shape} AS shape_ok, {parts} AS parts FROM n), "
        f"y AS (SELECT text, shape_ok, {backwards} AS backwards, "
        f"CASE WHEN shape_ok THEN {years_sql} END AS tax_years FROM p) "
        "SELECT text, CASE WHEN NOT shape_ok THEN 'cannot be read: write years as 2023, "
        "2021-2024 or 2022;2024' "
        "WHEN backwards THEN 'has a range that runs backwards: write the earlier year first' "
        f"WHEN list_max(tax_years) > {today.year} THEN 'asks for a year in the future "
        f"(today is {today.isoformat()}): ask only for years already begun' "
        f"WHEN {on_file} = 0 THEN 'shares no year with the tax years on file' "
        "END AS tax_problem, CAST(tax_years AS INTEGER[]) AS tax_years, "
        f"{on_file} < length(tax_years) AS tax_partial FROM y")


def _statute_as_given_sql(batch: Batch) -> str:
    """A valid row's statute in the batch's own (legal) spelling, e.g. ``1253(a)(1)``."""
    def lit(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"
    whens = " ".join(f"WHEN {lit(key)} THEN {lit(given)}"
                     for key, given in batch.statute_spelling.items())
    return f"CASE statute_n {whens} ELSE statute END"


def _checked(engine: Engine, raw: str, batch: Batch, *, today: date,
             years: Sequence[int]) -> None:
    checks = row_checks(authorised=batch.authorised_statutes_normalised, today=today,
                        years=years, shown=batch.authorised_statutes)
    engine.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CHECKED} AS "
        "WITH r AS (SELECT raw.*, "
        f"{clean_sql('first_name')} AS first_c, {clean_sql('last_name')} AS last_c, "
        f"{clean_sql('middle_name')} AS middle_c, {clean_sql('unit')} AS unit_c, "
        f"{clean_sql('street')} AS street_c, {clean_sql('city')} AS city_c, "
        "upper(regexp_replace(state, '[\\s.]', '', 'g')) AS state_u, "
        "regexp_replace(zip, '\\s', '', 'g') AS zip_t, "
        "regexp_replace(tin, '[\\s-]', '', 'g') AS tin_d, "
        "st.statute_n, dup.id_uses, d.order_date, p.tax_years, p.tax_problem, p.tax_partial "
        f"FROM {raw} raw LEFT JOIN {_DATES} d ON d.text = raw.removal_order_date "
        f"LEFT JOIN {_PERIODS} p ON p.text = raw.tax_periods "
        f"LEFT JOIN {_STATUTES} st ON st.text = raw.statute "
        "LEFT JOIN (SELECT request_row_id, count(*) AS id_uses "
        f"FROM {raw} WHERE request_row_id IS NOT NULL GROUP BY request_row_id "
        "HAVING count(*) > 1) dup ON dup.request_row_id = raw.request_row_id), "
        f"h AS (SELECT *, {helper_flags_sql()} FROM r), "
        f"f AS (SELECT *, {flags_sql(checks)} FROM h) "
        f"SELECT *, {reason_codes_sql(checks)} AS reason_codes, "
        f"CASE WHEN {' OR '.join(f'chk{i}' for i in range(len(checks)))} THEN "
        f"{detail_sql(checks)} END AS detail FROM f")


def _check_partition(engine: Engine, raw: str) -> None:
    raw_n = engine.count(raw)
    valid_n = engine.count("request_valid")
    rejected_n = engine.count("request_rejected")
    both = engine.fetchall("SELECT count(*) FROM request_valid v "
                           "JOIN request_rejected r USING (source_row)")[0][0]
    if raw_n != valid_n + rejected_n or both:
        raise PipelineError(
            f"validation lost or duplicated rows: {raw} has {raw_n:,}, request_valid "
            f"{valid_n:,} + request_rejected {rejected_n:,}, {both:,} in both")


def validate_request(engine: Engine, batch: Batch, *, master_years: tuple[int, int] | None,
                     today: date, raw_table: str = "request_raw",
                     years_on_file: Sequence[int] | None = None) -> ValidationResult:
    """Split ``raw_table`` into ``request_valid`` / ``request_rejected`` (docs/INTERNALS.md).

    ``master_years`` are the first and last tax years on file (without them, 1900 to
    ``today``'s year; ``years_on_file``, when given, lists them exactly, gaps and all): a
    row is answered from the overlap of its periods and those years,
    and rejected (``INVALID_TAX_PERIOD``) only when its periods cannot be read, ask for a
    year after ``today``'s, or share no year with the file. ``today`` also decides which
    removal order dates lie in the future.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw_table):
        raise PipelineError(f"validate_request: `{raw_table}` is not a plain table name")
    lo, hi = master_years or (1900, today.year)
    years = sorted(set(years_on_file)) if years_on_file else list(range(lo, hi + 1))
    try:
        _lookups(engine, raw_table, years=years, today=today)
        _checked(engine, raw_table, batch, today=today, years=years)
        engine.execute(
            "CREATE OR REPLACE TABLE request_rejected AS SELECT source_row, request_row_id, "
            f"reason_codes, detail FROM {_CHECKED} WHERE reason_codes <> ''")
        engine.execute(
            "CREATE OR REPLACE TABLE request_valid AS SELECT source_row, request_row_id, "
            f"first_name, CASE WHEN {optional_placeholder_sql('middle_c')} THEN NULL "
            "ELSE middle_name END AS middle_name, last_name, street, "
            f"CASE WHEN {optional_placeholder_sql('unit_c')} THEN NULL ELSE unit END AS unit, "
            "city, state_u AS state, regexp_replace(zip_t, '-', '', 'g') AS zip, "
            "order_date AS removal_order_date, removal_order_case_number, "
            f"{_statute_as_given_sql(batch)} AS statute, tax_years, "
            "CASE WHEN tin IS NOT NULL THEN tin_d END AS tin "
            f"FROM {_CHECKED} WHERE reason_codes = ''")
        _check_partition(engine, raw_table)
        partly = engine.fetchall(f"SELECT count_if(tax_partial) FROM {_CHECKED} "
                                 "WHERE reason_codes = ''")[0][0]
        counts = dict(engine.fetchall(reason_counts_sql("request_rejected")))
    finally:
        for table in (_CHECKED, _DATES, _PERIODS, _STATUTES):
            engine.execute(f"DROP TABLE IF EXISTS {table}")
    return ValidationResult(
        valid_count=engine.count("request_valid"),
        rejected_count=engine.count("request_rejected"),
        reason_counts={code: int(counts[code]) for code in REASON_CODES if code in counts},
        periods_partly_on_file=int(partly or 0),
    )
