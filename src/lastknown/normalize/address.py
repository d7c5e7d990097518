"""Address cleaning rules, as SQL, applied identically to the master and to requests.

The USPS Publication 28 abbreviations come from the tables that
usaddress-scourgify ships (``scourgify.address_constants``); they are turned
into SQL ``MAP`` literals, never typed by hand.

Rules
-----
* upper case, accents stripped, punctuation removed; ``#`` kept as a unit marker;
* the house number is the leading run of digits (``1234`` in ``1234-B Main``);
* the street *type* is mapped to its USPS abbreviation (``STREET`` → ``ST``) only
  where a type stands — the last token, or the one before a trailing directional —
  and directionals only at either end (``NORTH`` → ``N``); ordinals everywhere
  (``FIRST`` → ``1ST``, up to ``TWENTIETH`` and the tens; two words such as
  ``TWENTY FIRST`` are not read). Words inside the street name keep their spelling: Pub 28
  also abbreviates ``VALLEY``, ``ORCHARD``, ``SPRING`` (``VLY``, ``ORCH``, ``SPG``),
  and mapping those inside a name turned a one-letter typo (``VALEY``) into a
  mismatch the typo rule could no longer see;
* a unit designator (``APT``, ``UNIT``, ``STE``, ``#`` …) inside the street line
  starts the unit; so does a bare digit-bearing token after the street type
  (``2528 S Sierra Pl 3D``); the unit is reduced to its identifier (``Apt 4-B`` → ``4B``);
* the street *name* drops a leading/trailing directional and a trailing street
  type, so ``1234 West Main Street`` and ``1234 W Main`` share ``MAIN``;
* a numbered street run together with the next word is split (``8THDR`` → ``8TH DR``);
* an ordinal's suffix is the one its number takes (``17HT`` → ``17TH``);
* a city, state and ZIP pasted after the street line are cut off when the city is the
  row's own (:func:`place_tail_cut_sql`);
* zip → first five digits (letters that look like digits read as them: ``O`` → ``0``);
  a leading house number of digits and O/I/L read the same way (``1O74`` → ``1074``);
  city tokens ``ST``/``MT``/``FT`` → ``SAINT``/``MOUNT``/``FORT``;
* ``street_line`` is the street name and the street type *spelled out*, without spaces
  (``PARKERSTREET``): a requester's misspelt or split type (``Parker Tsreet``,
  ``Franc P Lace``) is not recognised as a type, stays in the name, and still lies one
  edit (or none) from the record's line — the confirmation rule uses it
  (:func:`lastknown.match.decide.address_confirmed_sql`).

>>> "ALY" in street_type_map_sql()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from scourgify import address_constants as usps

from lastknown.normalize.names import sql_list
from lastknown.normalize.usps import STATE_CODES, STATE_NAMES

#: The normalised address columns every table carries after :func:`normalised_address_sql`.
ADDRESS_COLUMNS: tuple[str, ...] = (
    "house_number", "predir", "street_name", "street_type", "unit_n", "zip5", "city_n",
    "state_n", "street_line",
)

_ORDINALS = {
    "FIRST": "1ST", "SECOND": "2ND", "THIRD": "3RD", "FOURTH": "4TH", "FIFTH": "5TH",
    "SIXTH": "6TH", "SEVENTH": "7TH", "EIGHTH": "8TH", "NINTH": "9TH", "TENTH": "10TH",
    "ELEVENTH": "11TH", "TWELFTH": "12TH", "THIRTEENTH": "13TH", "FOURTEENTH": "14TH",
    "FIFTEENTH": "15TH", "SIXTEENTH": "16TH", "SEVENTEENTH": "17TH", "EIGHTEENTH": "18TH",
    "NINETEENTH": "19TH", "TWENTIETH": "20TH", "THIRTIETH": "30TH", "FORTIETH": "40TH",
    "FIFTIETH": "50TH", "SIXTIETH": "60TH", "SEVENTIETH": "70TH", "EIGHTIETH": "80TH",
    "NINETIETH": "90TH", "HUNDREDTH": "100TH",
}
_CITY_WORDS = {"ST": "SAINT", "MT": "MOUNT", "FT": "FORT"}


def _map_literal(mapping: dict[str, str]) -> str:
    body = ", ".join(
        "'" + k.replace("'", "''") + "': '" + v.replace("'", "''") + "'"
        for k, v in sorted(mapping.items())
    )
    return "MAP {" + body + "}"


@cache
def street_type_map_sql() -> str:
    """USPS street types (all spellings → abbreviation) as a SQL MAP literal."""
    return _map_literal(dict(usps.STREET_TYPE_ABBREVIATIONS))


@cache
def street_type_words() -> dict[str, str]:
    """USPS street-type abbreviation → one spelled-out word (``ST`` → ``STREET``).

    Of the Pub 28 spellings of a type, the longest that is not a plural of another
    (``LANE``, not ``LANES``).

    >>> street_type_words()["PL"], street_type_words()["LN"], street_type_words()["PKWY"]
    ('PLACE', 'LANE', 'PARKWAY')
    """
    spellings: dict[str, set[str]] = {}
    for word, abbreviation in usps.STREET_TYPE_ABBREVIATIONS.items():
        spellings.setdefault(abbreviation, set()).add(word)
    words = {}
    for abbreviation, names in spellings.items():
        singular = [n for n in names if not (n.endswith("S") and n[:-1] in names)]
        words[abbreviation] = max(singular or names, key=lambda n: (len(n), n))
    return words


@cache
def _type_token_map_sql() -> str:
    """Where a street type stands: types, directionals and ordinals."""
    mapping = dict(usps.STREET_TYPE_ABBREVIATIONS)
    mapping.update(usps.DIRECTIONAL_REPLACEMENTS)
    mapping.update(_ORDINALS)
    return _map_literal(mapping)


@cache
def _edge_token_map_sql() -> str:
    """At the start of the street line: directionals and ordinals."""
    mapping = dict(usps.DIRECTIONAL_REPLACEMENTS)
    mapping.update(_ORDINALS)
    return _map_literal(mapping)


def _mapped_tokens_sql(tokens: str) -> str:
    """Map each token by its position: see the module rules."""
    dir_words = sql_list(sorted(set(usps.DIRECTIONAL_REPLACEMENTS)
                                | set(usps.DIRECTIONAL_REPLACEMENTS.values())))
    at_type = (f"len({tokens}) > 1 AND (i = len({tokens}) OR (i = len({tokens}) - 1 "
               f"AND i > 1 AND {tokens}[-1] IN {dir_words}))")
    mapped = (f"list_transform({tokens}, lambda t, i: CASE "
              f"WHEN {at_type} THEN coalesce({_type_token_map_sql()}[t], t) "
              f"WHEN i = 1 AND len({tokens}) > 1 THEN coalesce({_edge_token_map_sql()}[t], t) "
              f"ELSE coalesce({_map_literal(_ORDINALS)}[t], t) END)")
    return ordinal_tokens_sql(mapped)


_ORDINAL_SUFFIX = "([STNDRH]{1,3}|[A-Z][STNDRH]|[STNDRH][A-Z])$"
_ORDINAL_NUMBER = "^[0-9OILZSB]*[0-9][0-9OILZB]*"  # no S after a digit: 1ST is 1 + ST


def ordinal_tokens_sql(tokens: str) -> str:
    """Each numbered street's ordinal in a token list with its suffix written right
    (``17HT``, ``38THH``, ``25TU`` → ``17TH``, ``38TH``, ``25TH``; ``21TH`` → ``21ST``): the
    number says which suffix it takes, so a keyed-wrong suffix carries no information;
    letters keyed or scanned for digits in the number are read as digits (``Z7TH``,
    ``3LST`` → ``27TH``, ``31ST``). Other tokens stay as they are; tokens without a digit
    (nearly all) pass one cheap test."""
    number, suffix = _ORDINAL_NUMBER, _ORDINAL_SUFFIX
    read = (f"list_transform({tokens}, lambda t: CASE WHEN NOT regexp_matches(t, '[0-9]') "
            f"THEN t WHEN regexp_matches(t, '{number}{suffix}') "
            f"THEN translate(regexp_extract(t, '{number}'), '{OCR_LETTERS}', "
            f"'{OCR_DIGITS}') || regexp_extract(t, '{suffix}') ELSE t END)")
    return (f"list_transform({read}, lambda t: CASE WHEN NOT regexp_matches(t, '^[0-9]') "
            f"THEN t ELSE {_ordinal_suffix_sql('t', suffix)} END)")


def _ordinal_suffix_sql(token: str, suffix: str) -> str:
    tail = f"CAST(right(regexp_extract({token}, '^[0-9]+'), 2) AS INTEGER)"
    return (f"CASE WHEN regexp_matches({token}, '^[0-9]+{suffix}') "
            f"THEN regexp_extract({token}, '^[0-9]+') || CASE "
            f"WHEN {tail} BETWEEN 11 AND 13 THEN 'TH' WHEN {tail} % 10 = 1 THEN 'ST' "
            f"WHEN {tail} % 10 = 2 THEN 'ND' WHEN {tail} % 10 = 3 THEN 'RD' ELSE 'TH' END "
            f"ELSE {token} END")


def _unit_designators() -> list[str]:
    words = set(usps.OCCUPANCY_TYPE_ABBREVIATIONS) | set(usps.OCCUPANCY_TYPE_ABBREVIATIONS.values())
    # Words that are also common street words stay street words unless followed by a unit.
    return sorted(words - {"KEY", "PIER", "SIDE", "STOP", "FRONT", "REAR", "LOT", "SLIP"}
                  | {"NO", "NUM", "NBR"})


def _directionals() -> list[str]:
    return sorted(set(usps.DIRECTIONAL_REPLACEMENTS.values()))


#: Letters a scanner or a hurried typist puts for digits (``O`` for ``0``, ``l`` for ``1``).
OCR_LETTERS, OCR_DIGITS = "OQDILZSB", "00011258"


def ocr_digits_sql(expr: str) -> str:
    """A ZIP code with letters read as the digits they resemble (``O2I35`` → ``02135``)."""
    return f"translate(coalesce({expr}, ''), '{OCR_LETTERS}', '{OCR_DIGITS}')"


def house_number_ocr_sql(expr: str) -> str:
    """A leading house number with O/I/L read as digits, when it has two digits or more
    and nothing but digits and those letters (``1O74 W 350 N`` → ``1074 W 350 N``);
    ``12B``, ``N 5TH`` and ``1 OAK`` stay as written."""
    head = f"regexp_extract({expr}, '^[0-9OIL]+')"
    return (f"CASE WHEN regexp_matches({expr}, '^[0-9OIL]*[0-9][0-9OIL]*[0-9][0-9OIL]*( |$)') "
            f"AND regexp_matches({head}, '[OIL]') "
            f"THEN translate({head}, 'OIL', '011') || substr({expr}, length({head}) + 1) "
            f"ELSE {expr} END")


#: A house number: digits with an optional fraction (``12F12`` for ``12 1/2``), or a
#: Wisconsin grid number (``W156N8480``).
HOUSE_NUMBER = "[0-9]+(F[0-9]+)?|[NSEW][0-9]+[NSEW][0-9]+"


def glued_ordinal_sql(cleaned: str) -> str:
    """A numbered street run together with the word after it split (``400 8THDR`` →
    ``400 8TH DR``, ``988 35THST`` → ``988 35TH ST``); the house number is never split."""
    return (f"regexp_replace({cleaned}, ' ([0-9]+(?:ST|ND|RD|TH))([A-Z]{{2,}})( |$)', "
            f"' \\1 \\2\\3', 'g')")


def street_line_sql(expr: str) -> str:
    """The street line cleaned, with its house number in one token (see :data:`HOUSE_NUMBER`).

    * a Queens-style hyphenated number keeps both parts (``107-12`` → ``10712``);
    * a fraction joins the number (``12 1/2`` → ``12F12``), so ``12 1/4`` stays another house;
    * a Puerto Rico urbanization line puts its number first (``URB Las Gladiolas 150
      Calle A`` → ``150 CALLE A URB LAS GLADIOLAS``);
    * a box is a house number on a street named by its route (``PO Box 123`` →
      ``123 POBOX``; ``RR 2 Box 15`` → ``15 RR 2``; ``PSC 1234 Box 5678`` →
      ``5678 PSC 1234``), so boxes confirm like houses do.
    """
    raw = f"upper(trim(coalesce(CAST({expr} AS VARCHAR), '')))"
    joined = (f"regexp_replace(regexp_replace({raw}, '^([0-9]+)-([0-9]+)(\\s)', '\\1\\2\\3'), "
              f"'^([0-9]+)\\s+([0-9])/([0-9]+)(\\s)', '\\1F\\2\\3\\4')")
    cleaned = glued_ordinal_sql(clean_address_sql(joined))
    urbanization = (f"regexp_replace({cleaned}, '^(URB|URBANIZACION) ([A-Z ]+?) ([0-9]+) (.+)$', "
                    f"'\\3 \\4 \\1 \\2')")
    boxes = (f"regexp_replace(regexp_replace({urbanization}, "
             f"'^(P ?O|POST OFFICE) BOX ([0-9]+)', '\\2 POBOX'), "
             f"'^(RR|HC|PSC|CMR|UNIT|RURAL ROUTE) ([0-9]+) BOX ([0-9]+)', '\\3 \\1 \\2')")
    return house_number_ocr_sql(boxes)


def place_tail_cut_sql(street: str, city: str) -> str:
    """A cleaned street line without the city, state and ZIP pasted after it
    (``74 CHERRY AVE ANAHEIM CA 928013221`` → ``74 CHERRY AVE``): cut where the row's own
    ``city`` (cleaned) is followed only by a state (code, name or old abbreviation) and a
    ZIP, and only if a street remains — three tokens or more, or one ending in a street
    type (``45 W BOSTON`` in Boston stays as it is)."""
    tail = f"' ' || {city} || '((?: [A-Z]+)*?)(?: [0-9]{{5}}(?: ?[0-9]{{4}})?)?$'"
    states = sql_list(["", *sorted(STATE_CODES | set(STATE_NAMES))])
    cut = f"regexp_replace({street}, {tail}, '')"
    rest = f"string_split({cut}, ' ')"
    return (f"CASE WHEN {city} <> '' AND contains({street}, ' ' || {city}) "
            f"AND regexp_matches({street}, {tail}) "
            f"AND replace(regexp_extract({street}, {tail}, 1), ' ', '') IN {states} "
            f"AND (len({rest}) >= 3 OR {street_type_map_sql()}[{rest}[-1]] IS NOT NULL) "
            f"THEN {cut} ELSE {street} END")


def clean_address_sql(expr: str) -> str:
    """Upper-case, accent-free; ``#`` spaced out as a token; other punctuation → space."""
    return (
        "trim(regexp_replace(regexp_replace(regexp_replace(regexp_replace("
        f"upper(strip_accents(coalesce(CAST({expr} AS VARCHAR), ''))), "
        "'[''’.]', '', 'g'), '#', ' # ', 'g'), '[^A-Z0-9#]+', ' ', 'g'), ' +', ' ', 'g'))"
    )


