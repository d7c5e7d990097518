"""The row checks of validation, as SQL over one ``request_raw`` row.

Each :class:`Check` is a condition (true = problem), the reason code it raises
and a detail message naming the column and how to fix it. Values are echoed
in details only for fields that identify no one (state, ZIP, dates, tax
periods, statute, request_row_id); never a name, street or TIN.

The row is first given helper columns (``*_c`` cleaned text, ``state_u``,
``zip_t``, ``tin_d``, ``statute_n``, ``order_date``, ``tax_years``,
``tax_problem``, ``id_uses``) by :func:`lastknown.request.validate.validate_request`,
then the costly predicates once each (:func:`helper_flags_sql`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lastknown.normalize.placeholders import (
    placeholder_address_part_sql,
    placeholder_name_pair_sql,
    placeholder_name_sql,
    street_shape_sql,
)
from lastknown.normalize.usps import state_codes_sql
from lastknown.request.reasons import REASON_CODES, SEPARATOR

_DATE_FORMATS: tuple[tuple[str, str], ...] = (
    (r"^\d{4}-\d{1,2}-\d{1,2}", "%Y-%m-%d"),  # ISO, also with a time after it
    (r"^\d{1,2}/\d{1,2}/\d{4}", "%m/%d/%Y"),  # US
    (r"^\d{1,2}-\d{1,2}-\d{4}", "%m-%d-%Y"),
    (r"^\d{4}/\d{1,2}/\d{1,2}", "%Y/%m/%d"),
    (r"^\d{8}", "%Y%m%d"),
    (r"^\d{1,2}-[A-Za-z]{3}-\d{4}", "%d-%b-%Y"),  # 05-Mar-2024 (Excel)
    (r"^\d{1,2} [A-Za-z]{3} \d{4}", "%d %b %Y"),
)


def parse_date_sql(text: str) -> str:
    """SQL DATE of a date text in an accepted form, else NULL (``2024-02-30`` → NULL).

    Accepted: ISO ``2024-03-05`` (a time after it is ignored), US ``3/5/2024``,
    ``3-5-2024``, ``2024/03/05``, ``20240305``, ``05-Mar-2024``, ``5 Mar 2024``,
    ``March 5, 2024`` / ``Mar 5 2024``, and an Excel day serial of 5 digits
    (``45356``). A year must have four digits.
    """
    t = f"trim({text})"
    cases = [
        f"WHEN regexp_matches({t}, '{pattern}(([ T].*)?)$') THEN "
        f"try_strptime(regexp_extract({t}, '{pattern}'), '{fmt}')"
        for pattern, fmt in _DATE_FORMATS
    ]
    words = f"regexp_replace({t}, '[,.]', '', 'g')"
    cases.append(
        f"WHEN regexp_matches({t}, '^[A-Za-z]{{3,9}}\\.? \\d{{1,2}},? \\d{{4}}$') THEN "
        f"coalesce(try_strptime({words}, '%B %d %Y'), try_strptime({words}, '%b %d %Y'))")
    cases.append(
        f"WHEN regexp_matches({t}, '^\\d{{5}}(\\.0+)?$') THEN "
        f"CAST(DATE '1899-12-30' + CAST(CAST({t} AS DOUBLE) AS INTEGER) AS TIMESTAMP)")
    return f"CAST(CASE {' '.join(cases)} END AS DATE)"


def tax_periods_sql(text: str) -> tuple[str, str, str]:
    """SQL for (normalised text ``t``, shape ok, parts list) of a tax periods text.

    The second and third expressions read the first one as column ``t``.

    ``2023``, ``2021-2024`` (also ``2021 to 2024``, ``2021–2024``), and lists of
    these separated by ``;``, ``,``, ``|``, ``&``, ``and`` or spaces.
    """
    norm = (f"regexp_replace(regexp_replace(upper(trim({text})), "
            r"'\s*(-|–|—|\bTO\b|\bTHRU\b|\bTHROUGH\b)\s*', '-', 'g'), "
            r"'^(TAX YEARS?|TY|YEARS?)\s*:?\s*', '')")
    shape = ("regexp_matches(t, '^\\d{4}(-\\d{4})?(\\s*([;,|&/]|\\bAND\\b|\\s)\\s*"
             "\\d{4}(-\\d{4})?)*$')")
    parts = "regexp_extract_all(t, '\\d{4}(-\\d{4})?')"
    return norm, shape, parts


@dataclass(frozen=True, kw_only=True)
class Check:
    """One problem a row can have: SQL condition, reason code, SQL detail text."""

    code: str
    condition: str
    detail: str


def _text(message: str) -> str:
    return "'" + message.replace("'", "''") + "'"


def _echo(column: str) -> str:
    """A column's value, shortened, for a detail message."""
    return (f"CASE WHEN length({column}) > 40 THEN left({column}, 40) || '…' "
            f"ELSE {column} END")


