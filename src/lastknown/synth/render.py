"""Turn name and address components into text, with the formatting variation people use.

One call renders a whole column (polars expressions over arrays), driven by per-row style
flags that the caller draws: ``St``/``Street``, ``W``/``West``, ``Apt 4``/``#4``/``Unit 4``,
upper/title case, accents present or not, ``De La Cruz``/``Delacruz``, compound surnames
written with a space or a hyphen or cut to the first surname, small typos.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import polars as pl

from lastknown.synth import tables
from lastknown.synth.addresses import AddressTable
from lastknown.synth.population import SUFFIXES, GivenNames

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

UNIT_PREFIXES: tuple[str, ...] = ("Apt ", "# ", "#", "Unit ", "Apt. ", "")
UNIT_PREFIX_P: tuple[float, ...] = (0.50, 0.10, 0.10, 0.15, 0.10, 0.05)


def typo(word: str) -> str:
    """A plausible one-keystroke error: swap two inner letters (or drop one)."""
    if len(word) < 5 or not word.isalpha():
        return word
    i = len(word) // 2
    swapped = word[: i - 1] + word[i] + word[i - 1] + word[i + 1:]
    return swapped if swapped != word else word[:i] + word[i + 1:]


@lru_cache(maxsize=1)
def _street_tables() -> tuple[StrArray, StrArray, StrArray, StrArray, StrArray, StrArray]:
    names = np.array(tables.STREET_NAMES)
    typos = np.array([typo(s) for s in tables.STREET_NAMES])
    t_abbr = np.array([a for a, _ in tables.STREET_TYPES])
    t_full = np.array([f for _, f in tables.STREET_TYPES])
    d_abbr = np.array([a for a, _ in tables.DIRECTIONS])
    d_full = np.array([f for _, f in tables.DIRECTIONS])
    return names, typos, t_abbr, t_full, d_abbr, d_full


@dataclass(frozen=True, kw_only=True)
class AddressStyle:
    """Per-row formatting choices of an address."""

    full_type: BoolArray
    full_direction: BoolArray
    typo: BoolArray
    upper: BoolArray
    unit_prefix: IntArray  # index into UNIT_PREFIXES
    drop_unit: BoolArray
    unit_in_street: BoolArray
    zip_form: IntArray  # 0: 12345, 1: 123456789, 2: 12345-6789


def draw_address_style(rng: np.random.Generator, k: int, *, full_type: float = 0.25,
                       full_direction: float = 0.15, typo_rate: float = 0.007,
                       upper: float = 0.7, drop_unit: float = 0.03,
                       unit_in_street: float = 0.0, zip_p: tuple[float, float, float] = (
                           0.65, 0.35, 0.0)) -> AddressStyle:
    return AddressStyle(
        full_type=rng.random(k) < full_type,
        full_direction=rng.random(k) < full_direction,
        typo=rng.random(k) < typo_rate,
        upper=rng.random(k) < upper,
        unit_prefix=rng.choice(len(UNIT_PREFIXES), k, p=UNIT_PREFIX_P),
        drop_unit=rng.random(k) < drop_unit,
        unit_in_street=rng.random(k) < unit_in_street,
        zip_form=rng.choice(3, k, p=zip_p),
    )


def render_addresses(addresses: AddressTable, ids: IntArray, style: AddressStyle,
                     *, saint_abbrev: BoolArray | None = None) -> pl.DataFrame:
    """Columns street, unit, city, state, zip for address ``ids`` in ``style``."""
    names, typos, t_abbr, t_full, d_abbr, d_full = _street_tables()
    places = tables.places()
    street_i = addresses.street[ids]
    direction = addresses.direction[ids]
    stype = addresses.street_type[ids]
    place = addresses.place[ids]
    unit = addresses.unit[ids]
    prefix = np.array(UNIT_PREFIXES)[style.unit_prefix]
    unit_text = np.where((unit == "") | style.drop_unit, "", np.char.add(prefix, unit))
    city = places.city[place]
    if saint_abbrev is not None:
        city = np.where(saint_abbrev, np.char.replace(city, "Saint ", "St "), city)
    zip5 = places.zip[place]
    zip4 = np.char.zfill(addresses.zip4[ids].astype(np.str_), 4)
    frame = pl.DataFrame({
        "number": addresses.number[ids],
        "dir": np.where(style.full_direction, d_full[direction], d_abbr[direction]),
        "name": np.where(style.typo, typos[street_i], names[street_i]),
        "type": np.where(style.full_type, t_full[stype], t_abbr[stype]),
        "unit": unit_text,
        "in_street": style.unit_in_street,
        "upper": style.upper,
        "city": city,
        "state": places.state[place],
        "zip5": zip5,
        "zip4": zip4,
        "zip_form": style.zip_form,
    })
    line = pl.concat_str([pl.col("number").cast(pl.Utf8), pl.col("dir"), pl.col("name"),
                          pl.col("type")], separator=" ").str.replace_all(r"\s+", " ")
    line = pl.when(pl.col("in_street") & (pl.col("unit") != "")).then(
        pl.concat_str([line, pl.col("unit")], separator=" ")).otherwise(line)
    unit_col = pl.when(pl.col("in_street")).then(pl.lit("")).otherwise(pl.col("unit"))

    def cased(expr: pl.Expr) -> pl.Expr:
        return pl.when(pl.col("upper")).then(expr.str.to_uppercase()).otherwise(expr)

    zip_expr = (pl.when(pl.col("zip_form") == 0).then(pl.col("zip5"))
                .when(pl.col("zip_form") == 1).then(pl.col("zip5") + pl.col("zip4"))
                .otherwise(pl.col("zip5") + "-" + pl.col("zip4")))
    return frame.select(
        cased(line).alias("street"), cased(unit_col).alias("unit"), cased(pl.col("city")),
        pl.col("state"), zip_expr.alias("zip"),
    )


@lru_cache(maxsize=1)
def surname_forms() -> tuple[StrArray, StrArray, StrArray]:
    """Per surname: plain (Census), accented, and particles spaced (DE LA CRUZ)."""
    t = tables.surnames()
    spaced = np.array([tables.PARTICLE_SURNAMES.get(s, s) for s in t.names])
    return t.names, t.accented, spaced


@dataclass(frozen=True, kw_only=True)
class NameStyle:
    """Per-row choices for writing a name."""

    accent: BoolArray
    upper: BoolArray
    spaced_particles: BoolArray
    last_style: IntArray  # 0: first surname only, 1: spaced, 2: hyphenated
    middle_form: IntArray  # 0: none, 1: initial, 2: full


def _pick(plain: StrArray, accented: StrArray, idx: IntArray, accent: BoolArray) -> StrArray:
    safe = np.maximum(idx, 0)
    text = np.where(accent, accented[safe], plain[safe])
    return np.where(idx >= 0, text, "")


def render_names(given: GivenNames, *, first: IntArray, middle: IntArray, surname1: IntArray,
                 surname2: IntArray, style: NameStyle) -> pl.DataFrame:
    """Columns first_name, middle_name, last_name (suffix handled by the caller)."""
    plain, accented, spaced = surname_forms()
    base1 = np.where(style.spaced_particles, spaced[np.maximum(surname1, 0)],
                     _pick(plain, accented, surname1, style.accent))
    base2 = np.where(style.spaced_particles, spaced[np.maximum(surname2, 0)],
                     _pick(plain, accented, surname2, style.accent))
    base2 = np.where(surname2 >= 0, base2, "")
    mid = _pick(given.names, given.accented, middle, style.accent)
    mid = np.where(style.middle_form == 0, "",
                   np.where(style.middle_form == 1, mid.astype("<U1"), mid))
    frame = pl.DataFrame({
        "first": _pick(given.names, given.accented, first, style.accent),
        "middle": mid,
        "s1": base1,
        "s2": base2,
        "style": style.last_style,
        "upper": style.upper,
    })
    last = (pl.when((pl.col("s2") == "") | (pl.col("style") == 0)).then(pl.col("s1"))
            .when(pl.col("style") == 2).then(pl.col("s1") + "-" + pl.col("s2"))
            .otherwise(pl.col("s1") + " " + pl.col("s2")))

    def cased(expr: pl.Expr) -> pl.Expr:
        return pl.when(pl.col("upper")).then(expr).otherwise(expr.str.to_titlecase())

    return frame.select(cased(pl.col("first")).alias("first_name"),
                        cased(pl.col("middle")).alias("middle_name"),
                        cased(last).alias("last_name"))


def suffix_text(codes: IntArray, *, upper: BoolArray, dotted: BoolArray) -> StrArray:
    """``JR``/``Jr``/``Jr.`` etc.; empty for code 0."""
    base = np.array(SUFFIXES)[codes]
    title = np.where(np.isin(base, ["II", "III"]), base, np.char.capitalize(base))
    text = np.where(upper, base, title)
    dot = dotted & np.isin(codes, [1, 2])
    return np.where(dot, np.char.add(text, "."), text)
