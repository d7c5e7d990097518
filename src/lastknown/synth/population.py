"""Persons and households: names, sex, ethnicity, TINs and which years each person files.

Everything is a column (numpy array) over all persons; there is no per-person Python
object. Households: singles, couples, couples with an adult child, and couples whose
adult son shares the father's full name (Sr / Jr). About 19% of households are
Hispanic and follow Spanish naming (paternal + maternal surname).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lastknown.synth import tables

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HEAD, SPOUSE, CHILD = 0, 1, 2
SINGLE, COUPLE, COUPLE_JUNIOR, COUPLE_CHILD = 0, 1, 2, 3
_TYPE_SIZES = np.array([1, 2, 3, 3])
_TYPE_SHARES = np.array([0.54, 0.37, 0.025, 0.065])

#: last_style: how the two surnames are written on returns.
ONE_SURNAME, SPACED, HYPHENATED = 0, 1, 2
#: suffix codes -> text.
SUFFIXES: tuple[str, ...] = ("", "JR", "SR", "II", "III")
JR, SR = 1, 2
FILING_STATUS_NAMES: tuple[str, ...] = ("single", "mfj", "mfs", "hoh", "qss")

HISPANIC_SHARE = 0.19
NON_FILER_SHARE = 0.09


@dataclass(frozen=True, kw_only=True)
class GivenNames:
    """Male then female first-name tables concatenated; index into ``names``."""

    names: npt.NDArray[np.str_]
    accented: npt.NDArray[np.str_]
    female_offset: int


@dataclass(frozen=True, kw_only=True)
class Population:
    """Column arrays over persons (length ``n``) and households."""

    n: int
    household: IntArray
    member: IntArray
    household_type: IntArray  # per household
    male: BoolArray
    hispanic: BoolArray
    first: IntArray  # index into GivenNames
    middle: IntArray  # -1: none
    surname1: IntArray  # index into tables.surnames()
    surname2: IntArray  # -1: none
    last_style: IntArray
    suffix: IntArray
    tin: IntArray  # first TIN (ITIN for two-TIN persons)
    tin2: IntArray  # -1: none; the SSN obtained later
    tin2_year: IntArray  # first tax year filed under tin2 (9999 if none)
    files: BoolArray  # (n, years): files a return that year (own or joint)
    joint_primary: IntArray  # for a joint filer: the primary's person index; else -1
    status: IntArray  # filing status code per person (FILING_STATUS_NAMES)


def given_names() -> GivenNames:
    male, female = tables.first_names("M"), tables.first_names("F")
    return GivenNames(
        names=np.concatenate([male.names, female.names]),
        accented=np.concatenate([male.accented, female.accented]),
        female_offset=len(male.names),
    )


def tin_text(tins: IntArray) -> npt.NDArray[np.str_]:
    """9-digit zero-padded TIN strings."""
    return np.char.zfill(tins.astype(np.str_), 9)


def _unique_draws(draw: Callable[[int], IntArray], n: int) -> IntArray:
    got: IntArray = np.empty(0, dtype=np.int64)
    while len(got) < n:
        cand = np.concatenate([got, draw(int((n - len(got)) * 1.1) + 16)])
        _, first = np.unique(cand, return_index=True)
        got = cand[np.sort(first)]
    return got[:n]


#: Most shards a population can be split into: TINs of shard ``k`` of ``K`` use only SSN
#: areas and ITIN middle digits congruent to ``k`` modulo ``K`` (there are 100 middle digits).
MAX_TIN_SHARDS = 100


def _draw_tins(rng: np.random.Generator, n_ssn: int, n_itin: int,
               tin_shard: tuple[int, int] = (0, 1)) -> tuple[IntArray, IntArray]:
    """Distinct SSNs and ITINs; shard ``k`` of ``K`` draws from its own disjoint TIN class."""
    k_shard, n_shards = tin_shard
    if not 0 <= k_shard < n_shards <= MAX_TIN_SHARDS:
        raise ValueError(f"tin_shard {tin_shard} must be (k, K) with 0 <= k < K <= "
                         f"{MAX_TIN_SHARDS}")
    areas = np.array([a for a in range(1, 900) if a != 666 and a % n_shards == k_shard])
    middles = np.array([m for m in range(100) if m % n_shards == k_shard])

    def ssn(k: int) -> IntArray:
        if n_shards == 1:  # the original draw: a seed gives the same TINs as before sharding
            area = rng.integers(1, 900, k)
            area = np.where(area == 666, 667, area)
        else:
            area = rng.choice(areas, k)
        return np.asarray(area * 1_000_000 + rng.integers(1, 100, k) * 10_000
                          + rng.integers(1, 10_000, k), dtype=np.int64)

    itin_groups = np.array([*range(50, 66), *range(70, 89), 90, 91, 92, *range(94, 100)])

    def itin(k: int) -> IntArray:
        middle = rng.integers(0, 100, k) if n_shards == 1 else rng.choice(middles, k)
        return np.asarray(900_000_000 + middle * 1_000_000
                          + rng.choice(itin_groups, k) * 10_000 + rng.integers(0, 10_000, k),
                          dtype=np.int64)

    return _unique_draws(ssn, n_ssn), _unique_draws(itin, n_itin)


def _households(rng: np.random.Generator, n: int) -> tuple[IntArray, IntArray, IntArray]:
    avg = float((_TYPE_SIZES * _TYPE_SHARES).sum())
    types = rng.choice(4, int(n / avg * 1.1) + 8, p=_TYPE_SHARES)
    sizes = _TYPE_SIZES[types]
    cum = np.cumsum(sizes)
    h = int(np.searchsorted(cum, n)) + 1
    types, sizes = types[:h].copy(), sizes[:h].copy()
    sizes[-1] -= int(cum[h - 1] - n)
    if sizes[-1] < _TYPE_SIZES[types[-1]]:
        types[-1] = SINGLE if sizes[-1] == 1 else COUPLE
    household = np.repeat(np.arange(h), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    member = np.arange(n) - starts
    return household.astype(np.int64), member.astype(np.int64), types.astype(np.int64)


def _draw_names(rng: np.random.Generator, table: tables.NameTable, hispanic: BoolArray) -> IntArray:
    out = np.empty(len(hispanic), dtype=np.int64)
    for flag, weights in ((True, table.w_hispanic), (False, table.w_other)):
        mask = hispanic == flag
        out[mask] = rng.choice(len(table.names), int(mask.sum()), p=weights)
    return out


def _draw_given(rng: np.random.Generator, given: GivenNames, male: BoolArray,
                hispanic: BoolArray) -> IntArray:
    out = np.empty(len(male), dtype=np.int64)
    for is_male, sex, offset in ((True, "M", 0), (False, "F", given.female_offset)):
        mask = male == is_male
        out[mask] = _draw_names(rng, tables.first_names(sex), hispanic[mask]) + offset
    return out


def build_population(rng: np.random.Generator, *, n: int, years: int,
                     tin_shard: tuple[int, int] = (0, 1)) -> Population:
    """Draw ``n`` persons in households, with names, TINs and filing years.

    ``tin_shard=(k, K)``: this is shard ``k`` of ``K`` independently drawn populations;
    its TINs come from a class no other shard uses, so TINs are unique across shards.
    """
    household, member, htype = _households(rng, n)
    ptype = htype[household]
    head = np.arange(n) - member  # index of each person's household head
    h_hisp = rng.random(len(htype)) < HISPANIC_SHARE
    hispanic = h_hisp[household] ^ ((member == SPOUSE) & (rng.random(n) < 0.12))

    same_sex = rng.random(len(htype)) < 0.015
    head_male = np.where(htype == SINGLE, rng.random(len(htype)) < 0.5, True)
    head_male |= htype == COUPLE_JUNIOR
    male = np.where(member == HEAD, head_male[household],
                    np.where(member == SPOUSE, same_sex[household] & head_male[household],
                             np.where(ptype == COUPLE_JUNIOR, True, rng.random(n) < 0.5)))

    given = given_names()
    first = _draw_given(rng, given, male, hispanic)
    middle = _draw_given(rng, given, male, hispanic)
    has_middle = rng.random(n) < np.where(hispanic, 0.45, 0.70)
    middle = np.where(has_middle & (middle != first), middle, -1)

    sur_table = tables.surnames()
    own1 = _draw_names(rng, sur_table, hispanic)
    own2 = np.where(hispanic, _draw_names(rng, sur_table, np.ones(n, dtype=np.bool_)), -1)
    surname1, surname2 = own1.copy(), own2.copy()
    last_style = np.where(own2 >= 0, rng.choice(3, n, p=[0.30, 0.55, 0.15]), ONE_SURNAME)

    spouse = (member == SPOUSE) & ~same_sex[household]
    r = rng.random(n)
    takes = spouse & np.where(hispanic, r < 0.25, r < 0.80)
    surname1 = np.where(takes, own1[head], surname1)
    surname2 = np.where(takes, -1, surname2)
    last_style = np.where(takes, ONE_SURNAME, last_style)
    hyphen = spouse & ~hispanic & (r >= 0.92)
    surname2 = np.where(hyphen, own1[head], surname2)
    last_style = np.where(hyphen, HYPHENATED, last_style)

    child = member == CHILD
    mother = head + 1
    surname1 = np.where(child, own1[head], surname1)
    surname2 = np.where(child, np.where(hispanic, own1[np.minimum(mother, n - 1)], -1), surname2)
    last_style = np.where(child & (surname2 < 0), ONE_SURNAME, last_style)

    junior = child & (ptype == COUPLE_JUNIOR)
    for col in (first, middle, surname1, surname2, last_style):
        col[junior] = col[head[junior]]
    suffix = np.where(male & (rng.random(n) < 0.008), rng.choice([JR, 3, 4], n), 0)
    suffix = np.where(junior, JR, np.where((member == HEAD) & (ptype == COUPLE_JUNIOR), SR, suffix))

    tin, tin2, tin2_year = _tins(rng, hispanic, years, tin_shard)
    files, joint_primary, status = _filing(rng, household, member, ptype, head, years)
    return Population(
        n=n, household=household, member=member, household_type=htype, male=male,
        hispanic=hispanic, first=first, middle=middle, surname1=surname1, surname2=surname2,
        last_style=last_style, suffix=suffix, tin=tin, tin2=tin2, tin2_year=tin2_year,
        files=files, joint_primary=joint_primary, status=status,
    )


def _tins(rng: np.random.Generator, hispanic: BoolArray, years: int,
          tin_shard: tuple[int, int] = (0, 1)) -> tuple[IntArray, IntArray, IntArray]:
    n = len(hispanic)
    itin = rng.random(n) < np.where(hispanic, 0.22, 0.015)
    two = itin & (rng.random(n) < 0.15) & (years >= 2)
    ssns, itins = _draw_tins(rng, int((~itin).sum() + two.sum()), int(itin.sum()),
                             tin_shard)
    tin = np.empty(n, dtype=np.int64)
    tin[~itin] = ssns[: int((~itin).sum())]
    tin[itin] = itins
    tin2 = np.full(n, -1, dtype=np.int64)
    tin2[two] = ssns[int((~itin).sum()):]
    tin2_year = np.where(two, rng.integers(1, max(years, 2), n), 9999)
    return tin, tin2, tin2_year


def _filing(rng: np.random.Generator, household: IntArray, member: IntArray, ptype: IntArray,
            head: IntArray, years: int) -> tuple[BoolArray, IntArray, IntArray]:
    """Which years each person files, who files jointly with whom, and the filing status."""
    n = len(household)
    files = np.ones((n, years), dtype=np.bool_)
    non_filer = rng.random(n) < NON_FILER_SHARE
    files[non_filer] = False
    col = np.arange(years)[None, :]
    start = np.where(rng.random(n) < 0.07, rng.integers(1, max(years, 2), n), 0)
    stop = np.where(rng.random(n) < 0.07, rng.integers(0, max(years - 1, 1), n), years - 1)
    files &= (col >= start[:, None]) & (col <= stop[:, None])
    gap = rng.random(n) < 0.03
    files[gap, rng.integers(0, years, n)[gap]] = False
    lost = ~non_filer & ~files.any(axis=1)
    files[lost, rng.integers(0, years, n)[lost]] = True

    couple = (ptype != SINGLE) & (member <= SPOUSE)
    spouse_idx = np.where(member == HEAD, np.minimum(np.arange(n) + 1, n - 1), head)
    both_file = couple & ~non_filer & ~non_filer[spouse_idx]
    joint_h = rng.random(int(household.max()) + 1) < 0.88
    joint = both_file & joint_h[household]
    head_primary = rng.random(int(household.max()) + 1) < 0.75
    primary = np.where(head_primary[household], head, head + 1)
    joint_primary = np.where(joint, primary, -1)
    secondary = joint & (np.arange(n) != primary)
    files[secondary] = files[primary[secondary]]

    single_status = rng.choice([0, 3, 4], n, p=[0.80, 0.18, 0.02])
    status = np.where(joint, 1, np.where(couple, 2, single_status))
    status = np.where(member == CHILD, 0, status)
    return files, joint_primary.astype(np.int64), status.astype(np.int64)
