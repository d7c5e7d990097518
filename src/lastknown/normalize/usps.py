"""USPS reference values shared by validation and matching.

>>> state_code("Massachusetts"), state_code("mass."), state_code("N. Dak."), state_code("ma")
('MA', 'MA', 'ND', 'MA')
>>> zip_with_zeros("2134", "MA"), zip_with_zeros("21341234", "MA"), zip_with_zeros("2134", "IL")
('02134', '021341234', '2134')
"""

from __future__ import annotations

import re

#: USPS two-letter codes: the states, DC, territories and military post codes.
STATE_CODES: frozenset[str] = frozenset(
    """AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV
    NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY
    PR GU VI AS MP FM MH PW AA AE AP""".split()
)

#: A state or territory written out, or in the older (GPO / AP style) abbreviations that
#: requesters' files still carry, → its USPS code. Keys are compared upper-cased with
#: spaces and dots removed (``N. Dak.`` → ``NDAK``), so each form is listed once.
STATE_NAMES: dict[str, str] = {
    "ALABAMA": "AL", "ALA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARIZ": "AZ",
    "ARKANSAS": "AR", "ARK": "AR", "CALIFORNIA": "CA", "CALIF": "CA", "CAL": "CA",
    "COLORADO": "CO", "COLO": "CO", "CONNECTICUT": "CT", "CONN": "CT", "DELAWARE": "DE",
    "DEL": "DE", "DISTRICTOFCOLUMBIA": "DC", "WASHINGTONDC": "DC", "FLORIDA": "FL",
    "FLA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL",
    "ILL": "IL", "INDIANA": "IN", "IND": "IN", "IOWA": "IA", "KANSAS": "KS", "KANS": "KS",
    "KAN": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD",
    "MASSACHUSETTS": "MA", "MASS": "MA", "MICHIGAN": "MI", "MICH": "MI", "MINNESOTA": "MN",
    "MINN": "MN", "MISSISSIPPI": "MS", "MISS": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "MONT": "MT", "NEBRASKA": "NE", "NEBR": "NE", "NEB": "NE", "NEVADA": "NV", "NEV": "NV",
    "NEWHAMPSHIRE": "NH", "NEWJERSEY": "NJ", "NEWMEXICO": "NM", "NMEX": "NM",
    "NEWYORK": "NY", "NORTHCAROLINA": "NC", "NORTHDAKOTA": "ND", "NDAK": "ND",
    "OHIO": "OH", "OKLAHOMA": "OK", "OKLA": "OK", "OREGON": "OR", "OREG": "OR", "ORE": "OR",
    "PENNSYLVANIA": "PA", "PENN": "PA", "PENNA": "PA", "RHODEISLAND": "RI",
    "SOUTHCAROLINA": "SC", "SOUTHDAKOTA": "SD", "SDAK": "SD", "TENNESSEE": "TN",
    "TENN": "TN", "TEXAS": "TX", "TEX": "TX", "UTAH": "UT", "VERMONT": "VT",
    "VIRGINIA": "VA", "WASHINGTON": "WA", "WASH": "WA", "WESTVIRGINIA": "WV", "WVA": "WV",
    "WISCONSIN": "WI", "WIS": "WI", "WISC": "WI", "WYOMING": "WY", "WYO": "WY",
    "PUERTORICO": "PR", "GUAM": "GU", "VIRGINISLANDS": "VI", "USVIRGINISLANDS": "VI",
    "AMERICANSAMOA": "AS", "NORTHERNMARIANAISLANDS": "MP",
}

#: The ZIP codes that begin with 0, by state: first three digits (inclusive ranges). A
#: spreadsheet that reads a ZIP as a number drops those zeros (02134 → 2134); only for
#: these states can the zeros be put back without guessing.
ZERO_ZIP3: dict[str, tuple[tuple[int, int], ...]] = {
    "MA": ((10, 27), (55, 55)), "RI": ((28, 29),), "NH": ((30, 38),), "ME": ((39, 49),),
    "VT": ((50, 54), (56, 59)), "CT": ((60, 69),), "NJ": ((70, 89),),
    "NY": ((5, 5), (63, 63)), "PR": ((6, 7), (9, 9)), "VI": ((8, 8),), "AE": ((90, 98),),
}


def state_codes_sql() -> str:
    """The state codes as a SQL list literal, e.g. ``('AK', 'AL', ...)``."""
    return "(" + ", ".join(f"'{s}'" for s in sorted(STATE_CODES)) + ")"


def _key(text: str) -> str:
    return re.sub(r"[\s.]", "", text).upper()


def state_code(text: str) -> str:
    """The USPS code of a state as written (a code in any case, a name, an old
    abbreviation); anything else upper-cased without spaces and dots."""
    key = _key(text)
    return STATE_NAMES.get(key, key)


def state_code_sql(expr: str) -> str:
    """SQL of :func:`state_code` (NULL stays NULL)."""
    key = f"upper(regexp_replace({expr}, '[\\s.]', '', 'g'))"
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in sorted(STATE_NAMES.items()))
    return f"(CASE {key} {whens} ELSE {key} END)"


def zip_with_zeros(digits: str, state: str) -> str:
    """A ZIP (or ZIP+4) of digits that lost its leading zeros, with them put back when
    the row's state is one whose ZIPs begin with 0 and the result lies in its ranges;
    otherwise as given."""
    width = 5 if len(digits) <= 5 else 9
    padded = digits.rjust(width, "0")
    if len(digits) in (3, 4, 7, 8) and any(lo <= int(padded[:3]) <= hi
                                           for lo, hi in ZERO_ZIP3.get(state, ())):
        return padded
    return digits


def zip_with_zeros_sql(digits: str, state: str) -> str:
    """SQL of :func:`zip_with_zeros` over a digits-only ZIP text and a USPS state code."""
    width = f"CASE WHEN length({digits}) <= 5 THEN 5 ELSE 9 END"
    padded = f"lpad({digits}, {width}, '0')"
    ranges = " OR ".join(
        f"({state} = '{st}' AND CAST(left({padded}, 3) AS INTEGER) BETWEEN {lo} AND {hi})"
        for st, spans in sorted(ZERO_ZIP3.items()) for lo, hi in spans)
    return (f"(CASE WHEN regexp_matches({digits}, '^([0-9]{{3,4}}|[0-9]{{7,8}})$') "
            f"AND ({ranges}) THEN {padded} ELSE {digits} END)")
