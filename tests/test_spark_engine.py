"""The Spark engine's hooks (engines/spark.py) on a local[2] session.

One engine serves the module (a Spark session takes a while to start); each test uses its
own table names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lastknown.config import SparkSettings
from lastknown.engines import Engine, Numbering, SqlStep, make_engine
from lastknown.errors import ConfigError, CsvReadError, EngineError


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    settings = SparkSettings(master="local[2]",
                             checkpoint_dir=tmp_path_factory.mktemp("checkpoints"))
    with make_engine("spark", spark=settings) as engine:
        yield engine


def test_make_engine_builds_spark_with_the_settings_given(spark: Engine) -> None:
    assert spark.name == "spark"
    assert spark.index_storage == "parquet"
    assert spark.master == "local[2]"  # type: ignore[attr-defined]


def test_a_refused_statement_is_an_engine_error_naming_the_table(spark: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        spark.execute("SELECT * FROM no_such_table_x")
    assert "no_such_table_x" in str(caught.value)


def test_tables_views_inserts_and_drops(spark: Engine) -> None:
    spark.execute("CREATE OR REPLACE TABLE h_a AS SELECT * FROM (VALUES (1, 'x'), (2, 'y')) "
                  "t(i, s)")
    spark.execute("CREATE OR REPLACE VIEW h_v AS SELECT count(*) AS n FROM h_a")
    spark.execute("CREATE TABLE h_b (i BIGINT, s VARCHAR)")
    spark.execute("INSERT INTO h_b SELECT * FROM h_a")
    spark.execute("INSERT INTO h_b BY NAME SELECT 'z' AS s, 3 AS i")
    spark.execute("INSERT INTO h_b (s, i) SELECT 'w', 4")
    spark.execute("INSERT INTO h_b (i) SELECT 5")
    assert spark.fetchall("SELECT i, s FROM h_b ORDER BY i") == [
        (1, "x"), (2, "y"), (3, "z"), (4, "w"), (5, None)]
    # a table is a snapshot; a view reads its tables when used
    spark.execute("CREATE OR REPLACE TABLE h_a AS SELECT 7 AS i, 'q' AS s")
    assert spark.fetchall("SELECT n FROM h_v") == [(1,)]
    assert spark.count("h_b") == 5
    spark.execute("DROP TABLE IF EXISTS h_b")
    spark.execute("DROP VIEW IF EXISTS h_v")
    assert not spark.table_exists("h_b") and not spark.table_exists("h_v")
    assert spark.table_exists("h_a")


def test_positional_parameters_are_bound_as_literals(spark: Engine) -> None:
    rows = spark.fetchall("SELECT ? AS a, ? AS b, ? AS c, '?' AS d", ["O'Hara", 3, None])
    assert rows == [("O'Hara", 3, None, "?")]


def test_update_with_and_without_from(spark: Engine) -> None:
    spark.execute("CREATE OR REPLACE TABLE h_u AS SELECT * FROM (VALUES (1, 'x', NULL), "
                  "(2, 'y', 'm'), (3, 'z', NULL)) t(i, s, mid)")
    spark.execute("UPDATE h_u SET s = ? WHERE s = ?", ["X", "x"])
    spark.register_arrow("h_n", pa.table({"k": ["y", "z"], "v": ["Y", "Z"], "m": ["n", "n"]}))
    spark.execute("UPDATE h_u SET s = n.v, mid = coalesce(h_u.mid, n.m) FROM h_n n "
                  "WHERE n.k = h_u.s AND n.v IS NOT NULL")
    assert spark.fetchall("SELECT i, s, mid FROM h_u ORDER BY i") == [
        (1, "X", None), (2, "Y", "m"), (3, "Z", "n")]


def test_columns_and_information_schema_use_duckdbs_type_names(spark: Engine) -> None:
    spark.execute("CREATE OR REPLACE TABLE h_t AS SELECT CAST(1 AS BIGINT) AS i, 'a' AS s, "
                  "DATE '2024-01-02' AS d, ['a', 'b'] AS l")
    assert spark.columns("h_t") == ["i", "s", "d", "l"]
    rows = spark.fetchall("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_name = ? ORDER BY ordinal_position", ["h_t"])
    assert rows == [("i", "BIGINT"), ("s", "VARCHAR"), ("d", "DATE"), ("l", "VARCHAR[]")]
    assert spark.fetchall("SELECT count(*) FROM information_schema.tables "
                          "WHERE table_name = ?", ["h_t"]) == [(1,)]


def test_register_parquet_with_positions_in_file_order(spark: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    pq.write_table(pa.table({"v": ["a", "b", "c"]}), folder / "p1.parquet")
    pq.write_table(pa.table({"v": ["d", "e"]}), folder / "p2.parquet")
    spark.register_parquet("h_pq", folder, positions=True)
    rows = spark.fetchall("SELECT v, lk_source_file, lk_source_row FROM h_pq ORDER BY v")
    assert [(v, Path(f).name, r) for v, f, r in rows] == [
        ("a", "p1.parquet", 1), ("b", "p1.parquet", 2), ("c", "p1.parquet", 3),
        ("d", "p2.parquet", 1), ("e", "p2.parquet", 2)]
    assert Path(rows[0][1]) == folder / "p1.parquet"  # a path, as DuckDB gives it
    assert spark.parquet_row_count(folder / "p1.parquet") == 3


def test_arrow_in_stream_out_and_copy_to_parquet(spark: Engine, tmp_path: Path) -> None:
    spark.register_arrow("h_ar", pa.table({"n": list(range(10))}))
    batches = list(spark.stream_arrow("SELECT n FROM h_ar ORDER BY n", 4))
    assert all(b.num_rows <= 4 for b in batches)
    assert [n for b in batches for n in b.column(0).to_pylist()] == list(range(10))
    spark.copy_to_parquet("SELECT n * 2 AS m FROM h_ar WHERE n < 3 ORDER BY n",
                          tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column("m").to_pylist() == [0, 2, 4]
    spark.unregister("h_ar")
    assert not spark.table_exists("h_ar")


def test_read_csv_reads_text_columns_in_file_order(spark: Engine, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('a;b\n"x;1";2\n3;\n"";"multi\nline"\n', encoding="utf-8")
    spark.read_csv("h_csv", path, width=2, skip=1, delimiter=";", max_line_bytes=1 << 20)
    assert spark.fetchall("SELECT c0, c1 FROM h_csv ORDER BY rowid") == [
        ("x;1", "2"), ("3", None), ("", "multi\nline")]
    assert spark.fetchall("SELECT * FROM h_csv WHERE rowid = 0") == [("x;1", "2")]
    assert spark.columns("h_csv") == ["c0", "c1"]


def test_read_csv_says_what_it_found(spark: Engine, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with pytest.raises(CsvReadError) as caught:
        spark.read_csv("h_bad", path, width=2, skip=0, delimiter=",", max_line_bytes=1 << 20)
    assert caught.value.fields == (2, 3)
    assert caught.value.line == 3
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"a,b\nJos\xe9,1\n")
    with pytest.raises(CsvReadError) as caught:
        spark.read_csv("h_bad", bad, width=2, skip=0, delimiter=",", max_line_bytes=1 << 20)
    assert caught.value.not_utf8


def test_an_attached_schema_is_a_folder_of_parquet_tables(spark: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    spark.attach(folder, "h_idx", read_only=False)
    spark.execute("CREATE OR REPLACE TABLE h_idx.t AS SELECT 1 AS i UNION ALL SELECT 2")
    assert sorted(p.name for p in folder.iterdir()) == ["t"]
    assert list((folder / "t").glob("*.parquet"))
    spark.attach(folder, "h_idx", read_only=True)
    assert spark.fetchall("SELECT sum(i) FROM h_idx.t") == [(3,)]
    with pytest.raises(EngineError, match="read-only"):
        spark.execute("CREATE OR REPLACE TABLE h_idx.u AS SELECT 1 AS i")
    # and DuckDB reads the same folder
    with make_engine() as duck:
        duck.attach(folder, "h_idx", read_only=True)
        assert duck.fetchall("SELECT sum(i) FROM h_idx.t") == [(3,)]


def test_a_duckdb_index_file_is_refused_with_how_to_fix(spark: Engine, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--engine spark"):
        spark.attach(tmp_path / "index.duckdb", "h_idx2", read_only=True)


def test_the_spark_engine_gives_splink_its_database_api(spark: Engine) -> None:
    from splink.backends.spark import SparkAPI

    assert isinstance(spark.splink_db_api(), SparkAPI)


def test_duckdb_settings_are_kept_and_read_back_but_change_nothing(spark: Engine) -> None:
    spark.execute("SET enable_progress_bar = false")
    assert spark.fetchall("SELECT current_setting('enable_progress_bar')") == [(False,)]
    spark.execute("CHECKPOINT lkidx")


def test_a_cte_materialization_hint_is_left_to_the_translator(spark: Engine) -> None:
    spark.execute("CREATE OR REPLACE TABLE h_m AS WITH s AS MATERIALIZED (SELECT 2 AS x) "
                  "SELECT x FROM s")
    assert spark.fetchall("WITH s AS NOT MATERIALIZED (SELECT x + 1 AS y FROM h_m) "
                          "SELECT y FROM s") == [(3,)]


#: rows to number: a key with NULLs (last, as DuckDB sorts them) and a second key
_TO_NUMBER = ("SELECT CASE WHEN i % 97 = 0 THEN NULL ELSE 'k' || CAST(i % 13 AS VARCHAR) END "
              "AS k, i, i * 2 AS j FROM (SELECT unnest(generate_series(0, 699)) AS i)")
_NUMBERINGS = [
    Numbering(column="n", order_by=("k", "i")),
    Numbering(column="uid", order_by=("k", "i"), keep=("j", "k"), as_text=True),
]


@pytest.fixture
def many_partitions(spark: Engine) -> Iterator[None]:
    """Small tables in several partitions: AQE would coalesce them into one."""
    conf = spark.spark.conf  # type: ignore[attr-defined]
    before = (conf.get("spark.sql.shuffle.partitions"),
              conf.get("spark.sql.adaptive.coalescePartitions.enabled"))
    conf.set("spark.sql.shuffle.partitions", "5")
    conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    yield
    conf.set("spark.sql.shuffle.partitions", before[0])
    conf.set("spark.sql.adaptive.coalescePartitions.enabled", before[1])


@pytest.mark.parametrize("numbering", _NUMBERINGS, ids=["bigint", "text-kept"])
def test_a_numbered_step_gives_duckdbs_numbers(spark: Engine, many_partitions: None,
                                               numbering: Numbering) -> None:
    step = SqlStep(sql=_TO_NUMBER, output_table_name="h_numbered", numbering=numbering)
    with make_engine() as duck:
        duck.run_steps([step])
        want = duck.fetchall(f"SELECT * FROM h_numbered ORDER BY {numbering.column}")
        want_columns = duck.columns("h_numbered")
    spark.run_steps([step])
    got = spark.fetchall(f"SELECT * FROM h_numbered ORDER BY {numbering.column}")
    assert spark.columns("h_numbered") == want_columns
    assert len(got) == 700
    assert got == want
    assert spark.column_types("h_numbered")[numbering.column] == (
        "VARCHAR" if numbering.as_text else "BIGINT")


def test_a_numbering_sorts_across_partitions_never_in_one(spark: Engine,
                                                          many_partitions: None) -> None:
    numbering = _NUMBERINGS[0]
    engine: Any = spark
    df = engine._df(_TO_NUMBER)
    sorted_plan = engine._sorted_with_places(df, numbering)
    plan = sorted_plan._jdf.queryExecution().executedPlan().toString()
    assert "rangepartitioning" in plan.lower(), plan
    assert "SinglePartition" not in plan, plan
    assert "Window" not in plan, plan
    assert sorted_plan.rdd.getNumPartitions() > 1
    numbered, placed = engine._numbered(df, numbering)
    plan = numbered._jdf.queryExecution().executedPlan().toString()
    assert "SinglePartition" not in plan and "Window" not in plan, plan
    placed.unpersist()
    # what the window a DuckDB step would bring is: the whole table in one partition
    window = engine._df(numbering.sql(_TO_NUMBER))._jdf.queryExecution().executedPlan()
    assert "SinglePartition" in window.toString()


def test_copy_to_csv_writes_duckdbs_bytes(spark: Engine, tmp_path: Path) -> None:
    """The package's CSVs are the same file whichever engine writes them: quoting of
    empty strings, quotes, commas, line breaks and ``#`` (DuckDB's comment character: a
    unit such as ``#613``), NULL as nothing, booleans, numbers."""
    values = ["#613", "a#b", " x", "x ", "", 'a"b', "a,b", "-1", "a\nb", "1 # 2", "'q", ";x"]
    quoted = (v.replace("'", "''") for v in values)
    cells = ", ".join(f"'{v}' AS c{i}" for i, v in enumerate(quoted))
    sql = (f"SELECT 1 AS n, {cells}, NULL AS nothing, true AS flag, 2.5 AS x UNION ALL "
           f"SELECT 2, {cells}, 'y', false, -0.125")
    with make_engine() as duck:
        duck.copy_to_csv(f"SELECT * FROM ({sql}) ORDER BY n", tmp_path / "duck.csv")
    spark.copy_to_csv(f"SELECT * FROM ({sql}) AS t ORDER BY n", tmp_path / "spark.csv")
    want = (tmp_path / "duck.csv").read_bytes()
    assert b'"#613"' in want
    assert (tmp_path / "spark.csv").read_bytes() == want


