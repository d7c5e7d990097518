"""The master: one row per person per tax year filed, as the tax agency would hold it.

A joint return gives two rows (primary and secondary) with the same address text. A few
returns are amended (a second return for the same TIN and year, received later, often
from the address the filer moved to), so "most recent" needs the received_date tie-break.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from lastknown.synth import render
from lastknown.synth.addresses import AddressTable
from lastknown.synth.population import (
    FILING_STATUS_NAMES,
    HEAD,
    Population,
    given_names,
    tin_text,
)

IntArray = npt.NDArray[np.int64]

AMENDED_SHARE = 0.004
MASTER_COLUMNS: tuple[str, ...] = (
    "tin", "tax_year", "filing_status", "role", "first_name", "middle_name", "last_name",
    "name_suffix", "street", "unit", "city", "state", "zip", "received_date",
)


@dataclass(frozen=True, kw_only=True)
class MasterFrame:
    """The master rows plus internal columns (person, year_index, address) for the truth."""

    frame: pl.DataFrame


def tin_in_year(pop: Population, person: IntArray, year_index: IntArray) -> IntArray:
    """The TIN a person files under in a year (the SSN once a two-TIN person has it)."""
    later = (pop.tin2[person] >= 0) & (year_index >= pop.tin2_year[person])
    return np.where(later, pop.tin2[person], pop.tin[person])


def master_names(rng: np.random.Generator, pop: Population) -> pl.DataFrame:
    """How each person's name is written on their returns (the same every year)."""
    n = pop.n
    has_middle = pop.middle >= 0
    style = render.NameStyle(
        accent=pop.hispanic & (rng.random(n) < 0.35),
        upper=rng.random(n) < 0.75,
        spaced_particles=rng.random(n) < 0.5,
        last_style=pop.last_style,
        middle_form=np.where(has_middle, np.where(rng.random(n) < 0.7, 2, 1), 0),
    )
    names = render.render_names(given_names(), first=pop.first, middle=pop.middle,
                                surname1=pop.surname1, surname2=pop.surname2, style=style)
    suffix = render.suffix_text(pop.suffix, upper=np.ones(n, dtype=np.bool_),
                                dotted=np.zeros(n, dtype=np.bool_))
    return names.with_columns(pl.Series("name_suffix", suffix))


def _received(rng: np.random.Generator, tax_year: IntArray, today: dt.date) -> IntArray:
    """Days since 1970-01-01 when each return was received."""
    first = int(tax_year.min())
    jan20 = np.array([(dt.date(y + 1, 1, 20) - dt.date(1970, 1, 1)).days
                      for y in range(first, int(tax_year.max()) + 1)], dtype=np.int64)
    base = jan20[tax_year - first]
    kind = rng.choice(3, len(tax_year), p=[0.85, 0.12, 0.03])
    offset = np.where(kind == 0, rng.integers(0, 86, len(tax_year)),
                      np.where(kind == 1, rng.integers(86, 269, len(tax_year)),
                               rng.integers(269, 600, len(tax_year))))
    limit = (today - dt.date(1970, 1, 1)).days - 1
    return np.asarray(np.minimum(base + offset, limit), dtype=np.int64)


def build_master(rng: np.random.Generator, pop: Population, addresses: AddressTable,
                 history: IntArray, *, first_tax_year: int, today: dt.date) -> MasterFrame:
    """All return rows, rendered, with internal columns ``person``, ``year_index``, ``address``."""
    years = pop.files.shape[1]
    person, year_index = np.nonzero(pop.files)
    person = person.astype(np.int64)
    year_index = year_index.astype(np.int64)
    secondary = (pop.joint_primary[person] >= 0) & (pop.joint_primary[person] != person)
    person, year_index = person[~secondary], year_index[~secondary]
    address = history[pop.household[person], year_index]
    received = _received(rng, year_index + first_tax_year, today)

    amended = rng.random(len(person)) < AMENDED_SHARE
    moved_to = history[pop.household[person[amended]], np.minimum(year_index[amended] + 1,
                                                                   years - 1)]
    limit = (today - dt.date(1970, 1, 1)).days - 1
    person = np.concatenate([person, person[amended]])
    year_index = np.concatenate([year_index, year_index[amended]])
    address = np.concatenate([address, moved_to])
    received = np.concatenate([received, np.minimum(
        received[amended] + rng.integers(30, 200, int(amended.sum())), limit)])

    style = render.draw_address_style(rng, len(person))
    rendered = render.render_addresses(addresses, address, style)

    joint = pop.joint_primary[person] == person
    spouse = np.where(pop.member == HEAD, np.arange(pop.n) + 1, np.arange(pop.n) - 1)
    idx = np.concatenate([np.arange(len(person)), np.flatnonzero(joint)])
    row_person = np.concatenate([person, spouse[person[joint]]])
    role = np.concatenate([np.zeros(len(person), dtype=np.int64),
                           np.ones(int(joint.sum()), dtype=np.int64)])
    row_year = year_index[idx]
    names = master_names(rng, pop)[row_person]
    frame = pl.concat([
        pl.DataFrame({
            "tin": tin_text(tin_in_year(pop, row_person, row_year)),
            "tax_year": (row_year + first_tax_year).astype(np.int32),
            "filing_status": np.array(FILING_STATUS_NAMES)[pop.status[row_person]],
            "role": np.array(["primary", "secondary"])[role],
        }),
        names,
        rendered[idx],
        pl.DataFrame({"received_date": received[idx]}).select(
            pl.col("received_date").cast(pl.Date)),
        pl.DataFrame({"person": row_person, "year_index": row_year, "address": address[idx]}),
    ], how="horizontal")
    frame = frame.select(*MASTER_COLUMNS, "person", "year_index", "address").sort(
        "tax_year", "received_date", "tin", "role")
    return MasterFrame(frame=frame)
