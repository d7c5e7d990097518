"""Small hand-made master and request tables for the matcher tests (synthetic only; no tests)."""

from __future__ import annotations

import random
from datetime import date

import pyarrow as pa

FIRST = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA",
         "WILLIAM", "ELIZABETH", "DAVID", "BARBARA", "JOSE", "MARIA", "LUIS", "CARMEN",
         "ANA", "JUAN", "ROSA", "CARLOS", "TANISHA", "OLUWASEUN", "XIMENA", "BAO"]
LAST = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "GARCIA", "MARTINEZ", "LOPEZ", "HERNANDEZ",
        "NGUYEN", "OKAFOR", "KOWALSKI", "DE LA CRUZ", "RIVERA", "O'BRIEN", "SCHMIDT", "PATEL"]
STREETS = ["MAIN ST", "OAK AVE", "PINE RD", "MAPLE DR", "CEDAR LN", "ELM ST", "W LAKE BLVD",
           "N 5TH ST", "HILLCREST WAY", "SUNSET BLVD", "RIVER RD", "PARK PL"]
CITIES = [("SPRINGFIELD", "IL", "627"), ("AUSTIN", "TX", "787"), ("FRESNO", "CA", "937"),
          ("DAYTON", "OH", "454")]
MASTER_FIELDS = ["tin", "tax_year", "filing_status", "role", "first_name", "middle_name",
                 "last_name", "name_suffix", "street", "unit", "city", "state", "zip",
                 "received_date"]


def _address(rng: random.Random) -> dict[str, str]:
    city, state, zip3 = rng.choice(CITIES)
    return {"street": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
            "unit": rng.choice(["", "", "", f"APT {rng.randint(1, 40)}"]),
            "city": city, "state": state, "zip": f"{zip3}{rng.randint(10, 99)}"}


def make_people(n: int, seed: int = 7) -> list[dict[str, object]]:
    """``n`` persons, each with 1-3 addresses over the years 2019-2023."""
    rng = random.Random(seed)
    people = []
    for i in range(n):
        addresses = [_address(rng) for _ in range(rng.randint(1, 3))]
        years = list(range(2019, 2024))
        history = []
        for k, year in enumerate(years):
            history.append((year, addresses[min(k * len(addresses) // len(years),
                                                 len(addresses) - 1)]))
        people.append({"tin": f"{100000000 + i}", "first_name": rng.choice(FIRST),
                       "middle_name": rng.choice(["", "A", "LEE", "MARIE"]),
                       "last_name": rng.choice(LAST), "name_suffix": "",
                       "history": history})
    return people


def master_rows(people: list[dict[str, object]]) -> list[dict[str, object]]:
    rows = []
    for p in people:
        for year, addr in p["history"]:  # type: ignore[attr-defined]
            rows.append({"tin": p["tin"], "tax_year": year, "filing_status": "single",
                         "role": "primary", "first_name": p["first_name"],
                         "middle_name": p["middle_name"], "last_name": p["last_name"],
                         "name_suffix": p["name_suffix"], **addr,
                         "received_date": date(year + 1, 4, 1)})
    return rows


def to_arrow(rows: list[dict[str, object]], fields: list[str]) -> pa.Table:
    return pa.table({f: [r.get(f) for r in rows] for f in fields})


def request_row(source_row: int, *, first: str, last: str, street: str, city: str, state: str,
                zip_code: str, unit: str = "", middle: str = "", tin: str | None = None,
                years: tuple[int, ...] = (2021, 2022, 2023)) -> dict[str, object]:
    return {"source_row": source_row, "request_row_id": f"R{source_row}", "first_name": first,
            "middle_name": middle or None, "last_name": last, "street": street,
            "unit": unit or None, "city": city, "state": state, "zip": zip_code,
            "removal_order_date": date(2020, 1, 1), "removal_order_case_number": "A1",
            "statute": "8 U.S.C. 1253(a)(1)", "tax_years": list(years), "tin": tin}


REQUEST_FIELDS = ["source_row", "request_row_id", "first_name", "middle_name", "last_name",
                  "street", "unit", "city", "state", "zip", "removal_order_date",
                  "removal_order_case_number", "statute", "tax_years", "tin"]
