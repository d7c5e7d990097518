"""Given names that belong to a *different* person: the near-miss names of the attack set.

`near_names` lists real given names (Census 1990 first-name list, shipped with lastknown)
1–2 edits (Damerau–Levenshtein) from a filer's, leaving out those that could be the
filer's own name written another way: for the same sex (the name's more frequent one in
the list), a nickname (the ``nicknames`` package), a same-sounding spelling (metaphone)
or a respelling (`phonetic`). Cross-sex pairs stay in (LOUIS/LOUISE, DUANE/DIANE): the
issue counts them as different people.
"""

from __future__ import annotations

import csv
import gzip
from functools import cache
from pathlib import Path

import jellyfish
from nicknames import NickNamer

from .phonetic import respellings


@cache
def census_first_names() -> dict[str, str]:
    """Upper-case given name → its more frequent sex (``M``/``F``) in the list."""
    import lastknown

    path = Path(lastknown.__file__).parent / "data" / "first_names.csv.gz"
    best: dict[str, tuple[float, str]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            name, freq = rec["name"].upper(), float(rec["freq"])
            if freq > best.get(name, (-1.0, ""))[0]:
                best[name] = (freq, rec["sex"])
    return {name: sex for name, (_, sex) in best.items()}


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


def near_names(given: str) -> list[str]:
    """Real names 1–2 edits from ``given`` that could not be the same person's, sorted.

    >>> "LOUISE" in near_names("LOUIS"), "KENNITH" in near_names("KENNETH")
    (True, False)
    """
    given = given.upper()
    names = census_first_names()
    nick = _nicknamer()
    related = {n.upper() for n in nick.nicknames_of(given) | nick.canonicals_of(given)}
    related |= {v.upper() for v in respellings(given)}
    sound = jellyfish.metaphone(given)
    out = []
    for other, sex in names.items():
        if other == given or len(other) < 3 or abs(len(other) - len(given)) > 2:
            continue
        if not 1 <= jellyfish.damerau_levenshtein_distance(given, other) <= 2:
            continue
        if (other in related or jellyfish.metaphone(other) == sound) \
                and sex == names.get(given, sex):
            continue  # may be the filer's own name written another way
        out.append(other)
    return sorted(out)
