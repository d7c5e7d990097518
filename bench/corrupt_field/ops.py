"""The operators: each takes a request row and a seeded ``random.Random`` and returns the
row as a requester's spreadsheet or export would carry it, or None when the error cannot
occur on this row (no leading zero to lose, no unit to move …) or would change nothing.

Every operator writes one *kind* of keying or export error (module docstring of
``corrupt_field``); none changes who the row is about.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable

from .tables import (
    DIRECTIONS,
    ORDINALS,
    PLACE_WORDS,
    STATES,
    STREET_TYPES,
    SUFFIXES,
    UNIT_WORDS,
    WIDTHS,
)

Row = dict[str, str]
Operator = Callable[[Row, random.Random], "Row | None"]
NAMES = ("first_name", "middle_name", "last_name")
TEXT = (*NAMES, "street", "unit", "city")


def _like(word: str, sample: str) -> str:
    """``word`` in the letter case of ``sample`` (upper, lower or title)."""
    letters = [c for c in sample if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return word.lower()
    if letters and not all(c.isupper() for c in letters):
        return word.title()
    return word.upper()


def _changed(row: Row, new: Row) -> Row | None:
    return new if new != row else None


def _swap_token(text: str, rng: random.Random,
                forms: Callable[[str], list[str]]) -> str | None:
    """``text`` with one token replaced by another form of it, or None if none has one."""
    tokens = text.split()
    spots = [(i, f) for i, t in enumerate(tokens) if (f := forms(t.upper().rstrip(".,")))]
    if not spots:
        return None
    i, options = rng.choice(spots)
    tokens[i] = _like(rng.choice(options), text)
    return " ".join(tokens)


# --- ZIP and state -------------------------------------------------------------------


def zip_leading_zero(row: Row, rng: random.Random) -> Row | None:
    """A ZIP read as a number by a spreadsheet: 02134 -> 2134, 021341234 -> 21341234."""
    digits = re.sub(r"\D", "", row["zip"])
    if not digits.startswith("0") or len(digits) not in (5, 9):
        return None
    kept = digits if len(digits) == 9 and "-" not in row["zip"] else digits[:5]
    return _changed(row, dict(row, zip=str(int(kept))))


def zip_plus4(row: Row, rng: random.Random) -> Row | None:
    """ZIP+4 added or written another way: 02134-1234, 021341234, 02134 1234; or dropped."""
    digits = re.sub(r"\D", "", row["zip"])
    if len(digits) == 9:
        options = [digits[:5], digits, f"{digits[:5]} {digits[5:]}", f"{digits[:5]}-{digits[5:]}"]
    elif len(digits) == 5:
        four = f"{rng.randrange(1, 10000):04d}"
        options = [f"{digits}-{four}", digits + four, f"{digits} {four}"]
    else:
        return None
    options = [o for o in options if o != row["zip"]]
    return dict(row, zip=rng.choice(options)) if options else None


def state_form(row: Row, rng: random.Random) -> Row | None:
    """State in full (Massachusetts, MASSACHUSETTS), lower case (ma) or the old style (Mass.)."""
    code = row["state"].strip().upper()
    if code not in STATES:
        return None
    full, gpo = STATES[code]
    new = rng.choices([full, full.upper(), code.lower(), gpo], weights=(4, 2, 3, 1))[0]
    return _changed(row, dict(row, state=new))


# --- names ---------------------------------------------------------------------------


def name_one_column(row: Row, rng: random.Random) -> Row | None:
    """The whole name in one column ("LAST, FIRST M" or "FIRST LAST"), the other empty."""
    first, middle, last = (row[c].strip() for c in NAMES)
    if not first or not last:
        return None
    given = f"{first} {middle}" if middle and rng.random() < 0.5 else first
    whole = (f"{last}, {given}" if rng.random() < 0.75 else f"{given} {last}")
    empty = {"middle_name": "" if given != first else row["middle_name"]}
    if rng.random() < 0.6:
        return dict(row, last_name=whole, first_name="", **empty)
    return dict(row, first_name=whole, last_name="", **empty)


def names_swapped(row: Row, rng: random.Random) -> Row | None:
    """Surname keyed in the given-name column and the given name in the surname column."""
    if not row["first_name"].strip() or not row["last_name"].strip():
        return None
    return _changed(row, dict(row, first_name=row["last_name"], last_name=row["first_name"]))


def middle_in_given(row: Row, rng: random.Random) -> Row | None:
    """The row's middle name or initial keyed into the given-name column (MARIA ELENA,
    JOHN Q, JOHN Q.). A row without one is left alone: an invented initial would be new,
    possibly contradicting, information, not a keying error."""
    first, middle = row["first_name"].strip(), row["middle_name"].strip()
    if not first or not middle:
        return None
    written = rng.choice([middle, middle[0], middle[0] + "."])
    return dict(row, first_name=f"{first} {written}", middle_name="")


def double_surname(row: Row, rng: random.Random) -> Row | None:
    """A two-part surname keyed as one of its parts, hyphenated, spaced or run together."""
    parts = [p for p in re.split(r"[\s-]+", row["last_name"].strip()) if p]
    if len(parts) < 2 or parts[-1].upper().rstrip(".") in SUFFIXES:
        return None
    options = [parts[0], parts[-1], "-".join(parts), " ".join(parts), "".join(parts)]
    options = [o for o in options if o != row["last_name"].strip()]
    return dict(row, last_name=rng.choice(options))


def _accent(name: str, rng: random.Random) -> str | None:
    vowels = [i for i, c in enumerate(name) if c.upper() in "AEIOU"]
    if not vowels:
        return None
    # Spanish stress: GARCÍA, MARÍA; PÉREZ, GÓMEZ; else any vowel
    ending = re.search(r"(I)A$|([AEIOU])[^AEIOU]+E[SZ]$", name.upper())
    i = (ending.start(ending.lastindex or 1) if ending and rng.random() < 0.7
         else rng.choice(vowels))
    return name[:i] + unicodedata.normalize("NFC", name[i] + "\u0301") + name[i + 1:]


def _as_windows_1252(text: str) -> str:
    """UTF-8 text read as Windows-1252 (JOSÉ -> JOSÃ‰); the five bytes that code page
    leaves undefined become the control characters of the same number, as Windows does."""
    out = []
    for byte in text.encode("utf-8"):
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out)


def diacritics_apostrophe(row: Row, rng: random.Random) -> Row | None:
    """Accents added (JOSÉ), stripped or mangled by a wrong code page (JOSÃ‰); an
    apostrophe dropped, spaced or curly (O'BRIEN -> OBRIEN / O BRIEN / O’BRIEN); a space
    after MC/MAC (MC DONALD)."""
    column = rng.choice(("first_name", "last_name"))
    name = row[column]
    options: list[str] = []
    if "'" in name or "’" in name:
        options += [re.sub("['’]", "", name), re.sub("['’]", " ", name),
                    re.sub("['’]", "’", name), re.sub("['’]", "`", name)]
    plain = "".join(c for c in unicodedata.normalize("NFD", name)
                    if unicodedata.category(c) != "Mn")
    if plain != name:
        options.append(plain)
    else:
        accented = _accent(name, rng)
        if accented:
            options += [accented, _as_windows_1252(accented)]
    mc = re.match(r"(?i)(mac|mc)([a-z]{3,})$", name)
    if mc:
        options.append(f"{mc.group(1)} {mc.group(2)}")
    options = [o for o in options if o != name]
    return dict(row, **{column: rng.choice(options)}) if options else None


def suffix_in_surname(row: Row, rng: random.Random) -> Row | None:
    """A generational suffix keyed into the surname column: SMITH JR, SMITH, III."""
    last = row["last_name"].strip()
    if not last:
        return None
    sep = rng.choice((" ", ", "))
    return dict(row, last_name=f"{last}{sep}{_like(rng.choice(SUFFIXES), last)}")


# --- street, unit, city --------------------------------------------------------------


def unit_form(row: Row, rng: random.Random) -> Row | None:
    """The unit written another way (#5, APT 5, UNIT 5, bare 5), moved into the street
    line (123 MAIN ST APT 5 / 123 MAIN ST, #5) or left out."""
    unit = row["unit"].strip()
    if not unit:
        return None
    ident = unit.split()[-1].lstrip("#")
    word = rng.choice(UNIT_WORDS)
    form = f"#{ident}" if word == "#" else f"{_like(word, row['street'])} {ident}"
    choice = rng.choices(("column", "street", "drop"), weights=(3, 4, 2))[0]
    if choice == "column":
        return _changed(row, dict(row, unit=rng.choice([form, ident])))
    if choice == "street":
        sep = rng.choice((" ", ", ", " "))
        return dict(row, street=f"{row['street'].rstrip()}{sep}{form}", unit="")
    return dict(row, unit="")


def street_with_city(row: Row, rng: random.Random) -> Row | None:
    """The whole address line pasted into the street column: 12 MAIN ST, BOSTON, MA 02134."""
    street, city, state, zip_code = (row[c].strip() for c in ("street", "city", "state", "zip"))
    if not street or not city:
        return None
    tail = rng.choice([f", {city}, {state} {zip_code}", f" {city} {state}", f", {city}",
                       f" {city}, {state}"])
    return dict(row, street=street + tail)


def directional_form(row: Row, rng: random.Random) -> Row | None:
    """Directions spelled out or shortened: N MAIN ST <-> NORTH MAIN ST, 350 N <-> 350 NORTH."""
    full_to_short = {v: k for k, v in DIRECTIONS.items()}

    def forms(token: str) -> list[str]:
        if token in DIRECTIONS:
            return [DIRECTIONS[token], token + "."]
        return [full_to_short[token]] if token in full_to_short else []

    tokens = row["street"].split()
    if len(tokens) < 3:
        return None
    # never the street name itself: only a direction beside another name word
    head, body = tokens[0], " ".join(tokens[1:])
    new = _swap_token(body, rng, forms)
    return dict(row, street=f"{head} {new}") if new else None


def ordinal_form(row: Row, rng: random.Random) -> Row | None:
    """Numbered streets spelled or in figures: 1ST AVE <-> FIRST AVE."""
    words = {v: k for k, v in ORDINALS.items()}
    new = _swap_token(row["street"], rng, lambda t: [ORDINALS[t]] if t in ORDINALS else
                      [words[t]] if t in words else [])
    return dict(row, street=new) if new and new != row["street"] else None


def street_type_form(row: Row, rng: random.Random) -> Row | None:
    """The street type in another form: ST <-> STREET <-> STR, AVE <-> AVENUE <-> AV …"""
    tokens = row["street"].split()
    for i in range(len(tokens) - 1, 0, -1):  # the last type word, after the house number
        group = next((g for g in STREET_TYPES if tokens[i].upper() in g), None)
        if group and i >= 2:
            options = [f for f in group if f != tokens[i].upper()]
            tokens[i] = _like(rng.choice(options), tokens[i])
            return dict(row, street=" ".join(tokens))
    return None


def place_word_form(row: Row, rng: random.Random) -> Row | None:
    """SAINT/ST, MOUNT/MT, FORT/FT inside a street or city name, in the other form."""
    short_to_full = {v: k for k, v in PLACE_WORDS.items()}
    spots = []
    for column in ("street", "city"):
        tokens = row[column].split()
        last = len(tokens) - 1
        for i, t in enumerate(tokens):
            word = t.upper().rstrip(".")
            if word in PLACE_WORDS:
                spots.append((column, i, PLACE_WORDS[word]))
            elif word in short_to_full and i < last and (column == "city" or i > 0):
                spots.append((column, i, short_to_full[word]))
    if not spots:
        return None
    column, i, new = rng.choice(spots)
    tokens = row[column].split()
    tokens[i] = _like(new, tokens[i])
    return dict(row, **{column: " ".join(tokens)})


# --- the whole row -------------------------------------------------------------------


def punctuation_spacing(row: Row, rng: random.Random) -> Row | None:
    """Stray punctuation and spacing: double spaces, a trailing period or comma, a comma
    after the house number, spaces around the value, a period after a short name."""
    new = dict(row)
    for _ in range(rng.choice((1, 2))):
        column = rng.choice(("street", "street", "first_name", "last_name", "city"))
        value = new[column]
        if not value.strip():
            continue
        kind = rng.randrange(4)
        if kind == 0 and " " in value.strip():
            spaces = [m.start() for m in re.finditer(" ", value)]
            i = rng.choice(spaces)
            value = value[:i] + "  " + value[i + 1:]
        elif kind == 1:
            value = value.rstrip() + rng.choice((".", ",", " .", ";"))
        elif kind == 2 and column == "street" and re.match(r"\d+ ", value):
            value = re.sub(r"^(\d+) ", r"\1, ", value)
        else:
            value = f" {value} "
        new[column] = value
    return _changed(row, new)


def case_style(row: Row, rng: random.Random) -> Row | None:
    """The export's letter case: all text upper, lower, or title case as a spreadsheet's
    PROPER() writes it (Mcdonald, O'brien, 1St Ave)."""
    style = rng.choice((str.upper, str.lower, str.title))
    return _changed(row, dict(row, **{c: style(row[c]) for c in TEXT}))


def fixed_width(row: Row, rng: random.Random) -> Row | None:
    """A fixed-width export: given name, surname, street and city cut at column widths."""
    widths = dict(zip(("first_name", "last_name", "street", "city"), rng.choice(WIDTHS),
                      strict=True))
    new = dict(row, **{c: row[c].strip()[:w].rstrip() for c, w in widths.items()})
    return new if any(new[c] != row[c].strip() for c in widths) else None


#: name -> (operator, weight). The weights are this model's own guess at how often each
#: error reaches a disclosure office in a requester's file; tuned on no matcher.
OPERATORS: dict[str, tuple[Operator, int]] = {
    "zip_leading_zero": (zip_leading_zero, 8),
    "zip_plus4": (zip_plus4, 1),
    "state_form": (state_form, 2),
    "name_one_column": (name_one_column, 1),
    "names_swapped": (names_swapped, 1),
    "middle_in_given": (middle_in_given, 2),
    "double_surname": (double_surname, 3),
    "diacritics_apostrophe": (diacritics_apostrophe, 1),
    "suffix_in_surname": (suffix_in_surname, 1),
    "unit_form": (unit_form, 3),
    "street_with_city": (street_with_city, 1),
    "directional_form": (directional_form, 2),
    "ordinal_form": (ordinal_form, 2),
    "street_type_form": (street_type_form, 2),
    "place_word_form": (place_word_form, 2),
    "punctuation_spacing": (punctuation_spacing, 2),
    "case_style": (case_style, 2),
    "fixed_width": (fixed_width, 1),
}
