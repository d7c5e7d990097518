"""Row validation: every reason code, all problems at once, no row lost or duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastknown.engines import DuckDBEngine
from lastknown.errors import PipelineError
from lastknown.request.batch import Batch
from lastknown.request.headers import CANONICAL_COLUMNS
from lastknown.request.reasons import REASON_CODES
from lastknown.request.validate import ValidationResult, _check_partition, validate_request

TODAY = date(2026, 1, 15)
YEARS = (2019, 2024)
BATCH = Batch(batch_id="B1", requesting_agency="Agency", requesting_official="Official",
              official_title="Title", reason="Reason",
              authorised_statutes=("8 U.S.C. 1253(a)(1)",), certified=True,
              certification="Certified.")
GOOD: dict[str, str | None] = {
    "request_row_id": "R1", "first_name": "Maria", "middle_name": None, "last_name": "Lopez",
    "street": "123 Main St", "unit": None, "city": "Springfield", "state": "IL",
    "zip": "62701", "removal_order_date": "2024-03-05", "removal_order_case_number": "C-1",
    "statute": "8 U.S.C. 1253(a)(1)", "tax_periods": "2021-2023", "tin": None,
}


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    with DuckDBEngine() as e:
        yield e  # type: ignore[misc]


def load_raw(engine: DuckDBEngine, rows: list[dict[str, Any]]) -> None:
    data: dict[str, Any] = {"source_row": pa.array(range(2, len(rows) + 2), pa.int64())}
    for column in CANONICAL_COLUMNS:
        data[column] = pa.array([r.get(column) for r in rows], pa.string())
    engine.con.register("_raw_arrow", pa.table(data))
    engine.execute("CREATE OR REPLACE TABLE request_raw AS SELECT * FROM _raw_arrow")
    engine.con.unregister("_raw_arrow")


def run(engine: DuckDBEngine, rows: list[dict[str, Any]],
        years: tuple[int, int] | None = YEARS) -> ValidationResult:
    load_raw(engine, rows)
    return validate_request(engine, BATCH, master_years=years, today=TODAY)


def one(engine: DuckDBEngine, **changes: str | None) -> tuple[str, str] | None:
    """Validate GOOD with ``changes``; (codes, detail) if rejected, None if valid."""
    run(engine, [{**GOOD, **changes}])
    rows = engine.fetchall("SELECT reason_codes, detail FROM request_rejected")
    return (rows[0][0], rows[0][1]) if rows else None


def test_good_row_is_valid_and_normalised(engine: DuckDBEngine) -> None:
    result = run(engine, [{**GOOD, "state": " il ", "zip": "62701-1234", "tin": "123-45-6789",
                           "statute": "8 usc § 1253 (a)(1)", "tax_periods": "2022;2019"}])
    assert (result.valid_count, result.rejected_count) == (1, 0)
    row = engine.fetchall("SELECT state, zip, tin, statute, tax_years, removal_order_date "
                          "FROM request_valid")[0]
    assert row == ("IL", "627011234", "123456789", "8 U.S.C. 1253(a)(1)", [2019, 2022],
                   date(2024, 3, 5))


@pytest.mark.parametrize(("changes", "code"), [
    ({"first_name": None}, "MISSING_NAME"),
    ({"last_name": None}, "MISSING_NAME"),
    ({"first_name": "FNU"}, "PLACEHOLDER_NAME"),
    ({"last_name": "L.N.U."}, "PLACEHOLDER_NAME"),
    ({"first_name": "Unknown"}, "PLACEHOLDER_NAME"),
    ({"first_name": "UNK"}, "PLACEHOLDER_NAME"),
    ({"first_name": "Baby Girl"}, "PLACEHOLDER_NAME"),
    ({"first_name": "Baby", "last_name": "Boy"}, "PLACEHOLDER_NAME"),
    ({"first_name": "John", "last_name": "Doe"}, "PLACEHOLDER_NAME"),
    ({"first_name": "jane", "last_name": "DOE"}, "PLACEHOLDER_NAME"),
    ({"last_name": "XXX"}, "PLACEHOLDER_NAME"),
    ({"last_name": "N/A"}, "PLACEHOLDER_NAME"),
    ({"street": None}, "MISSING_ADDRESS"),
    ({"city": None}, "MISSING_ADDRESS"),
    ({"state": None}, "MISSING_ADDRESS"),
    ({"zip": None}, "MISSING_ADDRESS"),
    ({"street": "Failed to Provide"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "Unknown Address"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "UNKNOWN"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "NONE"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "N/A"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "NA"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "XXX"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "TBD"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "Not Provided"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "No Address"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "Homeless"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "Don't Care 12345"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "12345 Don't Care"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "12345"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "Main Street"}, "PLACEHOLDER_ADDRESS"),
    ({"street": "123 Unknown St"}, "PLACEHOLDER_ADDRESS"),
    ({"city": "Unknown"}, "PLACEHOLDER_ADDRESS"),
    ({"city": "12345"}, "PLACEHOLDER_ADDRESS"),
    ({"state": "ZZ"}, "INVALID_STATE"),
    ({"state": "Illinoy"}, "INVALID_STATE"),
    ({"zip": "2134", "state": "IL"}, "INVALID_ZIP"),  # no IL ZIP begins with 0
    ({"zip": "6270", "state": "MA"}, "INVALID_ZIP"),  # 06270 is Connecticut's
    ({"zip": "1234"}, "INVALID_ZIP"),
    ({"zip": "ABCDE"}, "INVALID_ZIP"),
    ({"zip": "00000"}, "INVALID_ZIP"),
    ({"zip": "123456"}, "INVALID_ZIP"),
    ({"removal_order_date": None}, "MISSING_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "2024-02-30"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "2/30/2024"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "2026-01-16"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "3/5/24"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "soon"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_date": "1899-12-31"}, "INVALID_REMOVAL_ORDER_DATE"),
    ({"removal_order_case_number": None}, "MISSING_CASE_NUMBER"),
    ({"statute": None}, "MISSING_STATUTE"),
    ({"statute": "18 U.S.C. 1001"}, "STATUTE_NOT_AUTHORISED"),
    ({"statute": "8 U.S.C. 1253(a)(2)"}, "STATUTE_NOT_AUTHORISED"),
    ({"tax_periods": None}, "MISSING_TAX_PERIOD"),
    ({"tax_periods": "last year"}, "INVALID_TAX_PERIOD"),
    ({"tax_periods": "2018"}, "INVALID_TAX_PERIOD"),
    ({"tax_periods": "2016-2018"}, "INVALID_TAX_PERIOD"),
    ({"tax_periods": "2025-2027"}, "INVALID_TAX_PERIOD"),
    ({"tax_periods": "2024-2021"}, "INVALID_TAX_PERIOD"),
    ({"tax_periods": "23"}, "INVALID_TAX_PERIOD"),
    ({"tin": "12345678"}, "INVALID_TIN"),
    ({"tin": "123-45-678X"}, "INVALID_TIN"),
    ({"tin": "000-00-0000"}, "INVALID_TIN"),
    ({"request_row_id": None}, "MISSING_ROW_ID"),
])
def test_each_reason_code(engine: DuckDBEngine, changes: dict[str, str | None],
                          code: str) -> None:
    rejected = one(engine, **changes)
    assert rejected is not None, f"{changes} should be rejected"
    assert rejected[0] == code
    column = next(iter(changes)) if code != "PLACEHOLDER_NAME" else "name"
    assert column.split("_")[0] in rejected[1]


def test_every_reason_code_is_exercised() -> None:
    params = test_each_reason_code.pytestmark[0].args[1]  # type: ignore[attr-defined]
    exercised = {code for _, code in params} | {"DUPLICATE_ROW_ID"}
    assert exercised == set(REASON_CODES)


def test_duplicate_row_ids_reject_every_sharing_row(engine: DuckDBEngine) -> None:
    rows = [dict(GOOD), {**GOOD, "first_name": "Ana"}, {**GOOD, "request_row_id": "R2"}]
    result = run(engine, rows)
    assert (result.valid_count, result.rejected_count) == (1, 2)
    rejected = engine.fetchall("SELECT source_row, reason_codes, detail FROM request_rejected "
                               "ORDER BY source_row")
    assert [(r[0], r[1]) for r in rejected] == [(2, "DUPLICATE_ROW_ID"), (3, "DUPLICATE_ROW_ID")]
    assert "used by 2 rows" in rejected[0][2]
    assert result.reason_counts == {"DUPLICATE_ROW_ID": 2}


@pytest.mark.parametrize(("column", "value"), [
    ("street", "PO Box 12"), ("street", "P.O. Box 12"), ("street", "RR 2 Box 7"),
    ("street", "HC 61 Box 34"), ("street", "W156N8480 Pilgrim Rd"),
    ("street", "12-34 31st Ave"), ("street", "123 W 4th"), ("street", "12 1/2 Elm Street"),
    ("street", "400 8thDr"), ("street", "988 35THST"),
    ("street", "Urb Las Gladiolas 150 Calle A"), ("street", "PSC 1234 Box 5678"),
    ("street", "123B Main St"), ("zip", "12345-6789"), ("zip", "123456789"),
    ("zip", " 02134 "), ("state", "pr"), ("state", "I.L."),
    ("removal_order_date", "3/5/2024"), ("removal_order_date", "05-Mar-2024"),
    ("removal_order_date", "45356"), ("removal_order_date", "March 5, 2024"),
    ("removal_order_date", "2024-03-05 00:00:00"), ("removal_order_date", "2024-02-29"),
    ("removal_order_date", "2026-01-15"),
    ("tax_periods", "2021-2024"), ("tax_periods", "2022;2024"), ("tax_periods", "2022, 2024"),
    ("tax_periods", "2021 to 2023"), ("tax_periods", "2019 2020"), ("tax_periods", "2023-2025"),
    ("tax_periods", "2017-2019"), ("tin", "123-45-6789"),
    ("tin", "912 70 1234"), ("statute", "8 USC § 1253(a)(1)"), ("first_name", "José"),
    ("last_name", "O'Brien-Núñez"), ("last_name", "Doe"), ("first_name", "Babe"),
])
def test_accepted_forms(engine: DuckDBEngine, column: str, value: str) -> None:
    assert one(engine, **{column: value}) is None


@pytest.mark.parametrize(("state", "zip_code", "want"), [
    ("Massachusetts", "2134", ("MA", "02134")),  # a spreadsheet dropped the leading zero
    ("ma", "2134-1234", ("MA", "021341234")),
    ("MASS.", "21341234", ("MA", "021341234")),
    ("New Jersey", "7304", ("NJ", "07304")),
    ("N. Dak.", "58102", ("ND", "58102")),
    ("P.R.", "907", ("PR", "00907")),
    ("Illinois", "62701", ("IL", "62701")),
    ("Calif.", "94110 1234", ("CA", "941101234")),
])
def test_state_names_and_zips_that_lost_their_zeros(
        engine: DuckDBEngine, state: str, zip_code: str, want: tuple[str, str]) -> None:
    assert one(engine, state=state, zip=zip_code) is None
    assert engine.fetchall("SELECT state, zip FROM request_valid")[0] == want


def test_all_problems_of_a_row_at_once_in_design_order(engine: DuckDBEngine) -> None:
    rejected = one(engine, first_name=None, street="Unknown", zip="1234", statute="5 USC 552",
                   tax_periods=None, tin="12")
    assert rejected is not None
    codes, detail = rejected
    assert codes == ("MISSING_NAME;PLACEHOLDER_ADDRESS;INVALID_ZIP;STATUTE_NOT_AUTHORISED;"
                     "MISSING_TAX_PERIOD;INVALID_TIN")
    for column in ("first_name", "street", "zip", "statute", "tax_periods", "tin"):
        assert column in detail
    assert "leading zero" in detail


def test_details_never_echo_names_streets_or_tins(engine: DuckDBEngine) -> None:
    rejected = one(engine, first_name="Zebulon", last_name="FNU", street="Qwerty Lane",
                   tin="98765432")
    assert rejected is not None
    for secret in ("Zebulon", "Qwerty", "98765432"):
        assert secret not in rejected[1]


def test_optional_placeholders_become_empty(engine: DuckDBEngine) -> None:
    run(engine, [{**GOOD, "middle_name": "NMN", "unit": "N/A"},
                 {**GOOD, "request_row_id": "R2", "middle_name": "Ann", "unit": "Apt 4"}])
    rows = engine.fetchall("SELECT middle_name, unit FROM request_valid ORDER BY source_row")
    assert rows == [(None, None), ("Ann", "Apt 4")]


def test_without_master_years_the_bound_is_today(engine: DuckDBEngine) -> None:
    run(engine, [{**GOOD, "tax_periods": "1995"},
                 {**GOOD, "request_row_id": "R2", "tax_periods": "2027"}], years=None)
    codes = engine.fetchall("SELECT source_row, reason_codes FROM request_rejected")
    assert codes == [(3, "INVALID_TAX_PERIOD")]


def test_periods_partly_on_file_are_answered_from_the_overlap_and_counted(
        engine: DuckDBEngine) -> None:
    result = run(engine, [{**GOOD, "tax_periods": "2022-2024"},
                          {**GOOD, "request_row_id": "R2", "tax_periods": "2023-2025"},
                          {**GOOD, "request_row_id": "R3", "tax_periods": "2016;2020"},
                          {**GOOD, "request_row_id": "R4", "tax_periods": "2016-2018"}],
                 years=(2024, 2024))
    assert (result.valid_count, result.rejected_count, result.periods_partly_on_file) == (2, 2, 2)
    rows = engine.fetchall("SELECT request_row_id, tax_years FROM request_valid ORDER BY 1")
    assert rows == [("R1", [2022, 2023, 2024]), ("R2", [2023, 2024, 2025])]
    details = engine.fetchall("SELECT detail FROM request_rejected ORDER BY source_row")
    assert details == [("tax_periods `2016;2020` shares no year with the tax years on file "
                        "(years on file: 2024)",),
                       ("tax_periods `2016-2018` shares no year with the tax years on file "
                        "(years on file: 2024)",)]


def test_years_on_file_with_a_gap_are_checked_exactly(engine: DuckDBEngine) -> None:
    load_raw(engine, [{**GOOD, "tax_periods": "2022"},
                      {**GOOD, "request_row_id": "R2", "tax_periods": "2021-2023"},
                      {**GOOD, "request_row_id": "R3", "tax_periods": "2020-2022"}])
    result = validate_request(engine, BATCH, master_years=(2019, 2024), today=TODAY,
                              years_on_file=[2024, 2019, 2020])
    assert (result.valid_count, result.periods_partly_on_file) == (1, 1)
    assert engine.fetchall("SELECT request_row_id FROM request_valid") == [("R3",)]
    details = engine.fetchall("SELECT detail FROM request_rejected ORDER BY source_row")
    assert details[0] == ("tax_periods `2022` shares no year with the tax years on file "
                          "(years on file: 2019-2020, 2024)",)
    assert len(details) == 2


def test_a_period_reaching_past_this_year_is_rejected(engine: DuckDBEngine) -> None:
    rejected = one(engine, tax_periods="2024-2027")
    assert rejected == ("INVALID_TAX_PERIOD", "tax_periods `2024-2027` asks for a year in the "
                        "future (today is 2026-01-15): ask only for years already begun "
                        "(years on file: 2019-2024)")


def test_partition_check_raises_on_a_lost_row(engine: DuckDBEngine) -> None:
    run(engine, [dict(GOOD), {**GOOD, "request_row_id": None}])
    engine.execute("DELETE FROM request_valid")
    with pytest.raises(PipelineError, match="lost or duplicated"):
        _check_partition(engine, "request_raw")


_cells = st.one_of(st.none(), st.text(max_size=12),
                   st.sampled_from(["UNKNOWN", "123 Main St", "IL", "02134", "1234",
                                    "2024-02-30", "2021-2023", "R1", "R2", "", " ", "'",
                                    "8 U.S.C. 1253(a)(1)", "FNU", "3/5/2024", "N/A"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: _cells for c in CANONICAL_COLUMNS}), max_size=12))
def test_no_row_is_lost_or_duplicated(rows: list[dict[str, str | None]]) -> None:
    with DuckDBEngine() as engine:
        load_raw(engine, rows)
        result = validate_request(engine, BATCH, master_years=YEARS, today=TODAY)
        assert result.valid_count + result.rejected_count == len(rows)
        union = engine.fetchall("SELECT source_row FROM request_valid UNION ALL "
                                "SELECT source_row FROM request_rejected ORDER BY 1")
        assert [r[0] for r in union] == list(range(2, len(rows) + 2))
        empty = engine.fetchall("SELECT count(*) FROM request_rejected WHERE reason_codes = '' "
                                "OR detail = ''")
        assert empty[0][0] == 0
