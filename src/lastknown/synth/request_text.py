"""How a requester writes a row: name and address variants, dates, case numbers, statutes.

Given chosen persons, supplied addresses and tax-period masks, produce the request columns
as text, with the variation real request spreadsheets show (nicknames, dropped second
surnames, accents on one side only, swapped given name / surname, ``St``/``Street``,
``Apt 4``/``#4``, ZIP+4, typos, several date and statute spellings).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import polars as pl

from lastknown.synth import render, tables
from lastknown.synth.addresses import AddressTable
from lastknown.synth.population import COUPLE_JUNIOR, JR, SR, Population, given_names

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]

AUTHORISED_STATUTE = "8 U.S.C. 1253(a)(1)"
STATUTE_SPELLINGS: tuple[str, ...] = (
    "8 U.S.C. 1253(a)(1)", "8 USC 1253(a)(1)", "8 U.S.C. § 1253(a)(1)", "8 U.S.C. §1253(a)(1)",
)
REQUEST_COLUMNS: tuple[str, ...] = (
    "request_row_id", "first_name", "middle_name", "last_name", "street", "unit", "city",
    "state", "zip", "removal_order_date", "removal_order_case_number", "statute",
    "tax_periods", "tin",
)


@lru_cache(maxsize=1)
def nickname_tables() -> tuple[StrArray, StrArray]:
    """Per given-name index: one English and one Spanish nickname ('' when none)."""
    given = given_names()
    english, spanish = tables.english_nicknames(), tables.spanish_nicknames()
    # Deterministic choice: the shortest nickname of at least 3 letters, else the first.
    def choose(options: list[str]) -> str:
        usable = sorted((o for o in options if len(o) >= 3), key=lambda o: (len(o), o))
        return usable[0] if usable else ""
    en = np.array([choose(english.get(n, [])) for n in given.names])
    es = np.array([choose(spanish.get(n, [])) for n in given.names])
    return en, es


def period_text(masks: IntArray, first_tax_year: int, years: int,
                as_range: npt.NDArray[np.bool_]) -> StrArray:
    """``2023``, ``2021-2024`` (contiguous, when ``as_range``) or ``2022;2024`` for year masks."""
    k = len(masks)
    lo = np.full(k, years, dtype=np.int64)
    hi = np.full(k, -1, dtype=np.int64)
    count = np.zeros(k, dtype=np.int64)
    listed = np.full(k, "", dtype="<U64")
    for i in range(years):
        bit = ((masks >> i) & 1) == 1
        lo = np.where(bit & (lo == years), i, lo)
        hi = np.where(bit, i, hi)
        count += bit
        year = str(first_tax_year + i)
        joined = np.where(listed == "", year, np.char.add(np.char.add(listed, ";"), year))
        listed = np.where(bit, joined, listed)
    ranged = np.char.add(np.char.add((lo + first_tax_year).astype(np.str_), "-"),
                         (hi + first_tax_year).astype(np.str_))
    contiguous = (hi - lo + 1) == count
    return np.where((count > 1) & contiguous & as_range, ranged, listed).astype(np.str_)


def request_names(rng: np.random.Generator, pop: Population, person: IntArray) -> pl.DataFrame:
    """first_name, middle_name, last_name as a requester would write them."""
    k = len(person)
    hisp = pop.hispanic[person]
    two = pop.surname2[person] >= 0
    style = render.NameStyle(
        accent=hisp & (rng.random(k) < 0.4),
        upper=rng.random(k) < 0.35,
        spaced_particles=rng.random(k) < 0.5,
        last_style=np.where(two, rng.choice(3, k, p=[0.45, 0.40, 0.15]), 0),
        middle_form=np.where(pop.middle[person] >= 0, rng.choice(3, k, p=[0.35, 0.25, 0.40]), 0),
    )
    names = render.render_names(given_names(), first=pop.first[person],
                                middle=pop.middle[person], surname1=pop.surname1[person],
                                surname2=pop.surname2[person], style=style)
    en, es = nickname_tables()
    first_idx = pop.first[person]
    nick = np.where(hisp & (es[first_idx] != ""), es[first_idx], en[first_idx])
    use_nick = (rng.random(k) < np.where(hisp, 0.10, 0.06)) & (nick != "")
    nick_text = np.where(style.upper, nick, np.char.capitalize(nick))

    code = pop.suffix[person]
    paired = (pop.household_type[pop.household[person]] == COUPLE_JUNIOR) & np.isin(code, [JR, SR])
    show_suffix = (code > 0) & (paired | (rng.random(k) < 0.5))
    suffix = render.suffix_text(code, upper=style.upper, dotted=rng.random(k) < 0.3)
    swap = ~paired & (rng.random(k) < 0.02)
    frame = names.with_columns(
        pl.Series("nick", nick_text), pl.Series("use_nick", use_nick),
        pl.Series("suffix", np.where(show_suffix, suffix, "")), pl.Series("swap", swap),
    ).with_columns(
        first_name=pl.when(pl.col("use_nick")).then(pl.col("nick")).otherwise(pl.col("first_name")),
        last_name=pl.when(pl.col("suffix") != "").then(
            pl.col("last_name") + " " + pl.col("suffix")).otherwise(pl.col("last_name")),
    )
    return frame.select(
        pl.when(pl.col("swap")).then(pl.col("last_name")).otherwise(pl.col("first_name"))
        .alias("first_name"),
        "middle_name",
        pl.when(pl.col("swap")).then(pl.col("first_name")).otherwise(pl.col("last_name"))
        .alias("last_name"),
    )


def request_addresses(rng: np.random.Generator, addresses: AddressTable,
                      ids: IntArray) -> pl.DataFrame:
    k = len(ids)
    style = render.draw_address_style(rng, k, full_type=0.35, full_direction=0.3,
                                      typo_rate=0.03, upper=0.4, drop_unit=0.03,
                                      unit_in_street=0.1, zip_p=(0.7, 0.1, 0.2))
    return render.render_addresses(addresses, ids, style, saint_abbrev=rng.random(k) < 0.5)


def order_columns(rng: np.random.Generator, k: int, today: dt.date) -> pl.DataFrame:
    """removal_order_date, removal_order_case_number, statute for valid rows."""
    days_ago = rng.integers(30, 3650, k)
    epoch = (today - dt.date(1970, 1, 1)).days
    fmt = rng.choice(3, k, p=[0.55, 0.35, 0.10])
    case = np.char.zfill(rng.integers(0, 1_000_000_000, k).astype(np.str_), 9)
    frame = pl.DataFrame({
        "d": epoch - days_ago, "fmt": fmt, "case": case, "dash": rng.random(k) < 0.7,
        "statute": np.array(STATUTE_SPELLINGS)[rng.choice(4, k, p=[0.5, 0.2, 0.2, 0.1])],
    }).with_columns(pl.col("d").cast(pl.Date))
    return frame.select(
        pl.when(pl.col("fmt") == 0).then(pl.col("d").dt.strftime("%Y-%m-%d"))
        .when(pl.col("fmt") == 1).then(pl.col("d").dt.strftime("%m/%d/%Y"))
        .otherwise(pl.col("d").dt.strftime("%-m/%-d/%Y")).alias("removal_order_date"),
        pl.when(pl.col("dash")).then(
            pl.concat_str([pl.lit("A"), pl.col("case").str.slice(0, 3), pl.lit("-"),
                           pl.col("case").str.slice(3, 3), pl.lit("-"),
                           pl.col("case").str.slice(6, 3)]))
        .otherwise("A" + pl.col("case")).alias("removal_order_case_number"),
        "statute",
    )