def _say(*pieces: str) -> str:
    """Concatenate literal text (plain str) and SQL (wrapped in ``{}``)."""
    sql = [p[1:-1] if p.startswith("{") and p.endswith("}") else _text(p) for p in pieces]
    return "concat(" + ", ".join(sql) + ")"


def _missing(column: str, code: str, fix: str) -> Check:
    return Check(code=code, condition=f"{column} IS NULL",
                 detail=_text(f"{column} is empty: {fix}"))


def helper_flags_sql() -> str:
    """SQL select-list of the placeholder predicates that several checks share."""
    return ", ".join([
        f"{placeholder_name_sql('first_c')} AS first_ph",
        f"{placeholder_name_sql('last_c')} AS last_ph",
        f"{placeholder_address_part_sql('street_c')} AS street_ph",
        f"{street_shape_sql('street_c')} AS street_shaped",
        f"{placeholder_address_part_sql('city_c')} AS city_ph",
    ])


def years_text(years: Sequence[int]) -> str:
    """Years as short ranges, for a message.

    >>> years_text([2019, 2020, 2021, 2024])
    '2019-2021, 2024'
    """
    runs: list[list[int]] = []
    for year in sorted(set(years)):
        if runs and year == runs[-1][1] + 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def row_checks(*, authorised: tuple[str, ...], today: date, years: Sequence[int],
               shown: tuple[str, ...] | None = None) -> list[Check]:
    """Every check, in DESIGN order of their reason codes; ``years`` are those on file.

    ``authorised`` are the statutes in comparison form; ``shown`` their spelling in the
    batch file, used in messages (statutes keep their legal spelling).
    """
    auth = "(" + ", ".join(_text(s) for s in authorised) + ")"
    auth_list = "; ".join(shown or authorised)
    zip_ok = r"(regexp_matches(zip_t, '^\d{5}(-?\d{4})?$') AND left(zip_t, 5) <> '00000')"
    tin_ok = r"(regexp_matches(tin_d, '^\d{9}$') AND tin_d <> '000000000')"
    today_sql = f"DATE '{today.isoformat()}'"
    checks = [
        _missing("first_name", "MISSING_NAME", "give the person's first (given) name"),
        _missing("last_name", "MISSING_NAME", "give the person's last (family) name"),
        Check(code="PLACEHOLDER_NAME",
              condition="first_name IS NOT NULL AND first_ph",
              detail=_text("first_name is placeholder text (FNU, UNKNOWN, BABY …), not a name: "
                           "give the person's real first name or leave the row out")),
        Check(code="PLACEHOLDER_NAME",
              condition="last_name IS NOT NULL AND last_ph",
              detail=_text("last_name is placeholder text (LNU, UNKNOWN …), not a name: "
                           "give the person's real last name or leave the row out")),
        Check(code="PLACEHOLDER_NAME",
              condition=("first_name IS NOT NULL AND last_name IS NOT NULL AND "
                         f"{placeholder_name_pair_sql('first_c', 'last_c')}"),
              detail=_text("first_name + last_name is a placeholder name (JOHN DOE, BABY GIRL "
                           "…): give the person's real name or leave the row out")),
        _missing("street", "MISSING_ADDRESS", "give the street line of the previous address"),
        _missing("city", "MISSING_ADDRESS", "give the city of the previous address"),
        _missing("state", "MISSING_ADDRESS", "give the USPS state code, e.g. IL"),
        _missing("zip", "MISSING_ADDRESS", "give the 5-digit ZIP code"),
        Check(code="PLACEHOLDER_ADDRESS",
              condition="street IS NOT NULL AND street_ph",
              detail=_text("street is placeholder text (UNKNOWN, FAILED TO PROVIDE, N/A …), "
                           "not an address: give the street line the person lived at")),
        Check(code="PLACEHOLDER_ADDRESS",
              condition="street IS NOT NULL AND NOT street_ph AND NOT street_shaped",
              detail=_text("street does not look like an address: it must start with a house "
                           "number (123 Main St) or be a PO box or route (PO Box 12, RR 2 Box "
                           "7); a ZIP code with other words is not an address")),
        Check(code="PLACEHOLDER_ADDRESS",
              condition="city IS NOT NULL AND city_ph",
              detail=_text("city is placeholder text (UNKNOWN, N/A …): give the real city")),
        Check(code="INVALID_STATE",
              condition=f"state IS NOT NULL AND state_u NOT IN {state_codes_sql()}",
              detail=_say("state `", "{" + _echo("state") + "}",
                          "` is not a USPS two-letter code: use e.g. IL, NY, PR")),
        Check(code="INVALID_ZIP",
              condition=(f"zip IS NOT NULL AND NOT {zip_ok} AND "
                         r"regexp_matches(zip_t, '^(\d{3,4}|\d{7,8}|\d{3,4}-\d{4})$')"),
              detail=_say("zip `", "{" + _echo("zip") + "}",
                          "` has too few digits: a leading zero was probably lost in a "
                          "spreadsheet (2134 → 02134); store the column as text and fix it")),
        Check(code="INVALID_ZIP",
              condition=(f"zip IS NOT NULL AND NOT {zip_ok} AND NOT "
                         r"regexp_matches(zip_t, '^(\d{3,4}|\d{7,8}|\d{3,4}-\d{4})$')"),
              detail=_say("zip `", "{" + _echo("zip") + "}",
                          "` is not a ZIP code: give 5 digits (12345) or ZIP+4 (12345-6789)")),
        _missing("removal_order_date", "MISSING_REMOVAL_ORDER_DATE",
                 "give the date of the final order of removal"),
        Check(code="INVALID_REMOVAL_ORDER_DATE",
              condition="removal_order_date IS NOT NULL AND order_date IS NULL",
              detail=_say("removal_order_date `", "{" + _echo("removal_order_date") + "}",
                          "` is not a real date: use YYYY-MM-DD or MM/DD/YYYY "
                          "with a 4-digit year")),
        Check(code="INVALID_REMOVAL_ORDER_DATE",
              condition=(f"order_date > {today_sql} OR order_date < DATE '1900-01-01'"),
              detail=_say("removal_order_date `", "{" + _echo("removal_order_date") + "}",
                          f"` is in the future or before 1900 (today is {today.isoformat()}): "
                          "give the date the order was made")),
        _missing("removal_order_case_number", "MISSING_CASE_NUMBER",
                 "give the case number of the removal order"),
        _missing("statute", "MISSING_STATUTE", f"cite the statute, one of: {auth_list}"),
        Check(code="STATUTE_NOT_AUTHORISED",
              condition=f"statute IS NOT NULL AND statute_n NOT IN {auth}",
              detail=_say("statute `", "{" + _echo("statute") + "}",
                          f"` is not on this batch's authorised list ({auth_list}): cite an "
                          "authorised statute or leave the row out")),
        _missing("tax_periods", "MISSING_TAX_PERIOD",
                 "give the tax years asked for, e.g. 2023 or 2021-2024"),
        Check(code="INVALID_TAX_PERIOD",
              condition="tax_periods IS NOT NULL AND tax_problem IS NOT NULL",
              detail=_say("tax_periods `", "{" + _echo("tax_periods") + "}", "` ",
                          "{tax_problem}", f" (years on file: {years_text(years)})")),
        Check(code="INVALID_TIN", condition=f"tin IS NOT NULL AND NOT {tin_ok}",
              detail=_text("tin is not a 9-digit TIN: give 123456789 or 123-45-6789, or leave "
                           "it empty")),
        _missing("request_row_id", "MISSING_ROW_ID", "give every row its own id"),
        Check(code="DUPLICATE_ROW_ID",
              condition="request_row_id IS NOT NULL AND id_uses > 1",
              detail=_say("request_row_id `", "{" + _echo("request_row_id") + "}",
                          "` is used by ", "{CAST(id_uses AS VARCHAR)}",
                          " rows: give every row its own id")),
    ]
    order = {code: i for i, code in enumerate(REASON_CODES)}
    return sorted(checks, key=lambda c: order[c.code])


def flags_sql(checks: list[Check]) -> str:
    """SQL select-list computing each check once, as boolean columns ``chk0``…"""
    return ", ".join(f"coalesce({c.condition}, false) AS chk{i}" for i, c in enumerate(checks))


def reason_codes_sql(checks: list[Check]) -> str:
    """SQL for the ``;``-joined codes of a row (each once, in DESIGN order); '' if none.

    Reads the ``chk*`` columns of :func:`flags_sql`.
    """
    codes: dict[str, list[str]] = {}
    for i, check in enumerate(checks):
        codes.setdefault(check.code, []).append(f"chk{i}")
    parts = [f"CASE WHEN {' OR '.join(flags)} THEN '{code}' END" for code, flags in codes.items()]
    return f"concat_ws('{SEPARATOR}', {', '.join(parts)})"


def detail_sql(checks: list[Check]) -> str:
    """SQL for the ``; ``-joined details of a row; reads the ``chk*`` columns."""
    parts = [f"CASE WHEN chk{i} THEN {c.detail} END" for i, c in enumerate(checks)]
    return f"concat_ws('; ', {', '.join(parts)})"
