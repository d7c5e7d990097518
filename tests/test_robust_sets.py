"""bench/robust_sets.py: each hard set, built tiny, has the property it is named for."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import jellyfish
import pytest
import robust_sets as rs
from bench.corrupt import near_names, respellings

from conftest import World

SEED = 11


@pytest.fixture(scope="module")
def base(small_world: World) -> rs.Base:
    loaded = rs.load_base(small_world.data)  # read only: the sets are written elsewhere
    assert len(loaded.clean_m) >= 10 and loaded.n_ids  # enough rows for the checks below
    return loaded


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _master(data: Path) -> list[dict[str, object]]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{data / 'master'}/**/*.parquet')")
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _years(periods: str) -> set[int]:
    years: set[int] = set()
    for part in periods.split(";"):
        low, _, high = part.partition("-")
        years.update(range(int(low), int(high or low) + 1))
    return years


def test_clean_m_rows_ask_exactly_what_the_true_tin_filed(base: rs.Base) -> None:
    master = _master(base.path)
    for rid in base.clean_m:
        row, tin = base.rows[rid], base.truth[rid]["true_tin"]
        assert any(m["tin"] == tin and all(rs.norm(str(m[c] or "")) == rs.norm(row[c]) for c in
                                           ("first_name", "last_name", "street", "city"))
                   for m in master), rid
    assert {base.truth[r]["expected_outcome"] for r in base.n_ids} == {"N"}


def test_single_year_set_has_one_tax_year_imperfect_rows_and_partial_periods(
        base: rs.Base, tmp_path: Path) -> None:
    data, info = rs.single_year_set(base, SEED, tmp_path / "single")
    master = _master(data)
    last = max(int(str(m["tax_year"])) for m in _master(base.path))
    assert {m["tax_year"] for m in master} == {last} == {info["tax_year"]}
    assert info["master_rows"] == len(master)
    broken = [m for m in master if any(not m[c] for c in ("last_name", "state", "street"))]
    assert len(broken) == info["imperfect_rows"] == round(rs.IMPERFECT_SHARE * len(master)) > 0
    assert all(sum(not m[c] for c in ("last_name", "state", "street")) == 1 for m in broken)

    requests, truth = _csv(data / "request.csv"), _csv(data / "truth.csv")
    assert [r["request_row_id"] for r in requests] == [t["request_row_id"] for t in truth]
    assert not {str(m["tin"]) for m in broken} & {t["true_tin"] for t in truth}
    assert all(last in _years(r["tax_periods"]) for r in requests)
    assert any(_years(r["tax_periods"]) - {last} for r in requests)  # partly outside the file
    expected_m = [t for t in truth if t["expected_outcome"] == "M"]
    assert len(expected_m) == info["expected_m"] > 0
    filed = {str(m["tin"]): m for m in master}
    for t in expected_m:  # answered from that one year, at the address filed in it
        assert t["expected_tax_year"] == str(last)
        assert t["expected_street"] == filed[t["true_tin"]]["street"]


def test_romanisation_rows_respell_one_name_and_keep_everything_else(
        base: rs.Base, tmp_path: Path) -> None:
    data, info = rs.romanisation_set(base, SEED, tmp_path / "roman")
    rows = {r["request_row_id"]: r for r in _csv(data / "request.csv")}
    truth = {t["request_row_id"]: t for t in _csv(data / "truth.csv")}
    ids = info["ids"]
    assert (len(ids["first_name"]), len(ids["last_name"])) == (info["given_respelled"],
                                                               info["surname_respelled"])
    assert ids["first_name"] and ids["last_name"]
    for column, other in (("first_name", "last_name"), ("last_name", "first_name")):
        for rid in ids[column]:
            old, new = base.rows[rid][column], rows[rid][column]
            assert rs.norm(new) != rs.norm(old)
            one_rule = respellings(old)
            assert new in one_rule or any(new in respellings(v) for v in one_rule), (old, new)
            assert rows[rid] == dict(base.rows[rid], **{column: new})  # all else as asked
            assert rows[rid][other] == base.rows[rid][other]
            assert truth[rid] == base.truth[rid]  # still the same person, expected M
    respelled = set(ids["first_name"]) | set(ids["last_name"])
    assert set(rows) == respelled | set(base.n_ids)
    assert all(rows[i] == base.rows[i] for i in base.n_ids)


def test_attack_rows_ask_for_a_near_miss_of_a_filer_at_that_address(
        base: rs.Base, tmp_path: Path) -> None:
    data, info = rs.attack_set(base, SEED, tmp_path / "attack", wanted=8)
    rows, truth = _csv(data / "request.csv"), _csv(data / "truth.csv")
    attacks = [r for r in rows if r["request_row_id"].startswith("ATK-")]
    assert len(attacks) == info["attack_rows"] == 8
    assert [r["request_row_id"] for r in rows[len(attacks):]] == base.clean_m
    master = _master(base.path)
    last = max(int(str(m["tax_year"])) for m in master)

    def at(row: dict[str, object]) -> tuple[str, str]:
        return rs.norm(str(row["street"] or "")), str(row["zip"] or "")[:5]

    addresses = [at(r) for r in attacks]
    assert len(set(addresses)) == len(addresses)  # one attack row per address
    for row in attacks:
        asked = rs.norm(row["first_name"])
        here = [m for m in master if at(m) == at(row)]
        assert asked not in {rs.norm(str(m["first_name"])) for m in here}  # nobody so named
        filers = [m for m in here if m["tax_year"] == last
                  and rs.norm(str(m["last_name"])) == rs.norm(row["last_name"])]
        assert any(asked in near_names(str(f["first_name"]))
                   and 1 <= jellyfish.damerau_levenshtein_distance(
                       asked, rs.norm(str(f["first_name"]))) <= 2 for f in filers), row
    by_id = {t["request_row_id"]: t for t in truth}
    assert {by_id[r["request_row_id"]]["expected_outcome"] for r in attacks} == {"N"}


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sweep_set_corrupts_the_share_asked_for(base: rs.Base, tmp_path: Path,
                                                rate: float) -> None:
    data, applied = rs.sweep_set(base, rate, SEED, tmp_path / "sweep")
    rows = _csv(data / "request.csv")
    ids = base.clean_m + base.n_ids + base.u_ids
    assert [r["request_row_id"] for r in rows] == ids
    changed = {r["request_row_id"] for r in rows if r != base.rows[r["request_row_id"]]}
    assert set(applied) == changed
    assert len(changed) == (0 if rate == 0 else len(ids))
