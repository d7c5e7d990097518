"""Row operators (one error each, on a request row of ``str`` values) and `corrupt_rows`.

A row operator returns True when it changed the row, False when it cannot apply (no
middle name to drop, a ZIP without digits …); it then leaves the row as it was.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable

from .phonetic import respell
from .strings import (
    double_letter,
    drop_letter,
    insert_space,
    keyboard_substitute,
    ocr_confuse,
    remove_space,
    transpose,
    truncate,
)

Row = dict[str, str]
#: The five single-character typing/reading errors, equally likely within a field.
TYPOS = (keyboard_substitute, ocr_confuse, transpose, double_letter, drop_letter)


def _set(row: Row, column: str, value: str) -> bool:
    if value == row.get(column, "") or not value.strip():
        return False
    row[column] = value
    return True


def _typo(row: Row, column: str, rng: random.Random) -> bool:
    return _set(row, column, rng.choice(TYPOS)(row.get(column, ""), rng))


def given_typo(row: Row, rng: random.Random) -> bool:
    """A typing or OCR error in the given name."""
    return _typo(row, "first_name", rng)


def surname_typo(row: Row, rng: random.Random) -> bool:
    """A typing or OCR error in the surname."""
    return _typo(row, "last_name", rng)


def name_respelling(row: Row, rng: random.Random) -> bool:
    """The given name or surname in another romanisation / phonetic spelling."""
    column = rng.choice(("first_name", "last_name"))
    return _set(row, column, respell(row.get(column, ""), rng))


def name_truncation(row: Row, rng: random.Random) -> bool:
    """The surname (or, less often, the given name) cut short by a field width."""
    column = "last_name" if rng.random() < 0.7 else "first_name"
    return _set(row, column, truncate(row.get(column, ""), rng))


def swapped_names(row: Row, rng: random.Random) -> bool:
    """Given name and surname entered in each other's field."""
    first, last = row.get("first_name", ""), row.get("last_name", "")
    if not first.strip() or not last.strip() or first == last:
        return False
    row["first_name"], row["last_name"] = last, first
    return True


def _street_parts(street: str) -> tuple[str, str]:
    """(house number and a space, the rest): errors go into the street name and type."""
    head, _, rest = street.partition(" ")
    if rest and any(ch.isdigit() for ch in head):
        return head + " ", rest
    return "", street


def street_typo(row: Row, rng: random.Random) -> bool:
    """A typing or OCR error in the street name or type (``PARKER TSREET``)."""
    number, rest = _street_parts(row.get("street", ""))
    return _set(row, "street", number + rng.choice(TYPOS)(rest, rng))


def street_spacing(row: Row, rng: random.Random) -> bool:
    """A space typed inside a street word (``FRANC P LACE``) or left out between two."""
    number, rest = _street_parts(row.get("street", ""))
    first, second = (insert_space, remove_space) if rng.random() < 0.5 else (
        remove_space, insert_space)
    new = first(rest, rng)
    if new == rest:
        new = second(rest, rng)
    return _set(row, "street", number + new)


def city_typo(row: Row, rng: random.Random) -> bool:
    """A typing or OCR error in the city (``BRIGTHON``)."""
    return _typo(row, "city", rng)


def zip_digit(row: Row, rng: random.Random) -> bool:
    """One of the five ZIP digits wrong."""
    zip_code = row.get("zip", "")
    spots = [i for i, ch in enumerate(zip_code[:5]) if ch.isdigit()]
    if not spots:
        return False
    i = rng.choice(spots)
    digit = rng.choice([d for d in "0123456789" if d != zip_code[i]])
    return _set(row, "zip", zip_code[:i] + digit + zip_code[i + 1:])


def missing_field(row: Row, rng: random.Random) -> bool:
    """The middle name, the unit or the ZIP left empty (whichever are filled in)."""
    filled = [c for c in ("middle_name", "unit", "zip") if row.get(c, "").strip()]
    if not filled:
        return False
    row[rng.choice(filled)] = ""
    return True


Operator = Callable[[Row, random.Random], bool]
OPERATORS: dict[str, Operator] = {f.__name__: f for f in (
    given_typo, surname_typo, name_respelling, name_truncation, swapped_names, street_typo,
    street_spacing, city_typo, zip_digit, missing_field)}
#: Relative weights (this model's own choice): names are keyed most and typed wrong most
#: often, then the street; record-level errors are rarer. Not tuned on any matcher.
OPERATOR_WEIGHTS: dict[str, float] = {
    "given_typo": 3, "surname_typo": 3, "name_respelling": 2, "name_truncation": 1,
    "swapped_names": 1, "street_typo": 2, "street_spacing": 1, "city_typo": 1,
    "zip_digit": 1, "missing_field": 1}
#: P(1, 2, 3 errors) in a corrupted row.
ERROR_COUNTS = {1: 0.5, 2: 0.3, 3: 0.2}


def corrupt_row(row: Row, rng: random.Random, errors: int) -> list[str]:
    """Apply ``errors`` different operators (weighted) to ``row`` in place; the names of
    those that changed it (fewer when too few can apply)."""
    pool = dict(OPERATOR_WEIGHTS)
    done: list[str] = []
    while pool and len(done) < errors:
        name = rng.choices(list(pool), weights=list(pool.values()))[0]
        del pool[name]
        if OPERATORS[name](row, rng):
            done.append(name)
    return done


def _rank(seed: int, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def corrupt_rows(rows: Iterable[Row], rate: float, seed: int,
                 id_column: str = "request_row_id") -> tuple[list[Row], dict[str, list[str]]]:
    """Copies of ``rows`` with ``round(rate × n)`` of them corrupted (1–3 errors each).

    Deterministic by ``seed``: the rows chosen at a lower rate are among those chosen at a
    higher one, and a chosen row gets the same errors at every rate. Returns the rows (in
    input order) and, per corrupted row id, the operators applied.
    """
    out = [dict(r) for r in rows]
    chosen = sorted(out, key=lambda r: _rank(seed, r[id_column]))[:round(rate * len(out))]
    applied: dict[str, list[str]] = {}
    for row in chosen:
        rng = random.Random(f"{seed}:{row[id_column]}")
        errors = rng.choices(list(ERROR_COUNTS), weights=list(ERROR_COUNTS.values()))[0]
        applied[row[id_column]] = corrupt_row(row, rng, errors)
    return out, applied
