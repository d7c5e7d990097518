"""The reported match probability: household name weights and the resident posterior."""

from __future__ import annotations

import math

import pytest

from lastknown.engines import DuckDBEngine
from lastknown.match.config import MatchConfig
from lastknown.match.decide import address_confirmed_sql, outcome_steps
from lastknown.match.model import (
    ADDRESS_COMPARISONS,
    HOUSEHOLD_SMOOTHING,
    NAME_COMPARISONS,
    household_section,
    household_weight_sql,
)


def _model() -> dict[str, object]:
    def levels(*pairs: tuple[str, float]) -> list[dict[str, object]]:
        return [{"sql_condition": "x", "label_for_charts": "null", "is_null_level": True},
                *({"label_for_charts": lab, "m_probability": m} for lab, m in pairs)]

    return {"comparisons": [
        {"output_column_name": "first_name", "comparison_levels": levels(
            ("exact", 0.9), ("nickname", 0.04), ("similar", 0.001), ("initial", 0.005),
            ("different", 0.054))},
        {"output_column_name": "surname", "comparison_levels": levels(
            ("exact", 0.9), ("different", 0.1))},
    ]}


def test_household_weights_are_m_over_housemate_u() -> None:
    # gamma 4 = exact ... 0 = different (Splink numbers the best non-null level highest)
    counts = {"first_name": {4: 10, 3: 5, 2: 30, 0: 955}, "surname": {1: 700, 0: 300}}
    section = household_section(_model(), counts)
    total = 1000 + HOUSEHOLD_SMOOTHING * 5
    w = section["weights"]["first_name"]
    assert w["4"] == pytest.approx(math.log2(0.9 / ((10 + 0.5) / total)), abs=1e-3)
    # never seen among housemates: smoothed, finite, strongly for
    assert w["1"] == pytest.approx(math.log2(0.005 / (0.5 / total)), abs=1e-3)
    # a close but different given name is never evidence for (NOT_EVIDENCE_FOR)
    assert w["2"] <= 0.0
    # a shared surname says little once the address is shared
    assert section["weights"]["surname"]["1"] == pytest.approx(
        math.log2(0.9 / (700.5 / 1001)), abs=1e-3)
    assert section["pairs"] == 1000


def test_household_weight_sql_sums_levels_and_skips_nulls() -> None:
    model = {"lastknown": {"household": {"weights": {
        "first_name": {"4": 6.0, "0": -20.0}, "surname": {"1": 0.5, "0": -18.0}}}}}
    with DuckDBEngine() as engine:
        rows = engine.fetchall(
            f"SELECT {household_weight_sql(model)} FROM (VALUES (4, 1), (4, -1), (0, 1)) "
            "AS t(gamma_first_name, gamma_surname)")
    assert [r[0] for r in rows] == [6.5, 6.0, -19.5]
    assert household_weight_sql({"lastknown": {}}) == "CAST(NULL AS DOUBLE)"


def _decide(residents: list[tuple[str, float, float]], odds: float) -> dict[str, object]:
    """One request at 1 MAIN ST; each (tin, match weight, household weight) files there."""
    cfg = MatchConfig(unseen_resident_odds=odds)
    comps = [*NAME_COMPARISONS, *ADDRESS_COMPARISONS]
    with DuckDBEngine() as engine:
        addr = ("'1' AS house_number, 'MAIN' AS street_name, 'MAIN' AS street_line, "
                "NULL::VARCHAR AS street_type, "
                "'78701' AS zip5, 'AUSTIN' AS city_n, 'TX' AS state_n, "
                "NULL::VARCHAR AS unit_n, NULL::VARCHAR AS predir")
        engine.execute(f"CREATE TABLE q AS SELECT 1 AS source_row, 'R1' AS request_row_id, "
                       f"[2023] AS tax_years, {addr}")
        engine.execute(f"CREATE TABLE r AS SELECT i AS record_id, {addr}, true AS disclosable "
                       "FROM range(1, 10) t(i)")
        engine.execute("CREATE TABLE t AS SELECT tin, 2023 AS tax_year, DATE '2024-03-01' "
                       "AS received_date, '1 MAIN ST' AS street, NULL AS unit, 'AUSTIN' AS city, "
                       "'TX' AS state, '78701' AS zip FROM (VALUES ('A'), ('B'), ('C')) v(tin)")
        mw = ", ".join(f"CAST(1.0 AS DOUBLE) AS mw_{c}" for c in comps)
        values = ", ".join(f"({i + 1}, '{tin}', {w}, {hw})"
                           for i, (tin, w, hw) in enumerate(residents))
        # as the pair steps make it: the record's confirmation of the address rides along
        engine.execute(f"""
            CREATE TABLE lk_scored AS SELECT 1 AS source_row, v.record_id, tin,
                   false AS swapped, {address_confirmed_sql('q', 'r')} AS address_confirmed,
                   r.disclosable, w AS match_weight,
                   CASE WHEN tin = 'A' THEN 20.0 ELSE -10.0 END AS name_weight,
                   {mw}, hw AS household_weight
            FROM (VALUES {values}) v(record_id, tin, w, hw)
            JOIN q ON q.source_row = 1 JOIN r ON r.record_id = v.record_id""")
        engine.run_steps(outcome_steps(config=cfg, requests="q", returns="t"))
        cols = engine.columns("match_result")
        return dict(zip(cols, engine.fetchall("SELECT * FROM match_result")[0], strict=True))


def test_probability_is_the_posterior_among_residents_and_an_unseen_one() -> None:
    alone = _decide([("A", 40.0, 10.0)], odds=0.04)
    assert alone["outcome"] == "M"
    assert alone["match_probability"] == pytest.approx(1024 / (1024 + 0.04))
    # a housemate whose names partly agree (2 bits) and a second unseen slot lower it
    shared = _decide([("A", 40.0, 10.0), ("B", 25.0, 2.0)], odds=0.04)
    assert shared["match_probability"] == pytest.approx(1024 / (1024 + 4 + 0.04))


def test_reported_probability_does_not_change_the_decision() -> None:
    # weak name evidence at the address: probability 0.6, still disclosed — the decision
    # threshold applies to the model's own probability (docs/MATCHING.md, Decision)
    row = _decide([("A", 40.0, 0.0)], odds=0.667)
    assert row["outcome"] == "M"
    assert row["match_probability"] == pytest.approx(1 / 1.667)