def test_jaro_winkler_is_duckdbs_on_spark(spark: Engine) -> None:
    """Every name level's threshold reads the same similarity on both engines: Spark's is
    DuckDB's algorithm (the Splink jar's differs, e.g. ABEL/ALBERT 0.7875 against 0.825)."""
    import csv
    import gzip
    from importlib import resources

    with gzip.open(resources.files("lastknown") / "data" / "first_names.csv.gz", "rt") as f:
        names = [row["name"] for row in csv.DictReader(f)][:150]
    left = [a for a in names for _ in names] + ["ABEL", "", None, "A"]
    right = [b for _ in names for b in names] + ["ALBERT", "", "X", None]
    pairs = pa.table({"i": list(range(len(left))), "l": left, "r": right})
    sql = "SELECT i, jaro_winkler_similarity(l, r) AS jw FROM pairs ORDER BY i"
    with make_engine() as duck:
        duck.register_arrow("pairs", pairs)
        want = [v for _, v in duck.fetchall(sql)]
    spark.register_arrow("pairs", pairs)
    got = [v for _, v in spark.fetchall(sql)]
    assert len(got) == len(want) == 22_504
    assert got[-4:] == [0.825, 0.0, None, None]
    assert all(g == pytest.approx(w, abs=1e-12) for g, w in zip(got, want, strict=True)
               if w is not None)
    for threshold in (0.75, 0.78, 0.9, 0.92, 0.93):
        assert [g >= threshold for g in got[:-2]] == [w >= threshold for w in want[:-2]]


def test_the_code_generators_fallback_is_not_logged_as_an_error(spark: Engine) -> None:
    """A generated method over 64 KB makes Spark log an ERROR with a page of stack, then
    run the plan interpreted with the same answer: that logger is off, the rest of Spark
    still logs errors."""
    jvm = spark.spark._jvm  # type: ignore[attr-defined]
    manager = jvm.org.apache.logging.log4j.LogManager
    codegen = "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator"
    assert manager.getLogger(codegen).getLevel().toString() == "OFF"
    assert manager.getLogger("org.apache.spark.scheduler.DAGScheduler").getLevel().toString() \
        == "ERROR"
