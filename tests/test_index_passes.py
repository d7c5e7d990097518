"""An index built in several passes over disjoint TINs is the index built in one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastknown.engines import DuckDBEngine
from lastknown.master import load_master
from lastknown.match.index import DATABASE, build_index, pass_filters_sql, scratch_drops
from lastknown.match.index import index_steps as make_steps
from lastknown.synth import generate

TABLES = ("idx_record", "idx_return", "idx_block_key", "idx_block_size", "tf_first_n",
          "tf_surname_n")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBEngine, dict]]:
    tmp = tmp_path_factory.mktemp("passes")
    generate(persons=2_000, requests=10, seed=33, out=tmp / "synth")
    engine = DuckDBEngine()
    load_master(engine, tmp / "synth" / "master")
    # quarantined rows too (a TIN's broken return still makes a rival record)
    engine.execute("""CREATE TABLE master_q AS SELECT * FROM master UNION ALL
                      SELECT * REPLACE ('' AS street) FROM master WHERE tax_year = 2024
                      AND tin IN (SELECT DISTINCT tin FROM master ORDER BY tin LIMIT 50)""")
    rows = engine.count("master_q")
    broken = rows - engine.count("master")
    infos = {}
    for name, per_pass in (("one", rows), ("four", -(-rows // 4))):
        infos[name] = build_index(engine, master_table="master_q", out=tmp / name,
                                  returns_per_pass=per_pass)
    engine.execute("DETACH lkidx")
    for name in ("one", "four"):
        engine.execute(f"ATTACH '{tmp / name / DATABASE}' AS {name} (READ_ONLY)")
    yield engine, {**infos, "broken": broken}
    engine.close()


@pytest.mark.parametrize("table", TABLES)
def test_every_table_is_the_same_row_for_row(built: tuple[DuckDBEngine, dict],
                                             table: str) -> None:
    engine, _ = built
    assert engine.count(f"one.{table}") > 0
    assert engine.count(f"one.{table}") == engine.count(f"four.{table}")
    for a, b in (("one", "four"), ("four", "one")):
        assert engine.fetchall(f"SELECT count(*) FROM (SELECT * FROM {a}.{table} "
                               f"EXCEPT ALL SELECT * FROM {b}.{table})") == [(0,)]


def test_the_model_and_the_counts_are_the_same(built: tuple[DuckDBEngine, dict]) -> None:
    _, infos = built
    one, four, broken = infos["one"], infos["four"], infos["broken"]
    assert one.model_id == four.model_id
    assert (one.record_count, one.return_rows, one.tin_count, one.quarantined_rows) == (
        four.record_count, four.return_rows, four.tin_count, four.quarantined_rows)
    assert broken > 0 and one.quarantined_rows >= broken


def test_the_build_says_how_many_passes(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                        ) -> None:
    generate(persons=200, requests=10, seed=34, out=tmp_path / "synth")
    with DuckDBEngine() as engine, caplog.at_level(logging.INFO, logger="lastknown.match"):
        load_master(engine, tmp_path / "synth" / "master")
        rows, tins = engine.fetchall("SELECT count(*), count(DISTINCT tin) FROM master")[0]
        build_index(engine, out=tmp_path / "index", returns_per_pass=-(-rows // 4))
        left = {t for t, in engine.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database()")}
    assert f"{rows} returns of {tins} TINs in 4 pass(es)" in caplog.text
    # every pass's part was read into the index and dropped; so was every scratch table
    assert "master" in left
    assert not [t for t in left if t.startswith("lk_")]


def test_each_value_falls_in_exactly_one_pass() -> None:
    filters = pass_filters_sql("tin", ["0000100", "0000500", "0000501"])
    with DuckDBEngine() as engine:
        engine.execute("CREATE TABLE t AS SELECT lpad(CAST(i * 37 AS VARCHAR), 9, '0') AS tin "
                       "FROM range(2000) r(i)")
        hits = engine.fetchall("SELECT " + " + ".join(
            f"CAST({where} AS INTEGER)" for where in filters) + " AS k, count(*) FROM t "
            "GROUP BY k")
        per_pass = [engine.count(f"(SELECT * FROM t WHERE {where})") for where in filters]
    assert hits == [(1, 2000)]
    # 37·i below 10,000 for i ≤ 270; below 50,000 for i ≤ 1351; below 50,100 for i ≤ 1354
    assert per_pass == [271, 1081, 3, 645]


def test_a_pass_holds_its_tables_only_until_the_next() -> None:
    steps = make_steps(master_table="m", tin_count=100, cuts=["3", "6"])
    drops = scratch_drops(steps)
    names = [s.output_table_name for s in steps]
    dropped = [t for ts in drops.values() for t in ts]
    # each pass's normalised rows are dropped before the next pass makes them again
    assert dropped.count("lk_master_norm") == 3
    for at, tables in drops.items():
        if "lk_master_norm" in tables:
            assert names[at].startswith("lk_training_")
    # the parts go once the index's records and the training sample are made of them
    assert [names[at] for at, ts in drops.items() if "lk_records_0" in ts] == ["lkidx.idx_record"]
    assert [names[at] for at, ts in drops.items() if "lk_training_2" in ts] == ["lk_training"]
    assert "lk_training" not in dropped and "lk_household" not in dropped
