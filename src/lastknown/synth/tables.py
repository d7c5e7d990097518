"""Reference tables the generator draws from: names, places, streets, nicknames, accents.

The name and place tables are compact derivatives of public Census / Harvard Dataverse
data built by ``tools/build_name_tables.py`` and shipped in ``lastknown/data``
(attribution in ``data/NOTICE.md``). Everything here is small (tens of thousands of
rows at most) and loaded once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt
import polars as pl
from nicknames import name_triplets

from lastknown.normalize.placeholders import NAME_PLACEHOLDER_TOKENS, NAME_PLACEHOLDERS

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]

#: Street names (common US ones, ordinals, and Spanish ones found in the Southwest).
STREET_NAMES: tuple[str, ...] = tuple(
    """Main Oak Pine Maple Cedar Elm Washington Park Lake Hill Lincoln Jefferson Jackson
    Franklin Madison Sunset Church Mill Spring Ridge Highland Cherry Walnut Chestnut Willow
    Adams Center Broadway Market Union Forest River Meadow Valley Lakeview Hillcrest Jones
    Johnson Monroe Wilson Grant Sheridan Harrison Kennedy King Roosevelt Lee Locust Poplar
    Sycamore Magnolia Dogwood Hickory Birch Spruce Laurel Juniper Aspen Redwood Cypress Holly
    Orchard Prospect Pleasant Green College Academy School Railroad Water Bridge Front Bay
    Ocean Harbor Shore Summit Grand Central Liberty Independence Commerce Industrial Airport
    Canal Pearl Hudson Kingston Wellington Belmont Fairview Greenwood Woodland Oakwood Elmwood
    Glenwood Rosewood Brookside Riverside Parkside Westgate Eastgate Northgate Crestview
    Alameda Camino Mission Vista Sierra Mesa Paloma Rosa Fresno Loma Linda Arroyo Coronado
    Durango Monterey Pacifica
    Montebello Primavera Esperanza Amistad""".split()
) + ("Santa Fe", "Buena Vista", "Del Mar", "Las Palmas", "San Pedro", "San Jacinto",
     "Cesar Chavez", "Martin Luther King Jr", "El Camino Real") + tuple(
    f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
    for n in range(1, 41))

#: (abbreviation, full word) of street types, abbreviation as USPS Publication 28.
STREET_TYPES: tuple[tuple[str, str], ...] = (
    ("St", "Street"), ("Ave", "Avenue"), ("Rd", "Road"), ("Dr", "Drive"), ("Blvd", "Boulevard"),
    ("Ln", "Lane"), ("Ct", "Court"), ("Pl", "Place"), ("Ter", "Terrace"), ("Way", "Way"),
    ("Cir", "Circle"), ("Pkwy", "Parkway"), ("Hwy", "Highway"), ("Trl", "Trail"),
)
#: Relative weights of STREET_TYPES.
STREET_TYPE_WEIGHTS: tuple[float, ...] = (30, 25, 10, 10, 5, 5, 4, 3, 2, 2, 1, 1, 1, 1)

#: (abbreviation, full word) of directional prefixes; index 0 = none.
DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("", ""), ("N", "North"), ("S", "South"), ("E", "East"), ("W", "West"),
)

#: Surnames written with particles: the Census spelling (no spaces) -> the written form.
PARTICLE_SURNAMES: dict[str, str] = {
    "DELACRUZ": "DE LA CRUZ", "DELEON": "DE LEON", "DEJESUS": "DE JESUS",
    "DELOSSANTOS": "DE LOS SANTOS", "DELAROSA": "DE LA ROSA", "DELAGARZA": "DE LA GARZA",
    "DELATORRE": "DE LA TORRE", "DELAFUENTE": "DE LA FUENTE", "DELAPAZ": "DE LA PAZ",
    "DELAO": "DE LA O", "DELRIO": "DEL RIO", "DELTORO": "DEL TORO", "DELVALLE": "DEL VALLE",
    "DELOSREYES": "DE LOS REYES", "DELAVEGA": "DE LA VEGA", "DELACERDA": "DE LA CERDA",
    "DELAGUILA": "DEL AGUILA", "DELCASTILLO": "DEL CASTILLO", "DELAROCHA": "DE LA ROCHA",
}


@dataclass(frozen=True, kw_only=True)
class NameTable:
    """Names with two sampling weights (Hispanic and other populations), each summing to 1."""

    names: StrArray
    accented: StrArray
    w_hispanic: FloatArray
    w_other: FloatArray


@dataclass(frozen=True, kw_only=True)
class PlaceTable:
    """Real city / state / ZIP triples with population weights."""

    city: StrArray
    state: StrArray
    zip: StrArray
    city_id: npt.NDArray[np.int64]
    w_hispanic: FloatArray
    w_other: FloatArray


def _data_bytes(name: str) -> bytes:
    return (resources.files("lastknown") / "data" / name).read_bytes()


def _read_data_csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_data_bytes(name).decode("utf-8"))))


@lru_cache(maxsize=1)
def accents() -> dict[str, str]:
    """Plain upper-case Spanish name -> its accented spelling (JOSE -> JOSÉ)."""
    return {r["plain"]: r["accented"] for r in _read_data_csv("accents_es.csv")}


def _name_table(frame: pl.DataFrame) -> NameTable:
    # Real names that validation treats as placeholders (Null, Test, Na ...) are never drawn:
    # their rows would have no single honest expected outcome.
    placeholder = frame["name"].is_in([*NAME_PLACEHOLDERS, *NAME_PLACEHOLDER_TOKENS]).to_numpy()
    freq = np.where(placeholder, 0.0, frame["freq"].to_numpy().astype(np.float64))
    hisp = frame["hispanic"].to_numpy().astype(np.float64)
    names = frame["name"].to_numpy().astype(np.str_)
    acc = accents()
    return NameTable(
        names=names,
        accented=np.array([acc.get(n, n) for n in names], dtype=np.str_),
        w_hispanic=(freq * hisp) / (freq * hisp).sum(),
        w_other=(freq * (1 - hisp)) / (freq * (1 - hisp)).sum(),
    )


@lru_cache(maxsize=1)
def surnames() -> NameTable:
    return _name_table(pl.read_csv(_data_bytes("surnames.csv.gz")))


@lru_cache(maxsize=2)
def first_names(sex: str) -> NameTable:
    """First names of one sex (``M`` or ``F``)."""
    frame = pl.read_csv(_data_bytes("first_names.csv.gz"))
    return _name_table(frame.filter(pl.col("sex") == sex))


@lru_cache(maxsize=1)
def places() -> PlaceTable:
    frame = pl.read_csv(_data_bytes("places.csv.gz"), schema_overrides={"zip": pl.Utf8})
    city_key = (frame["city"] + "|" + frame["state"]).to_numpy()
    _, city_id = np.unique(city_key, return_inverse=True)
    wh = frame["w_hispanic"].to_numpy().astype(np.float64)
    wo = frame["w_other"].to_numpy().astype(np.float64)
    return PlaceTable(
        city=frame["city"].to_numpy().astype(np.str_),
        state=frame["state"].to_numpy().astype(np.str_),
        zip=frame["zip"].to_numpy().astype(np.str_),
        city_id=city_id.astype(np.int64),
        w_hispanic=wh / wh.sum(),
        w_other=wo / wo.sum(),
    )


@lru_cache(maxsize=1)
def spanish_nicknames() -> dict[str, list[str]]:
    """Formal upper-case Spanish given name -> its nicknames (JOSE -> [PEPE, CHEPE])."""
    out: dict[str, list[str]] = {}
    for row in _read_data_csv("nicknames_es.csv"):
        out.setdefault(row["formal"], []).append(row["nickname"])
    return out


@lru_cache(maxsize=1)
def english_nicknames() -> dict[str, list[str]]:
    """Formal upper-case English given name -> nicknames, from the ``nicknames`` package."""
    out: dict[str, list[str]] = {}
    for triplet in name_triplets():
        if str(triplet.relationship) == "has_nickname":
            out.setdefault(triplet.name1.upper(), []).append(triplet.name2.upper())
    return {k: sorted(v) for k, v in sorted(out.items())}
