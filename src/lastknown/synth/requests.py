"""Choose who is requested, with which address and tax periods, and what the right answer is.

Mix (of request rows): ~55% ``M`` (a filer, supplied address = one they filed from, periods
containing a filed year), ~8% ``U`` (a filer, an address nobody filed from), ~5% ``P`` (a
confirmed address, periods with no return of that TIN), ~12% ``N`` (a person with no
returns and a name no filer has), ~20% ``R`` (a valid-looking row with exactly one defect).
``A`` is never expected: rows whose honest answer would be ambiguous are not generated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from lastknown.synth import request_text
from lastknown.synth.addresses import AddressTable, draw_addresses
from lastknown.synth.defects import DEFECT_CODES, DUPLICATE_ROW_ID, apply_defects
from lastknown.synth.population import JR, SR, Population, given_names

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SHARES = {"U": 0.08, "P": 0.05, "N": 0.12, "R": 0.20}
TRUTH_COLUMNS: tuple[str, ...] = (
    "request_row_id", "true_tin", "expected_outcome", "expected_street", "expected_unit",
    "expected_city", "expected_state", "expected_zip", "expected_tax_year", "expected_reason",
)


@dataclass(frozen=True, kw_only=True)
class RequestSet:
    """Request rows (REQUEST_COLUMNS, in file order) and truth (TRUTH_COLUMNS)."""

    request: pl.DataFrame
    truth: pl.DataFrame


@dataclass(frozen=True, kw_only=True)
class _Picked:
    """Chosen rows of one kind before rendering."""

    person: IntArray
    address: IntArray
    tin: npt.NDArray[np.str_]  # '' when none
    periods: IntArray  # year bit masks


def _ambiguous(pop: Population, events: pl.DataFrame) -> pl.DataFrame:
    """(person, building) pairs where another filer of a related name filed from that building."""
    names = given_names().names
    first3 = np.char.ljust(names, 3).astype("<U3")
    en, es = request_text.nickname_tables()
    nick_en, nick_es = np.char.upper(en), np.char.upper(es)
    people = events.select("person", "building").unique().sort("person", "building")
    people = people.with_columns(sur=pl.Series(pop.surname1[people["person"].to_numpy()]))
    pairs = people.join(people, on=["building", "sur"], suffix="_q").filter(
        pl.col("person") != pl.col("person_q"))
    if pairs.height == 0:
        return pairs.select("person", "building")
    p = pairs["person"].to_numpy()
    q = pairs["person_q"].to_numpy()
    fp, fq = pop.first[p], pop.first[q]
    related = ((fp == fq) | (first3[fp] == first3[fq]) | (nick_en[fp] == names[fq])
               | (nick_en[fq] == names[fp]) | (nick_es[fp] == names[fq])
               | (nick_es[fq] == names[fp]))
    told_apart = (np.isin(pop.suffix[p], [JR, SR]) & np.isin(pop.suffix[q], [JR, SR])
                  & (pop.suffix[p] != pop.suffix[q]))
    return pairs.filter(pl.Series(related & ~told_apart)).select("person", "building").unique()


def _random_bit(rng: np.random.Generator, masks: IntArray, years: int) -> IntArray:
    """Index of a uniformly chosen set bit of each (non-zero) mask."""
    counts = sum(((masks >> i) & 1) for i in range(years))
    rank = (rng.random(len(masks)) * counts).astype(np.int64)
    out = np.full(len(masks), -1, dtype=np.int64)
    seen = np.zeros(len(masks), dtype=np.int64)
    for i in range(years):
        bit = ((masks >> i) & 1) == 1
        out = np.where(bit & (seen == rank) & (out < 0), i, out)
        seen += bit
    return out


def _periods_within(rng: np.random.Generator, allowed: IntArray, years: int) -> IntArray:
    """A period mask that includes a random allowed year: one year, a range, or two years."""
    full = (1 << years) - 1
    anchor = _random_bit(rng, allowed, years)
    kind = rng.choice(3, len(allowed), p=[0.35, 0.45, 0.20])
    lo = anchor - (rng.random(len(allowed)) * (anchor + 1)).astype(np.int64)
    hi = anchor + (rng.random(len(allowed)) * (years - anchor)).astype(np.int64)
    ranged = ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1) & full
    other = rng.integers(0, years, len(allowed))
    pair = (1 << anchor) | (1 << other)
    single = 1 << anchor
    return np.where(kind == 0, single, np.where(kind == 1, ranged, pair)).astype(np.int64)


def _pick_pairs(rng: np.random.Generator, pairs: pl.DataFrame, n: int) -> pl.DataFrame:
    """One random (person, tin, address) row for up to ``n`` distinct persons."""
    if pairs.height == 0 or n <= 0:
        return pairs.head(0)
    shuffled = pairs.with_columns(pl.Series("r", rng.random(pairs.height))).sort("r")
    one = shuffled.unique(subset="person", keep="first", maintain_order=True)
    return one.head(n).drop("r")


def build_requests(rng: np.random.Generator, pop: Population, addresses: AddressTable,
                   history: IntArray, master: pl.DataFrame, *, requests: int,
                   first_tax_year: int, today: dt.date, row_id_offset: int = 0) -> RequestSet:
    """Choose, render and label ``requests`` request rows.

    Row ids are ``LKA-`` and a 7-digit number from ``row_id_offset + 1`` to
    ``row_id_offset + requests`` (shards of one batch use disjoint ranges).
    """
    years = pop.files.shape[1]
    full = (1 << years) - 1
    events = master.select("person", "tin", "year_index", "address", "received_date",
                           "street", "unit", "city", "state", "zip")
    events = events.with_columns(
        building=pl.Series(addresses.building_key()[events["address"].to_numpy()]))
    tin_years = events.select("tin", "year_index").unique()
    masks = tin_years.with_columns(
        bit=pl.Series(np.left_shift(1, tin_years["year_index"].to_numpy()).astype(np.int64))
    ).group_by("tin").agg(mask=pl.col("bit").sum())
    pairs = (events.select("person", "tin", "address", "building").unique()
             .sort("person", "tin", "address"))
    shared = pairs.group_by("person", "address").agg(pl.col("tin").n_unique().alias("k"))
    pairs = (pairs.join(shared.filter(pl.col("k") == 1), on=["person", "address"], how="semi")
             .join(_ambiguous(pop, events), on=["person", "building"], how="anti")
             .join(masks, on="tin").sort("person", "tin", "address"))

    counts = {kind: int(round(requests * share)) for kind, share in SHARES.items()}
    n_m = requests - sum(counts.values())
    used = pl.DataFrame({"person": np.empty(0, dtype=np.int64)})

    def fresh(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(used, on="person", how="anti")

    # P: a confirmed address, periods with no return of that TIN.
    p_pairs = _pick_pairs(rng, fresh(pairs.filter(
        (pl.col("mask") != full) & pl.col("person").is_in(np.flatnonzero(pop.tin2 < 0)))),
        counts["P"])
    used = pl.concat([used, p_pairs.select("person")])
    p_masks = p_pairs["mask"].to_numpy()
    p_periods = _periods_within(rng, full & ~p_masks, years) & ~p_masks & full

    # N: persons without any return whose name key no filer shares.
    filer_keys = pl.DataFrame({"f": pop.first, "s": pop.surname1})[
        np.flatnonzero(pop.files.any(axis=1))].unique()
    nf = np.flatnonzero(~pop.files.any(axis=1))
    non_filers = pl.DataFrame({"person": nf, "f": pop.first[nf], "s": pop.surname1[nf]})
    n_pool = non_filers.join(filer_keys, on=["f", "s"], how="anti").sort("person")
    n_pool = n_pool.with_columns(pl.Series("r", rng.random(n_pool.height))).sort("r")
    n_person = n_pool["person"].to_numpy()[: counts["N"]]
    n_address = history[pop.household[n_person], years - 1]

    # M: a filed-from address (current or older), periods containing a filed year.
    n_short = counts["P"] - p_pairs.height + counts["N"] - min(counts["N"], n_pool.height)
    m_pairs = _pick_pairs(rng, fresh(pairs), n_m + n_short + counts["R"])
    if m_pairs.height < n_m + n_short + counts["R"] and pairs.height:
        # Small populations: request some persons twice (different rows, same right answer).
        extra = pairs[rng.integers(0, pairs.height, n_m + n_short + counts["R"] - m_pairs.height)]
        m_pairs = pl.concat([m_pairs, extra])
    used = pl.concat([used, m_pairs.select("person")])
    m_masks = m_pairs["mask"].to_numpy()
    m_periods = _periods_within(rng, m_masks, years)

    # U: a filer with an address nobody filed from (a new house in their city).
    u_pairs = _pick_pairs(rng, fresh(pairs), counts["U"])
    u_place = addresses.place[u_pairs["address"].to_numpy()]
    # Two tries per row; a new address that someone filed from is never used.
    u_addr_rows = draw_addresses(rng, np.concatenate([u_place, u_place]), apartment_share=0.0)
    known = addresses.building_key()[events["address"].unique().to_numpy()]
    ok = ~np.isin(u_addr_rows.building_key(), known).reshape(2, -1)
    choice = np.where(ok[0], 0, 1) * len(u_place) + np.arange(len(u_place))
    u_keep = ok.any(axis=0)
    combined = _concat_addresses(addresses, u_addr_rows)
    u_address = (len(addresses) + choice)[u_keep]
    u_pairs = u_pairs.filter(pl.Series(u_keep))
    u_periods = _periods_within(rng, np.full(u_pairs.height, full, dtype=np.int64), years)

    m_valid, r_base = m_pairs.head(max(m_pairs.height - counts["R"], 0)), m_pairs.tail(
        min(counts["R"], m_pairs.height))
    k_m = m_valid.height
    picked = {
        "M": _Picked(person=m_valid["person"].to_numpy(), address=m_valid["address"].to_numpy(),
                     tin=m_valid["tin"].to_numpy().astype(np.str_), periods=m_periods[:k_m]),
        "U": _Picked(person=u_pairs["person"].to_numpy(), address=u_address,
                     tin=u_pairs["tin"].to_numpy().astype(np.str_), periods=u_periods),
        "P": _Picked(person=p_pairs["person"].to_numpy(), address=p_pairs["address"].to_numpy(),
                     tin=p_pairs["tin"].to_numpy().astype(np.str_), periods=p_periods),
        "N": _Picked(person=n_person, address=n_address,
                     tin=np.full(len(n_person), "", dtype=np.str_),
                     periods=_periods_within(rng, np.full(len(n_person), full), years)),
        "R": _Picked(person=r_base["person"].to_numpy(), address=r_base["address"].to_numpy(),
                     tin=r_base["tin"].to_numpy().astype(np.str_), periods=m_periods[k_m:]),
    }
    return _assemble(rng, pop, combined, events, picked, first_tax_year=first_tax_year,
                     years=years, today=today, row_id_offset=row_id_offset)


def _concat_addresses(a: AddressTable, b: AddressTable) -> AddressTable:
    return AddressTable(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in (
        "place", "number", "street", "street_type", "direction", "unit", "zip4")})


def _expected(events: pl.DataFrame, tin: npt.NDArray[np.str_], periods: IntArray) -> pl.DataFrame:
    """Address of the most recent return of ``tin`` inside ``periods`` (later receipt wins)."""
    want = pl.DataFrame({"row": np.arange(len(tin)), "tin": tin, "periods": periods})
    hits = want.join(events, on="tin")
    inside = (hits["periods"].to_numpy() >> hits["year_index"].to_numpy()) & 1
    hits = hits.filter(pl.Series(inside == 1))
    best = hits.sort("row", "year_index", "received_date").group_by(
        "row", maintain_order=True).last()
    return want.join(best, on="row", how="left").sort("row")


def _assemble(rng: np.random.Generator, pop: Population, addresses: AddressTable,
              events: pl.DataFrame, picked: dict[str, _Picked], *, first_tax_year: int,
              years: int, today: dt.date, row_id_offset: int = 0) -> RequestSet:
    kinds = list(picked)
    person = np.concatenate([picked[k].person for k in kinds]).astype(np.int64)
    address = np.concatenate([picked[k].address for k in kinds]).astype(np.int64)
    true_tin = np.concatenate([picked[k].tin for k in kinds]).astype(np.str_)
    periods = np.concatenate([picked[k].periods for k in kinds]).astype(np.int64)
    outcome = np.concatenate([np.full(len(picked[k].person), k) for k in kinds])
    total = len(person)

    names = request_text.request_names(rng, pop, person)
    addr = request_text.request_addresses(rng, addresses, address)
    order = request_text.order_columns(rng, total, today)
    period = request_text.period_text(periods, first_tax_year, years, rng.random(total) < 0.7)
    give_tin = (true_tin != "") & (rng.random(total) < 0.1)
    row_ids = np.char.add("LKA-", np.char.zfill(
        (rng.permutation(total) + 1 + row_id_offset).astype(np.str_), 7))
    rows = pl.concat([
        pl.DataFrame({"request_row_id": row_ids}), names, addr, order,
        pl.DataFrame({"tax_periods": period, "tin": np.where(give_tin, true_tin, "")}),
    ], how="horizontal").select(request_text.REQUEST_COLUMNS)

    expected = _expected(events, np.where(outcome == "M", true_tin, ""), periods)
    is_m = outcome == "M"
    truth = pl.DataFrame({
        "request_row_id": row_ids, "true_tin": true_tin, "expected_outcome": outcome,
    }).with_columns(
        *[pl.when(pl.Series(is_m)).then(expected[c]).otherwise(pl.lit("")).alias(f"expected_{c}")
          for c in ("street", "unit", "city", "state", "zip")],
        expected_tax_year=pl.when(pl.Series(is_m)).then(
            (expected["year_index"] + first_tax_year).cast(pl.Utf8)).otherwise(pl.lit("")),
        expected_reason=pl.lit(""),
    )
    is_r = outcome == "R"
    codes = _defect_plan(int(is_r.sum()))
    rows, truth = apply_defects(rng, rows, truth, np.flatnonzero(is_r), codes, today=today,
                                first_tax_year=first_tax_year, years=years)
    shuffle = rng.permutation(rows.height)
    truth = truth.unique(subset="request_row_id", keep="first", maintain_order=True)
    return RequestSet(request=rows[shuffle], truth=truth.sort("request_row_id")
                      .select(TRUTH_COLUMNS))


def _defect_plan(n: int) -> npt.NDArray[np.str_]:
    """One defect code per bad row, cycling so every code appears once per 18 rows.

    A duplicate takes two neighbouring rows (``apply_defects`` gives them one id); the
    final order of rows is shuffled later, so the cycle does not show in the file.
    """
    cycle = [*DEFECT_CODES, DUPLICATE_ROW_ID, DUPLICATE_ROW_ID]
    plan = np.array((cycle * (n // len(cycle) + 1))[:n], dtype=np.str_)
    if n % len(cycle) == len(cycle) - 1:  # cut between the two rows of a duplicate
        plan[-1] = DEFECT_CODES[0]
    return plan