def unit_identifier_sql(tokens: str) -> str:
    """Reduce unit tokens (``['APT', '4', 'B']``) to an identifier (``4B``), NULL if none."""
    return (
        f"NULLIF(array_to_string(list_filter({tokens}, "
        f"lambda t: t NOT IN {sql_list(_unit_designators())}), ''), '')"
    )


def normalised_address_sql(source: str, *, keep: Sequence[str], street: str = "street",
                           unit: str = "unit", city: str = "city", state: str = "state",
                           zip_code: str = "zip") -> str:
    """SELECT over ``source`` keeping ``keep`` and adding :data:`ADDRESS_COLUMNS`."""
    kept = ", ".join(keep)
    dirs = sql_list(_directionals())
    types = street_type_map_sql()
    units = sql_list(_unit_designators())
    city_map = _map_literal(_CITY_WORDS)
    # the street name's tokens: the core without a pre-directional or a trailing type
    name_tokens = ("list_filter(_core, lambda t, i: NOT (i = 1 AND _has_predir) "
                   "AND NOT (i = len(_core) AND _type IS NOT NULL))")
    return f"""
    SELECT {kept}, house_number,
        CASE WHEN _has_predir THEN _core[1] END AS predir,
        NULLIF(array_to_string({name_tokens}, ' '), '') AS street_name,
        _type AS street_type,
        coalesce({unit_identifier_sql('_unit_col')}, {unit_identifier_sql('_unit_in_street')})
            AS unit_n,
        NULLIF(left(regexp_replace({ocr_digits_sql(f"upper(CAST({zip_code} AS VARCHAR))")},
                                   '[^0-9]', '', 'g'), 5), '') AS zip5,
        NULLIF(array_to_string(list_transform(
            string_split(_city_c, ' '),
            lambda t: coalesce({city_map}[t], t)), ' '), '') AS city_n,
        NULLIF(upper(trim(coalesce(CAST({state} AS VARCHAR), ''))), '') AS state_n,
        NULLIF(array_to_string({name_tokens}, '')
            || coalesce({_map_literal(street_type_words())}[_type], ''), '') AS street_line
    FROM (
        SELECT *,
            -- a leading directional is a pre-directional only if a name remains after it
            len(_core) > 1 + CASE WHEN _type IS NULL THEN 0 ELSE 1 END AND _core[1] IN {dirs}
                AS _has_predir
        FROM (
        SELECT *,
            CASE WHEN len(_core) > 1 AND {types}[_core[-1]] IS NOT NULL
                 THEN {types}[_core[-1]] END AS _type
        FROM (
            SELECT *,
                -- a trailing directional goes, but not after a grid number (350 N is
                -- another street than 350 S)
                CASE WHEN len(_mapped) > 1 AND _mapped[-1] IN {dirs}
                          AND NOT regexp_matches(_mapped[-2], '^[0-9]+$')
                     THEN _mapped[1:-2] ELSE _mapped END AS _core
            FROM (
                SELECT *,
                    {_mapped_tokens_sql('_street_part')} AS _mapped,
                    CASE WHEN _cut IS NULL THEN [] ELSE _rest[_cut:] END AS _unit_in_street
                FROM (
                    SELECT *,
                        CASE WHEN _cut IS NULL THEN _rest ELSE _rest[1:_cut - 1] END
                            AS _street_part
                    FROM (
                    SELECT *,
                        coalesce(NULLIF(list_position(
                            list_transform(_rest, lambda t: t IN {units}), true), 0),
                            CASE WHEN len(_rest) >= 3 AND regexp_matches(_rest[-1], '[0-9]')
                                      AND {types}[_rest[-2]] IS NOT NULL
                                 THEN len(_rest) END) AS _cut
                    FROM (
                        SELECT *,
                            NULLIF(regexp_extract(_st, '^({HOUSE_NUMBER})', 1), '')
                                AS house_number,
                            list_filter(string_split(
                                CASE WHEN regexp_matches(_st, '^({HOUSE_NUMBER})')
                                     THEN regexp_replace(_st, '^[0-9A-Z]*', '') ELSE _st END,
                                ' '), lambda t: t <> '') AS _rest,
                            list_filter(string_split({clean_address_sql(unit)}, ' '),
                                        lambda t: t <> '') AS _unit_col
                        FROM (SELECT *, {place_tail_cut_sql('_st0', '_city_c')} AS _st
                              FROM (SELECT *, {street_line_sql(street)} AS _st0,
                                    {clean_address_sql(city)} AS _city_c FROM {source}))
                    )
                    )
                )
            )
            )
        )
    )
    """
