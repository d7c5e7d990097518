"""Phonetic keys and given-name facts, as SQL, for names written in several romanisations.

A name from another script reaches the master and the request through different
hands, and so through different romanisations (KAREEM/KARIM, MOUSSA/MUSA, SUH/SEO,
BAK/PARK, EKATERINA/YEKATERINA). The *phonetic key* keeps what such respellings share:
its consonant skeleton, with every run of vowels reduced to one ``A``. The rules
(:data:`PHONETIC_RULES`, applied in order, each one ``regexp_replace``, so the key
runs in any SQL engine and over distinct names only at index time):

* letters only; a leading ``Y`` before a vowel dropped (YEKATERINA → EKATERINA);
* ``X`` → ``KS``; ``SCH``/``SH``/``CH``/``TCH`` → one sound; ``DZH``/``DJ``/``ZH``/``DG``
  → ``J``; ``CHR`` → ``KR``; ``PH`` → ``F``; ``KH``/``GH``/``CK``/``Q``/hard ``C`` → ``K``;
  soft ``C`` and ``Z`` → ``S``; ``TH`` → ``T``; ``W``/``V`` → ``F``;
* voicing pairs merged, as Korean-like romanisations write them either way:
  ``B``/``P``, ``G``/``K``, ``D``/``T``;
* ``H`` after a letter dropped (SUH → SU, JOHN → JON);
* in surnames only, ``R`` between a vowel and a consonant dropped (PARK → PAK; in given
  names it joined DANIEL and DARNELL; a final ``R`` stays: ARTHUR and EDDIE);
* ``Y`` is a vowel; every run of vowels → ``A``; doubled consonants → one.

Given-name facts come from the shipped Census table ``data/first_names.csv.gz``: a name
is *known* when it is listed there, and has a *sex* when it is listed for one sex only or
at least :data:`SEX_SHARE` of its frequency is of one sex (else unknown;
:func:`given_name_sexes`).

>>> key = phonetic_key_python
>>> key("KAREEM") == key("KARIM"), key("MOUSSA") == key("MUSA"), key("SUH") == key("SEO")
(True, True, True)
>>> key("BAK", surname=True) == key("PARK", surname=True), key("YEKATERINA") == key("EKATERINA")
(True, True)
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from functools import cache
from importlib import resources

import pyarrow as pa

from lastknown.engines.base import Engine

#: ``R`` between a vowel and a consonant (Korean PARK/BAK): surname keys only — in given
#: names it joined different names (DANIEL/DARNELL).
SILENT_R = ("([AEIOUY])R([^AEIOUY])", r"\1\2")
#: (pattern, replacement) in order; patterns are RE2/Java-compatible (no look-around,
#: no back-references in patterns), replacements use ``\\1`` for a group.
PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    ("[^A-Z]", ""),
    ("^Y([AEIOU])", r"\1"),
    ("X", "KS"),
    ("DZH", "J"), ("DJ", "J"), ("ZH", "J"), ("DG", "J"),
    ("CHR", "KR"), ("TCH", "X"), ("SCH", "X"), ("SH", "X"), ("CH", "X"),
    ("PH", "F"), ("KH", "K"), ("GH", "K"), ("TH", "T"), ("CK", "K"), ("Q", "K"),
    ("C([EIY])", r"S\1"), ("C", "K"), ("Z", "S"), ("W", "F"), ("V", "F"),
    ("B", "P"), ("G", "K"), ("D", "T"),
    ("([A-Z])H", r"\1"),
    SILENT_R,
    ("[AEIOUY]+", "A"),
    *((f"{c}{c}+", c) for c in "FJKLMNPRSTX"),
)

#: Share of a name's frequency that must be of one sex for the name to have that sex.
SEX_SHARE = 0.9
#: Engine table ``(name VARCHAR, sex VARCHAR)``: every Census given name;
#: sex NULL when the name is given to both sexes or too rare to tell.
GIVEN_NAME_TABLE = "match_given_name"
#: Columns :func:`name_keys_sql` adds.
PHONETIC_COLUMNS: tuple[str, ...] = ("first_ph", "first_sex", "first_known", "surname_ph")


def _rules(*, surname: bool) -> tuple[tuple[str, str], ...]:
    return tuple(r for r in PHONETIC_RULES if surname or r != SILENT_R)


def phonetic_key_sql(expr: str, *, surname: bool = False) -> str:
    """SQL: the phonetic key of an upper-case name ``expr`` (NULL stays NULL).

    Only surname keys drop a silent ``R`` (:data:`SILENT_R`).
    """
    sql = expr
    for pattern, replacement in _rules(surname=surname):
        sql = f"regexp_replace({sql}, '{pattern}', '{replacement}', 'g')"
    return sql


def phonetic_key_python(name: str, *, surname: bool = False) -> str:
    """The same key in Python (documentation and tests; the engine runs the SQL)."""
    key = name.upper()
    for pattern, replacement in _rules(surname=surname):
        key = re.sub(pattern, replacement, key)
    return key


def _census_rows() -> list[dict[str, str]]:
    raw = resources.files("lastknown.data").joinpath("first_names.csv.gz").read_bytes()
    return list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode("utf-8"))))


@cache
def given_name_sexes() -> dict[str, str | None]:
    """Census given name → ``'M'``, ``'F'`` or None (given to both sexes).

    A name listed for one sex only is that sex — also a rare one (GEORGINE, DANIELL): a
    request for GEORGINE where only GEORGE files is a different person (bench_robust's
    attack set disclosed GEORGINE/GEORGE, GEORGIE/GEORGE and CLAUD/CLAUDIA rows while such
    names counted as unknown). The price is a requester's one-letter slip that lands on
    the other sex's list (DANIELL for DANIEL), which then is not matched. A name on both
    lists has a sex when :data:`SEX_SHARE` of its frequency is of one (LOUISE, JERRY), else
    none (JESSIE, LOU).
    """
    freq: dict[str, dict[str, float]] = {}
    for row in _census_rows():
        by_sex = freq.setdefault(row["name"].strip().upper(), {})
        f = float(row["freq"])
        by_sex[row["sex"]] = by_sex.get(row["sex"], 0.0) + f
    out: dict[str, str | None] = {}
    for name, by_sex in freq.items():
        if len(by_sex) == 1:  # listed for one sex only: precision first, it is that sex
            out[name] = next(iter(by_sex))
            continue
        total = sum(by_sex.values())
        out[name] = next((s for s, f in by_sex.items() if f / total >= SEX_SHARE), None)
    return out


def register_given_names(engine: Engine) -> str:
    """Load :data:`GIVEN_NAME_TABLE` into ``engine``; return its name."""
    sexes = sorted(given_name_sexes().items())
    data = pa.table({"name": [n for n, _ in sexes], "sex": [s for _, s in sexes]})
    engine.register_arrow(f"{GIVEN_NAME_TABLE}_arrow", data)
    engine.execute(f"CREATE OR REPLACE TABLE {GIVEN_NAME_TABLE} AS "
                   f"SELECT name, sex FROM {GIVEN_NAME_TABLE}_arrow")
    return GIVEN_NAME_TABLE


def name_keys_sql(source: str) -> str:
    """``source`` (with ``first_n``, ``surname_tokens``, ``surname_n``) plus
    :data:`PHONETIC_COLUMNS`, each key computed once per distinct name (names repeat: a
    million requests hold a few ten thousand given names) and joined back.

    ``first_known`` is the Census fact only; matching adds the master's own frequent
    names on the request side (``lastknown.match.run``).
    """
    surname_key = phonetic_key_sql("t", surname=True)
    surname_keys = f"list_transform(surname_tokens, lambda t: {surname_key})"
    return f"""
    WITH s AS MATERIALIZED (SELECT * FROM {source}),
    fk AS (SELECT first_n, {phonetic_key_sql('first_n')} AS first_ph
           FROM (SELECT DISTINCT first_n FROM s WHERE first_n IS NOT NULL)),
    sk AS (SELECT surname_n, {surname_keys} AS surname_ph
           FROM (SELECT surname_n, any_value(surname_tokens) AS surname_tokens
                 FROM s GROUP BY surname_n))
    SELECT s.*, fk.first_ph, g.sex AS first_sex, g.name IS NOT NULL AS first_known,
           sk.surname_ph
    FROM s
    LEFT JOIN fk ON fk.first_n = s.first_n
    LEFT JOIN sk ON sk.surname_n IS NOT DISTINCT FROM s.surname_n
    LEFT JOIN {GIVEN_NAME_TABLE} AS g ON g.name = s.first_n
    """
