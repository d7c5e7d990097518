"""Placeholder text, street shapes and statute spelling: the rules and their SQL.

The real system let through rows whose address was ``Failed to Provide``,
``Unknown Address`` or ``Don't Care 12345`` (a bare ZIP with junk). Here a
request row's fields are compared, after :func:`clean_sql`, against the word
lists below, and a street must *look like* an address: a house number first, a
PO box, a rural / highway-contract route with a box, a military PSC/CMR/UNIT box or
ship (``USS …``), a Utah-style grid (``1074 W 350 N``), a Wisconsin-style grid
or rural number (``N5326 County Road E``), a house number in words (``One Main St``),
a unit before the house number, an Alaska milepost, a Puerto Rico form (``URB …``,
``CALLE …``) carrying a short number, or ``GENERAL DELIVERY``. A number with other
words is an address only in one of these shapes: ``Don't Care 12345`` is not.

Every list is data; every predicate is a SQL expression (DuckDB dialect, RE2
regular expressions) built from it, so 7 million rows are checked in the engine.

>>> "FNU" in NAME_PLACEHOLDERS
True
>>> apply_rules("8 USC § 1253 (A)(1)", STATUTE_RULES)
'8 U.S.C. 1253(A)(1)'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WS = "[\\s\u00a0]"

#: Regex rewrite rules, applied in order to upper-cased statute text (Python and SQL).
STATUTE_RULES: tuple[tuple[str, str], ...] = (
    ("§+", " "),
    ("\\bSECTIONS?\\b|\\bSECS?\\b\\.?", " "),
    (f"\\bU{_WS}*\\.?{_WS}*S{_WS}*\\.?{_WS}*C\\b\\.?", " U.S.C. "),
    (f"{_WS}+", " "),
    (f"{_WS}*\\({_WS}*", "("),
    (f"{_WS}*\\)", ")"),
    ("^ | $", ""),
)

#: Whole-value name placeholders (after cleaning); ``X``, ``XX`` … are caught by pattern.
NAME_PLACEHOLDERS: tuple[str, ...] = (
    "UNKNOWN", "UNK", "UNKN", "FNU", "LNU", "NFN", "NLN", "NMN", "NONE", "NA", "N A", "NULL",
    "NIL", "TBD", "NOT PROVIDED", "NOT GIVEN", "NOT AVAILABLE", "NOT KNOWN", "NO NAME",
    "NONAME", "REFUSED", "DECLINED", "FAILED TO PROVIDE", "UNNAMED", "ANONYMOUS", "BABY",
    "BABY GIRL", "BABY BOY", "BABYGIRL", "BABYBOY", "INFANT", "TEST", "SAMPLE", "DUMMY",
    "FIRST", "LAST", "FIRST NAME", "LAST NAME", "NAME", "SURNAME", "GIVEN",
)
#: Tokens that make a first/last name a placeholder wherever they appear in it.
NAME_PLACEHOLDER_TOKENS: tuple[str, ...] = ("FNU", "LNU", "NFN", "NLN", "UNK", "UNKNOWN")
#: ``first last`` pairs that are placeholders though each half is a real name.
NAME_PLACEHOLDER_PAIRS: tuple[str, ...] = (
    "JOHN DOE", "JANE DOE", "JOHNNY DOE", "JANIE DOE", "BABY DOE", "RICHARD ROE", "JANE ROE",
    "JOHN ROE", "BABY GIRL", "BABY BOY", "JOHN SMITH DOE",
)

#: Phrases that make a street or city a placeholder wherever they appear (whole tokens).
ADDRESS_PLACEHOLDER_PHRASES: tuple[str, ...] = (
    "UNKNOWN", "UNK", "UNKNOWN ADDRESS", "FAILED TO PROVIDE", "NOT PROVIDED", "NOT GIVEN",
    "NOT AVAILABLE", "NOT KNOWN", "NOT ON FILE", "NOT APPLICABLE", "NO ADDRESS", "NO ADDR",
    "NO FIXED ADDRESS", "NONE", "N/A", "NULL", "TBD", "DONT CARE", "DO NOT CARE", "DONT KNOW",
    "HOMELESS", "TRANSIENT", "REFUSED", "DECLINED", "PLACEHOLDER", "FAKE", "WHATEVER",
)
#: Values that are placeholders only as the whole street or city.
ADDRESS_PLACEHOLDER_VALUES: tuple[str, ...] = (
    "NA", "N A", "NIL", "SAME", "SAME AS ABOVE", "SEE ABOVE", "TEST", "ANY", "ANYWHERE",
    "ADDRESS", "STREET", "CITY", "NFA", "NONE GIVEN", "NO CITY",
)
#: Optional fields (middle name, unit) holding one of these are treated as empty.
OPTIONAL_PLACEHOLDERS: tuple[str, ...] = (
    "NMN", "NMI", "NONE", "NA", "N A", "N/A", "UNKNOWN", "UNK", "NULL", "NIL", "TBD", "X",
    "XX", "XXX", "-", "NO MIDDLE NAME", "NO UNIT",
)

#: The shapes a street line may take (RE2, on :func:`clean_sql` text); one must match.
STREET_SHAPES: tuple[str, ...] = (
    "^[0-9]+([A-Z]|-[0-9A-Z]+)?( [0-9]/[0-9])? (.* )?[A-Z]{2,}",  # 123 MAIN ST, 12-34 31ST AVE
    "^[0-9]+[A-Z]? (.* )?[0-9]+(ST|ND|RD|TH)([A-Z]+)?( |$)",  # 123 W 4TH, 400 8THDR
    "^(P ?O ?|POST OFFICE |POB )(BOX )?#? ?[0-9]",  # PO BOX 12, P O BOX 12
    "^BOX #? ?[0-9]",
    "^(RR|R R|RURAL ROUTE|RURAL RTE|RTE|RT|ROUTE|HC|HCR|HIGHWAY CONTRACT|STAR ROUTE) ?#? ?"
    "[0-9]+ (BOX|BX) ?#? ?[0-9]",
    "^[0-9]+( [0-9]/[0-9])? [NSEW] [0-9]+ [NSEW]( |$)",  # 1074 W 350 N (Utah, Idaho grid)
    "^(ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|TEN) [A-Z]{2,}",  # ONE WORLD TRADE CTR
    "^(APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|#) ?#?[0-9A-Z-]+ [0-9]+[A-Z]? (.* )?[A-Z]{2,}",
    "^(MILE|MILEPOST|MP) [0-9]+ [A-Z]{2,}",  # MILE 35 RICHARDSON HWY (Alaska)
    "^(PSC|CMR|UNIT) [0-9]+ BOX [0-9]",  # military (APO/FPO/DPO)
    "^(USS|USNS|USCGC) [A-Z]",  # a ship (FPO)
    "^GENERAL DELIVERY$",
    "^[NSEW] ?[0-9]+ ?[NSEW] ?[0-9]+ [A-Z]",  # W156N8480 PILGRIM RD
    "^[NSEW][0-9]+ [A-Z]{2,}",  # N5326 COUNTY ROAD E (Wisconsin rural)
    "^(URB|URBANIZACION|COND|CONDOMINIO|RES|RESIDENCIAL|BO|BARRIO|CALLE|CARR|CARRETERA|AVE|"
    "AVENIDA|PARC|PARCELAS|SECTOR|EXT|JARD|VILLA|VILLAS|APARTADO|HC|CAMINO|PASEO|CALLEJON|KM) "
    "(.* )?#?[0-9]{1,4}[A-Z]?( |$)",
)


def apply_rules(text: str, rules: Sequence[tuple[str, str]]) -> str:
    """Apply regex rewrite rules in Python (the twin of :func:`rules_sql`)."""
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text)
    return text


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def rules_sql(expr: str, rules: Sequence[tuple[str, str]]) -> str:
    """Apply regex rewrite rules in SQL (the twin of :func:`apply_rules`)."""
    for pattern, replacement in rules:
        expr = f"regexp_replace({expr}, {_lit(pattern)}, {_lit(replacement)}, 'g')"
    return expr


def statute_sql(expr: str) -> str:
    """SQL for :func:`lastknown.request.batch.normalise_statute` of a text column."""
    return rules_sql(f"upper({expr})", STATUTE_RULES)


def clean_sql(expr: str) -> str:
    """Upper case, accents stripped, apostrophes and dots dropped, other marks to spaces.

    ``/`` and ``#`` survive (``N/A``, ``#4``); the result has single spaces, no ends.
    """
    return (
        "trim(regexp_replace(regexp_replace(upper(strip_accents("
        f"{expr})), '[''’`.]', '', 'g'), '[^A-Z0-9/#]+', ' ', 'g'))"
    )


def _in_list(expr: str, values: Sequence[str]) -> str:
    return f"{expr} IN ({', '.join(_lit(v) for v in values)})"


def _has_phrase(expr: str, phrases: Sequence[str]) -> str:
    alternatives = "|".join(re.escape(p).replace("\\ ", " ") for p in phrases)
    return f"regexp_matches({expr}, {_lit(f'(^| )({alternatives})( |$)')})"


def _without_slash(expr: str) -> str:
    return f"trim(regexp_replace({expr}, '[/#]+', ' ', 'g'))"


def placeholder_name_sql(cleaned: str) -> str:
    """True when one cleaned name part (first or last) is a placeholder."""
    plain = _without_slash(cleaned)
    return (
        f"({_in_list(plain, NAME_PLACEHOLDERS)} OR regexp_matches({plain}, '^X+$') "
        f"OR NOT regexp_matches({plain}, '[A-Z]') "
        f"OR {_has_phrase(plain, NAME_PLACEHOLDER_TOKENS)})"
    )


def placeholder_name_pair_sql(cleaned_first: str, cleaned_last: str) -> str:
    """True when first and last together are a placeholder (``JOHN`` + ``DOE``)."""
    pair = f"({_without_slash(cleaned_first)} || ' ' || {_without_slash(cleaned_last)})"
    return f"({_in_list(pair, NAME_PLACEHOLDER_PAIRS)})"


def placeholder_address_part_sql(cleaned: str) -> str:
    """True when a cleaned street or city is placeholder text (or has no letters)."""
    return (
        f"({_has_phrase(cleaned, ADDRESS_PLACEHOLDER_PHRASES)} "
        f"OR {_in_list(_without_slash(cleaned), ADDRESS_PLACEHOLDER_VALUES)} "
        f"OR regexp_matches({cleaned}, '(^| )X{{3,}}( |$)') "
        f"OR NOT regexp_matches({cleaned}, '[A-Z]'))"
    )


def street_shape_sql(cleaned: str) -> str:
    """True when a cleaned street has one of :data:`STREET_SHAPES`."""
    return "(" + " OR ".join(f"regexp_matches({cleaned}, {_lit(s)})" for s in STREET_SHAPES) + ")"


def optional_placeholder_sql(cleaned: str) -> str:
    """True when an optional field (middle name, unit) holds placeholder text."""
    return f"({_in_list(cleaned, OPTIONAL_PLACEHOLDERS)} OR {cleaned} = '')"
