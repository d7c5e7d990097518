"""Addresses and address histories: where each household lives in each tax year.

An address is a row of the :class:`AddressTable` (components, not text; text is made by
:mod:`lastknown.synth.render`). Each household gets an address in the first year and
moves with probability ``MOVE_RATE`` each later year, usually within its city. About a
third of addresses are apartments in shared buildings (same street line, different units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lastknown.synth import tables

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MOVE_RATE = 0.125
SAME_CITY_MOVES = 0.7
BUILDINGS_PER_ZIP = 24


@dataclass(frozen=True, kw_only=True)
class AddressTable:
    """Address components; row i is address id i."""

    place: IntArray  # index into tables.places()
    number: IntArray  # house number
    street: IntArray  # index into tables.STREET_NAMES
    street_type: IntArray  # index into tables.STREET_TYPES
    direction: IntArray  # index into tables.DIRECTIONS (0: none)
    unit: npt.NDArray[np.str_]  # "" when none, e.g. "4B" or "304"
    zip4: IntArray

    def __len__(self) -> int:
        return len(self.place)

    def building_key(self) -> IntArray:
        """One integer per street line + ZIP (units of one building share it)."""
        return (((self.place * 100_000 + self.number) * 1_000 + self.street) * 100
                + self.street_type) * 10 + self.direction


def _city_zip_lookup(places: tables.PlaceTable) -> tuple[IntArray, IntArray, IntArray]:
    order = np.argsort(places.city_id, kind="stable")
    counts = np.bincount(places.city_id)
    starts = np.cumsum(counts) - counts
    return order.astype(np.int64), starts.astype(np.int64), counts.astype(np.int64)


def draw_addresses(rng: np.random.Generator, place: IntArray, *,
                   apartment_share: float | npt.NDArray[np.float64]) -> AddressTable:
    """New addresses (houses or apartments in the place's buildings) in the given places."""
    k = len(place)
    n_places = len(tables.places().zip)
    # Apartment buildings per ZIP: a fixed street line drawn from a per-run table.
    b_number = rng.integers(100, 3000, (n_places, BUILDINGS_PER_ZIP))
    b_street = rng.integers(0, len(tables.STREET_NAMES), (n_places, BUILDINGS_PER_ZIP))
    type_p = np.array(tables.STREET_TYPE_WEIGHTS) / sum(tables.STREET_TYPE_WEIGHTS)
    b_type = rng.choice(len(type_p), (n_places, BUILDINGS_PER_ZIP), p=type_p)
    b_dir = np.where(rng.random((n_places, BUILDINGS_PER_ZIP)) < 0.3,
                     rng.integers(1, 5, (n_places, BUILDINGS_PER_ZIP)), 0)

    apartment = rng.random(k) < apartment_share
    building = rng.integers(0, BUILDINGS_PER_ZIP, k)
    house_number = np.exp(rng.uniform(np.log(10), np.log(20_000), k)).astype(np.int64)
    number = np.where(apartment, b_number[place, building], house_number)
    street = np.where(apartment, b_street[place, building],
                      rng.integers(0, len(tables.STREET_NAMES), k))
    street_type = np.where(apartment, b_type[place, building], rng.choice(len(type_p), k, p=type_p))
    direction = np.where(apartment, b_dir[place, building],
                         np.where(rng.random(k) < 0.3, rng.integers(1, 5, k), 0))
    floor = rng.integers(1, 7, k).astype(np.str_)
    letter = np.array(list("ABCD"))[rng.integers(0, 4, k)]
    door_number = rng.integers(1, 20, k).astype(np.str_)
    # numpy's zfill fails on an empty array (a tiny request can draw no new address).
    door = np.char.zfill(door_number, 2) if k else door_number
    unit = np.where(rng.random(k) < 0.5, np.char.add(floor, letter), np.char.add(floor, door))
    unit = np.where(apartment, unit, "")
    return AddressTable(place=place, number=number, street=street, street_type=street_type,
                        direction=direction, unit=unit.astype(np.str_),
                        zip4=rng.integers(1, 10_000, k))


def address_histories(rng: np.random.Generator, hispanic_household: BoolArray, *,
                      years: int) -> tuple[AddressTable, IntArray]:
    """An address table and ``(households, years)`` address ids: moves at MOVE_RATE a year."""
    places = tables.places()
    h = len(hispanic_household)
    moves = rng.random((h, years)) < MOVE_RATE
    moves[:, 0] = True
    history = (np.cumsum(moves.ravel()) - 1).reshape(h, years)
    event_household = np.repeat(np.arange(h), moves.sum(axis=1))
    move_number = (np.cumsum(moves, axis=1) - 1)[moves]  # 0 = first address
    n_events = len(event_household)

    n_places = len(places.zip)
    first_place = np.where(
        hispanic_household,
        rng.choice(n_places, h, p=places.w_hispanic),
        rng.choice(n_places, h, p=places.w_other),
    )
    far_place = np.where(hispanic_household[event_household],
                         rng.choice(n_places, n_events, p=places.w_hispanic),
                         rng.choice(n_places, n_events, p=places.w_other))
    order, starts, counts = _city_zip_lookup(places)
    same_city = rng.random(n_events) < SAME_CITY_MOVES
    pick = rng.random(n_events)
    place = np.empty(n_events, dtype=np.int64)
    place[move_number == 0] = first_place
    # Each move depends on the previous address's city: one vectorised step per move number.
    for step in range(1, years):
        idx = np.flatnonzero(move_number == step)
        if len(idx) == 0:
            break
        city = places.city_id[place[idx - 1]]
        local = order[starts[city] + (pick[idx] * counts[city]).astype(np.int64)]
        place[idx] = np.where(same_city[idx], local, far_place[idx])
    share = np.where(hispanic_household[event_household], 0.45, 0.32)
    return draw_addresses(rng, place, apartment_share=share), history
