"""Nickname groups: English (the ``nicknames`` package) and Spanish (data/nicknames_es.csv).

A first name belongs to the group of each canonical name it is a nickname of,
and to its own group. Two first names agree "by nickname" when their groups
overlap (``BILL`` and ``WILLIAM`` share ``WILLIAM``). The table is small (a few
thousand rows) and is loaded into the engine as a lookup; the join is SQL.

>>> rows = nickname_rows()
>>> ("BILL", "WILLIAM") in rows
True
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import pyarrow as pa

from lastknown.engines.base import Engine

#: Engine table holding ``name VARCHAR, grp VARCHAR`` pairs.
NICKNAME_TABLE = "match_nickname"
SPANISH_NICKNAMES = "nicknames_es.csv"


def _read_csv_text(package: str, name: str) -> str | None:
    try:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return None


def _pairs_from_csv(text: str) -> set[tuple[str, str]]:
    """Rows of (canonical, relationship, nickname) or (name, nickname) → (nickname, canonical)."""
    pairs: set[tuple[str, str]] = set()
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        cells = [c.strip().upper() for c in row if c.strip()]
        if len(cells) < 2 or cells[0] in {"NAME1", "NAME", "CANONICAL", "FORMAL"}:
            continue
        canonical, nickname = cells[0], cells[-1]
        if canonical.isalpha() and nickname.isalpha():
            pairs.add((canonical, canonical))
            pairs.add((nickname, canonical))
    return pairs


@cache
def nickname_rows() -> frozenset[tuple[str, str]]:
    """Every (name, group) pair, upper case, accents as written in the sources."""
    rows: set[tuple[str, str]] = set()
    english = _read_csv_text("nicknames", "names.csv")
    if english:
        rows |= _pairs_from_csv(english)
    spanish = _read_csv_text("lastknown.data", SPANISH_NICKNAMES)
    if spanish:
        from unidecode import unidecode

        rows |= _pairs_from_csv(unidecode(spanish))
    return frozenset(rows)


def spanish_nicknames_available() -> bool:
    """True when data/nicknames_es.csv ships with the package."""
    return _read_csv_text("lastknown.data", SPANISH_NICKNAMES) is not None


def register_nicknames(engine: Engine) -> str:
    """Load the nickname lookup into ``engine`` as :data:`NICKNAME_TABLE`; return its name."""
    rows = sorted(nickname_rows())
    data = pa.table({"name": [r[0] for r in rows], "grp": [r[1] for r in rows]})
    engine.register_arrow(f"{NICKNAME_TABLE}_arrow", data)
    engine.execute(f"CREATE OR REPLACE TABLE {NICKNAME_TABLE} AS "
                   f"SELECT name, grp FROM {NICKNAME_TABLE}_arrow")
    return NICKNAME_TABLE


def first_groups_sql(source: str, *, keep: str = "s.*") -> str:
    """``source`` plus ``first_groups``: the nickname groups of ``first_n`` (itself if none)."""
    return f"""
    SELECT {keep}, coalesce(g.groups, CASE WHEN s.first_n IS NOT NULL THEN [s.first_n] END)
        AS first_groups
    FROM {source} AS s
    LEFT JOIN (SELECT name, list(DISTINCT grp ORDER BY grp) AS groups
               FROM {NICKNAME_TABLE} GROUP BY name) AS g
      ON g.name = s.first_n
    """
