"""Every valid US address form passes intake; placeholder text does not (DESIGN, reason codes).

The second half checks the same forms in address normalisation and confirmation
(``normalize/address.py``, ``match/decide.py``): one address in two spellings confirms,
two different addresses of the same form do not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from lastknown.engines import DuckDBEngine
from lastknown.match.decide import address_confirmed_sql
from lastknown.normalize.address import normalised_address_sql
from lastknown.request.validate import validate_request
from test_request_validate import BATCH, GOOD, TODAY, YEARS, load_raw

#: (street, city, state, zip): valid forms that must never be rejected.
VALID_FORMS: list[tuple[str, str, str, str]] = [
    ("1074 W 350 N", "Orem", "UT", "84057"),  # grid
    ("3111 W 1575 S", "Syracuse", "UT", "84075"),
    ("1074 West 350 North", "Orem", "UT", "84057"),
    ("1074 W 350 N Apt 3", "Orem", "UT", "84057"),
    ("12 1/2 Main St", "Springfield", "IL", "62701"),  # fractional
    ("107-12 Liberty Ave", "Jamaica", "NY", "11435"),  # Queens hyphenated
    ("107-12A Liberty Ave", "Jamaica", "NY", "11435"),
    ("PO Box 123", "Springfield", "IL", "62701"),
    ("P.O. Box 44", "Springfield", "IL", "62701"),
    ("Post Office Box 9", "Springfield", "IL", "62701"),
    ("RR 2 Box 15", "Lamar", "MO", "64759"),  # rural route
    ("Rural Route 3 Box 9", "Lamar", "MO", "64759"),
    ("HC 1 Box 5", "Kanab", "UT", "84741"),  # highway contract
    ("HCR 65 Box 140", "Kanab", "UT", "84741"),
    ("URB Las Gladiolas 150 Calle A", "San Juan", "PR", "00926"),  # urbanización
    ("150 Calle A Urb Las Gladiolas", "San Juan", "PR", "00926"),
    ("Cond Los Pinos Apt 101", "Carolina", "PR", "00979"),
    ("HC 2 Box 5678", "Utuado", "PR", "00641"),
    ("PSC 1234 Box 5678", "APO", "AE", "09021"),  # military
    ("Unit 2050 Box 4190", "APO", "AP", "96278"),
    ("CMR 450 Box 12", "APO", "AE", "09058"),
    ("USS Nimitz CVN 68", "FPO", "AP", "96620"),
    ("Unit 8400 Box 1", "DPO", "AE", "09498"),
    ("PSC 3 Box 4", "APO", "AA", "34001"),
    ("12 Main St Apt 4", "Springfield", "IL", "62701"),  # unit in the street line
    ("12 Main St #4", "Springfield", "IL", "62701"),
    ("W156N8480 Pilgrim Rd", "Menomonee Falls", "WI", "53051"),  # Wisconsin grid
    ("123 E 4 St", "New York", "NY", "10003"),
    ("12345 US Highway 1", "Jupiter", "FL", "33477"),
    ("General Delivery", "Springfield", "IL", "62701"),
    ("N5326 County Road E", "Iron Ridge", "WI", "53035"),  # Wisconsin rural
    ("W1234 Hwy 18", "Iron Ridge", "WI", "53035"),
    ("One World Trade Ctr", "New York", "NY", "10007"),  # house number in words
    ("Apt 4 12 Main St", "Springfield", "IL", "62701"),  # unit first
    ("Mile 3.5 Richardson Hwy", "Delta Junction", "AK", "99737"),  # milepost
    ("Km 2.3 Carr 779", "Comerio", "PR", "00782"),
    ("Camino Los Romeros 12", "San Juan", "PR", "00926"),
    ("94-1234 Farrington Hwy", "Waipahu", "HI", "96797"),  # Hawaii hyphenated
    ("123 1/2 W 350 N", "Orem", "UT", "84057"),
    ("1074 W. 350 N.", "Orem", "UT", "84057"),
]

#: (street, city): placeholder text that must be rejected as PLACEHOLDER_ADDRESS.
PLACEHOLDERS: list[tuple[str, str]] = [
    ("UNKNOWN", "Springfield"),
    ("Unknown Address", "Springfield"),
    ("Failed to Provide", "Springfield"),
    ("Don't Care 12345", "Springfield"),
    ("NONE", "Springfield"),
    ("N/A", "Springfield"),
    ("NA", "Springfield"),
    ("12345", "Springfield"),  # a bare ZIP
    ("12345-6789", "Springfield"),
    ("123", "Springfield"),
    ("XXX", "Springfield"),
    ("Not Provided", "Springfield"),
    ("Same as above", "Springfield"),
    ("Homeless", "Springfield"),
    ("Whatever 62701", "Springfield"),
    ("Care of 62701", "Springfield"),
    ("Unknown 12345", "Springfield"),
    ("N/A 12345", "Springfield"),
    ("Apt 4", "Springfield"),
    ("One", "Springfield"),
    ("Mile", "Springfield"),
    ("Care of Jones", "Springfield"),
    ("123 Main St", "UNKNOWN"),
    ("123 Main St", "N/A"),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[DuckDBEngine]:
    with DuckDBEngine() as e:
        yield e


def _validate(engine: DuckDBEngine, rows: list[dict[str, str | None]]) -> dict[str, str]:
    """Validate ``rows``; request_row_id -> reason codes ('' when valid)."""
    load_raw(engine, rows)
    validate_request(engine, BATCH, master_years=YEARS, today=TODAY)
    valid = engine.fetchall("SELECT request_row_id, '' FROM request_valid")
    rejected = engine.fetchall("SELECT request_row_id, reason_codes FROM request_rejected")
    return {str(k): str(v) for k, v in valid + rejected}


def test_every_valid_form_is_accepted(engine: DuckDBEngine) -> None:
    rows = [{**GOOD, "request_row_id": f"V{i}", "street": street, "city": city, "state": state,
             "zip": zip_code} for i, (street, city, state, zip_code) in enumerate(VALID_FORMS)]
    codes = _validate(engine, rows)
    refused = {VALID_FORMS[int(k[1:])][0]: v for k, v in codes.items() if v}
    assert refused == {}
    assert len(codes) == len(VALID_FORMS)


def test_every_placeholder_is_rejected(engine: DuckDBEngine) -> None:
    rows = [{**GOOD, "request_row_id": f"P{i}", "street": street, "city": city}
            for i, (street, city) in enumerate(PLACEHOLDERS)]
    codes = _validate(engine, rows)
    assert {PLACEHOLDERS[int(k[1:])]: v for k, v in codes.items()} == {
        form: "PLACEHOLDER_ADDRESS" for form in PLACEHOLDERS}


# -- normalisation and confirmation (normalize/address.py is the lead's; see module doc) --

def _confirms(engine: DuckDBEngine, supplied: str, on_file: str, *, zip_code: str = "84057",
              state: str = "UT") -> bool:
    table = pa.table({"id": [1, 2], "street": [supplied, on_file], "unit": [None, None],
                      "city": ["ANYTOWN"] * 2, "state": [state] * 2, "zip": [zip_code] * 2})
    engine.register_arrow("_forms_arrow", table)
    norm = normalised_address_sql("_forms_arrow", keep=["id"])
    rows = engine.fetchall(f"WITH n AS ({norm}) SELECT {address_confirmed_sql()} "
                           "FROM n AS q, n AS r WHERE q.id = 1 AND r.id = 2")
    return bool(rows[0][0])




@pytest.mark.parametrize(("supplied", "on_file"), [
    ("1074 W 350 N", "1074 West 350 North"),
    ("3111 W 1575 S", "3111 W 1575 S"),
    ("12 1/2 Main St", "12 1/2 Main Street"),
    ("107-12 Liberty Ave", "107-12 Liberty Avenue"),
    ("12 Main St Apt 4", "12 Main Street #4"),
    ("PO Box 123", "P.O. Box 123"),
    ("RR 2 Box 15", "RR 2 Box 15"),
    ("HC 1 Box 5", "HC 1 Box 5"),
    ("PSC 1234 Box 5678", "PSC 1234 Box 5678"),
    ("W156N8480 Pilgrim Rd", "W156N8480 Pilgrim Road"),
    ("URB Las Gladiolas 150 Calle A", "Urb. Las Gladiolas 150 Calle A"),
])
def test_one_address_in_two_spellings_confirms(engine: DuckDBEngine, supplied: str,
                                               on_file: str) -> None:
    assert _confirms(engine, supplied, on_file)


@pytest.mark.parametrize(("supplied", "on_file"), [
    ("1074 W 350 N", "1074 W 350 S"),
    ("1074 W 350 N", "1074 E 350 N"),
    ("107-12 Liberty Ave", "107-14 Liberty Ave"),
    ("12 1/2 Main St", "12 Main St"),
    ("12 1/2 Main St", "12 1/4 Main St"),
    ("12 Main St Apt 4", "12 Main St Apt 5"),
    ("PO Box 123", "PO Box 124"),
    ("URB Las Gladiolas 150 Calle A", "URB Los Robles 150 Calle A"),
])
def test_two_different_addresses_do_not_confirm(engine: DuckDBEngine, supplied: str,
                                                on_file: str) -> None:
    assert not _confirms(engine, supplied, on_file)
