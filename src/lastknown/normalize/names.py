"""Name cleaning rules, as SQL, applied identically to the master and to requests.

Every rule is a SQL expression so that it runs inside the engine over hundreds of
millions of master rows; Python only builds the text of the SQL.

Rules
-----
* upper case, accents stripped (``PEÑA`` → ``PENA``), apostrophes and dots removed
  (``O'Brien`` → ``OBRIEN``), every other non-letter (hyphens, commas) splits tokens;
* digits in a name are read as the letters they resemble (``JACK5ON`` → ``JACKSON``);
* the first token of the given name is the first name; further given-name tokens
  are treated as middle names (``MARIA JOSE`` → first ``MARIA``, middle ``JOSE``);
* surname tokens drop particles (``DE``, ``LA``, ``VAN`` …) and generational
  suffixes, so ``García-López`` and ``de la Garcia`` share the token ``GARCIA``;
* a generational suffix (``JR``, ``SR``, ``II``, ``III``, ``IV``) is kept as its own
  column — from the suffix field, or from the end of the surname field — because a
  different suffix is evidence *against* a match (father and son share a home).

>>> "strip_accents" in clean_name_sql("first_name")
True
"""

from __future__ import annotations

from collections.abc import Sequence

#: Surname particles that are not evidence on their own.
NAME_PARTICLES: tuple[str, ...] = (
    "DE", "DEL", "DELA", "DELOS", "LA", "LAS", "LOS", "LE", "DA", "DAS", "DO", "DOS", "DI",
    "DU", "VAN", "VON", "DER", "DEN", "TER", "Y", "E", "BIN", "AL", "EL",
)

#: Generational suffix spellings → canonical form.
SUFFIX_CANONICAL: dict[str, str] = {
    "JR": "JR", "JNR": "JR", "JUNIOR": "JR",
    "SR": "SR", "SNR": "SR", "SENIOR": "SR",
    "II": "II", "2ND": "II", "III": "III", "3RD": "III", "IV": "IV", "4TH": "IV", "V": "V",
}

#: Suffixes recognised at the end of a surname field (``V`` alone is too ambiguous there).
_TRAILING_SUFFIXES = ("JR", "JNR", "JUNIOR", "SR", "SNR", "SENIOR", "II", "III", "IV")

#: The normalised name columns every person table carries after :func:`normalised_names_sql`.
NAME_COLUMNS: tuple[str, ...] = (
    "first_n", "first_initial", "middle_n", "middle_initial", "surname_tokens", "surname_n",
    "suffix_n",
)


def sql_list(values: Sequence[str]) -> str:
    """A SQL tuple literal: ``('A', 'B')``."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def clean_name_sql(expr: str) -> str:
    """Upper-case, accent-free, letters/digits and single spaces only; '' when NULL."""
    return (
        "trim(regexp_replace(regexp_replace(regexp_replace("
        f"upper(strip_accents(coalesce(CAST({expr} AS VARCHAR), ''))), "
        "'[''’`.]', '', 'g'), '[^A-Z0-9]+', ' ', 'g'), ' +', ' ', 'g'))"
    )


#: Digits keyed or scanned for the letters they resemble (``JACK5ON``, ``KEL1``,
#: ``FIT2GERALD``): a name holds no digits, so each is read as its look-alike.
DIGIT_LETTERS = ("0123456789", "OIZEASGTBG")


def name_letters_sql(cleaned: str) -> str:
    """A cleaned name with digits read as the letters they resemble."""
    return f"translate({cleaned}, '{DIGIT_LETTERS[0]}', '{DIGIT_LETTERS[1]}')"


def tokens_sql(expr: str) -> str:
    """Non-empty whitespace tokens of an already cleaned string."""
    return f"list_filter(string_split({expr}, ' '), lambda t: t <> '')"


def suffix_canonical_sql(expr: str) -> str:
    """Map a cleaned token to its canonical generational suffix, else NULL."""
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SUFFIX_CANONICAL.items())
    return f"(CASE {expr} {cases} ELSE NULL END)"


def normalised_names_sql(source: str, *, keep: Sequence[str], first: str = "first_name",
                         middle: str = "middle_name", last: str = "last_name",
                         suffix: str | None = "name_suffix") -> str:
    """SELECT over ``source`` keeping ``keep`` and adding :data:`NAME_COLUMNS`.

    ``source`` is a table name or a parenthesised subquery. Empty results are NULL.
    """
    kept = ", ".join(keep)
    suffix_expr = clean_name_sql(suffix) if suffix else "''"
    return f"""
    SELECT {kept},
        NULLIF(_given[1], '') AS first_n,
        left(NULLIF(_given[1], ''), 1) AS first_initial,
        NULLIF(array_to_string(list_concat(_given[2:], _mid), ' '), '') AS middle_n,
        left(NULLIF(array_to_string(list_concat(_given[2:], _mid), ''), ''), 1)
            AS middle_initial,
        list_filter(_sur, lambda t: t NOT IN {sql_list(NAME_PARTICLES)}
                                  AND t NOT IN {sql_list(_TRAILING_SUFFIXES)}) AS surname_tokens,
        NULLIF(array_to_string(list_filter(_sur, lambda t: t NOT IN {sql_list(NAME_PARTICLES)}
                                  AND t NOT IN {sql_list(_TRAILING_SUFFIXES)}), ' '), '')
            AS surname_n,
        coalesce({suffix_canonical_sql('_sfx')},
                 CASE WHEN len(_sur) > 1 THEN {suffix_canonical_sql('_sur[-1]')} END) AS suffix_n
    FROM (
        SELECT {kept},
            {tokens_sql(name_letters_sql(clean_name_sql(first)))} AS _given,
            {tokens_sql(name_letters_sql(clean_name_sql(middle)))} AS _mid,
            {tokens_sql(name_letters_sql(clean_name_sql(last)))} AS _sur,
            {suffix_expr} AS _sfx
        FROM {source}
    )
    """
