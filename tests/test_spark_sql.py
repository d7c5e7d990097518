"""The Spark dialect (``engines/spark_sql.py``): each fix-up on small SQL, and each list of
steps the project generates run on DuckDB and, translated, on local Spark, row for row.

The per-step tests record one small synthetic run on DuckDB (``synth`` 200 persons → ``master
index`` → ``process``; :mod:`spark_replay`), each statement with its inputs as they were,
then run the translated statement on one Spark session from the same inputs and compare
the rows (sorted; floats to 1e-9). Splink's own SQL is not ours and not replayed (Splink's
SparkAPI writes it); statements that are not queries are engine hooks (listed in
docs/SPARK_SQL.md).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastknown.engines.spark_sql import FIXUPS, UNTRANSLATABLE, fixups_in, to_spark
from lastknown.errors import EngineError

DOC = Path(__file__).parent.parent / "docs" / "SPARK_SQL.md"


# -- each fix-up on small SQL (no Spark) --------------------------------------------------

LISTS = {"t": {"a": "VARCHAR[]", "b": "VARCHAR[]", "s": "VARCHAR", "n": "INTEGER"}}

#: fix-up → (DuckDB SQL, a fragment its Spark SQL must hold, one it must not)
FIXUP_CASES: dict[str, tuple[str, str, str | None]] = {
    "star_except_replace": ("SELECT * EXCLUDE (b) REPLACE (n + 1 AS n) FROM t",
                            "SELECT t.a AS a, t.s AS s, t.n + 1 AS n FROM t", "EXCEPT"),
    "table_rename": ("SELECT x.n FROM lkidx.t AS x", "FROM lkidx__t AS x", "lkidx.t"),
    "list_index": ("SELECT a[1], a[-1] FROM t", "TRY_ELEMENT_AT(a, 1), TRY_ELEMENT_AT(a, -1)",
                   "a[0]"),
    "map_literal": ("SELECT MAP {'FT': 'FORT', 'MT': 'MOUNT'}[s] FROM t",
                    "TRY_ELEMENT_AT(MAP('FT', 'FORT', 'MT', 'MOUNT'), s)", "STRUCT"),
    "slice": ("SELECT a[2:], s[1:4], a[1:-2] FROM t",
              "SLICE(a, 2, GREATEST((SIZE(a)) - (2) + 1, 0)), "
              "SUBSTRING(s, 1, GREATEST((4) - (1) + 1, 0)), "
              "SLICE(a, 1, GREATEST((SIZE(a) + -1) - (1) + 1, 0))", None),
    "length_of_list": ("SELECT len(a), length(s), len(str_split(s, ' ')) FROM t",
                       "SIZE(a), LENGTH(s), SIZE(SPLIT(", "LENGTH(a)"),
    "list_has_any": ("SELECT list_has_any(a, b) FROM t",
                     "ARRAYS_OVERLAP(FILTER(a, x -> NOT x IS NULL), "
                     "FILTER(b, x -> NOT x IS NULL))", "&&"),
    "lambda_index": ("SELECT list_filter(a, (x, i) -> i > 1) FROM t",
                     "FILTER(a, (x, i0) -> (i0 + 1) > 1)", None),
    "regexp_full_match": ("SELECT regexp_full_match(s, '[0-9]{9}') FROM t",
                          "s RLIKE '^(?:[0-9]{9})$'", "REGEXP_FULL_MATCH"),
    "regexp_replace": ("SELECT regexp_replace(s, '(a)b', '\\1$', 'g'), "
                       "regexp_replace(s, 'x', 'y'), regexp_replace(s, 'q', '', 'gi') FROM t",
                       "REGEXP_REPLACE(s, '(a)b', '$1\\\\$'), "
                       "REGEXP_REPLACE(s, '^(?s:(.*?))(?:x)', '$1y'), "
                       "REGEXP_REPLACE(s, '(?i)q', '')", None),
    "regexp_extract_group": ("SELECT regexp_extract(s, '^[0-9]+'), "
                             "regexp_extract_all(s, '[0-9]+') FROM t",
                             "REGEXP_EXTRACT(s, '^[0-9]+', 0), "
                             "REGEXP_EXTRACT_ALL(s, '[0-9]+', 0)", None),
    "strip_accents": ("SELECT strip_accents(s) FROM t", "TRANSLATE(s, 'ÀÁÂ", "STRIP_ACCENTS"),
    "try_strptime": ("SELECT try_strptime(s, '%m/%d/%Y'), try_strptime(s, '%Y%m%d'), "
                     "try_strptime(s, '%d-%b-%Y') FROM t",
                     "TRY_TO_TIMESTAMP(s, 'M/d/yyyy'), TRY_TO_TIMESTAMP(s, 'yyyyMMdd'), "
                     "TRY_TO_TIMESTAMP(s, 'd-MMM-yyyy')", "STRPTIME"),
    "hamming": ("SELECT hamming(s, s) FROM t", "SIZE(FILTER(SEQUENCE(1, LENGTH(s))", "HAMMING"),
    "damerau_levenshtein": ("SELECT damerau_levenshtein(s, s) FROM t",
                            "CAST(DAMERAU_LEVENSHTEIN(s, s) AS BIGINT)", None),
    "jaro_winkler": ("SELECT jaro_winkler_similarity(s, s) FROM t", "LK_JARO_WINKLER(s, s)",
                     "JAROWINKLER"),
    "ordered_list_agg": ("SELECT list(n ORDER BY s), array_agg(DISTINCT s ORDER BY s) FROM t",
                         "CASE WHEN COUNT(*) = 0 THEN NULL ELSE TRANSFORM(ARRAY_SORT("
                         "COLLECT_LIST(STRUCT(s AS k0, n AS v))), s -> s.v) END, "
                         "ARRAY_SORT(COLLECT_SET(s))", None),
    "list_bool_or": ("SELECT list_bool_or(list_transform(a, x -> x = 'A')) FROM t",
                     "AGGREGATE(TRANSFORM(a, x -> x = 'A'), CAST(NULL AS BOOLEAN)",
                     "LIST_BOOL_OR"),
    "list_position": ("SELECT list_position(a, 'A') FROM t", "NULLIF(ARRAY_POSITION(a, 'A'), 0)",
                      None),
    "generate_series": ("SELECT generate_series(1, n), range(1, n) FROM t",
                        "FILTER(SEQUENCE(1, n), x -> x >= 1 AND x <= n), "
                        "FILTER(SEQUENCE(1, n), x -> x >= 1 AND x < n)", None),
    "cte_materialized": ("WITH c AS MATERIALIZED (SELECT 1 AS x) SELECT x FROM c",
                         "WITH c AS (SELECT 1 AS x)", "MATERIALIZED"),
    "unnest_nested": ("SELECT trim(unnest(str_split(s, ';'))) AS code FROM t",
                      "EXPLODE(TRANSFORM(SPLIT(s, CONCAT('\\\\Q', ';', '\\\\E')), "
                      "lk_u -> TRIM(lk_u))) AS code", None),
    "hash_sample": ("SELECT n FROM t WHERE hash(s) % 7 = 0", "PMOD(XXHASH64(s), 7) = 0",
                    "HASH(s)"),
}


@pytest.mark.parametrize("name", sorted(FIXUP_CASES))
def test_each_fixup_on_small_sql(name: str) -> None:
    sql, must, must_not = FIXUP_CASES[name]
    tables = {"lkidx.t": "lkidx__t"} if name == "table_rename" else None
    out = to_spark(sql, columns=LISTS, tables=tables)
    assert must in out, out
    if must_not is not None:
        assert must_not not in out, out
    assert name in fixups_in(sql, columns=LISTS, tables=tables)


@pytest.mark.parametrize("hint", ["MATERIALIZED", "NOT MATERIALIZED", "materialized"])
def test_a_cte_materialisation_hint_is_dropped_by_the_translator(hint: str) -> None:
    # the Spark engine no longer strips it before translating: to_spark does, named
    sql = (f"WITH a AS {hint} (SELECT 1 AS x), b AS (SELECT x FROM a) "
           f"SELECT * FROM (WITH c AS {hint} (SELECT x FROM b) SELECT x FROM c)")
    out = to_spark(sql)
    assert "MATERIALIZED" not in out.upper(), out
    assert fixups_in(sql) == {"cte_materialized"}


def test_portable_sql_needs_no_fixup() -> None:
    sql = "SELECT s, count(*) AS n, length(s) FROM t WHERE n > 1 GROUP BY s"
    assert fixups_in(sql, columns=LISTS) == set()
    assert to_spark(sql, columns=LISTS) == sql.replace("count", "COUNT").replace(
        "length", "LENGTH")


def test_every_fixup_has_a_case_and_a_line_in_the_docs() -> None:
    assert set(FIXUP_CASES) == set(FIXUPS)
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(), re.MULTILINE))
    assert documented == set(FIXUPS) | set(UNTRANSLATABLE), documented ^ (
        set(FIXUPS) | set(UNTRANSLATABLE))


@pytest.mark.parametrize(("sql", "construct"), [
    ("SELECT * FROM read_parquet('x.parquet')", "read_parquet"),
    ("SELECT column_name FROM information_schema.columns", "information_schema"),
    ("SELECT * FROM t WHERE rowid = 0", "rowid"),
    ("SELECT current_setting('threads')", "current_setting"),
    ("COPY (SELECT 1) TO 'x.csv' (HEADER)", "copy"),
    ("INSERT INTO t BY NAME SELECT 1 AS n", "insert_by_name"),
    ("DESCRIBE t", "describe"),
])
def test_untranslatable_constructs_are_named(sql: str, construct: str) -> None:
    with pytest.raises(EngineError) as raised:
        to_spark(sql)
    assert raised.value.detail == construct
    assert f"`{construct}`" in str(raised.value)


def test_star_modifiers_without_columns_say_which_table() -> None:
    with pytest.raises(EngineError, match="columns of u"):
        to_spark("SELECT * EXCLUDE (a) FROM u")


def test_regexp_replace_flag_that_does_not_translate() -> None:
    with pytest.raises(EngineError, match="flags 'gm'"):
        to_spark("SELECT regexp_replace(s, 'a', 'b', 'gm') FROM t")


# -- each list of steps on DuckDB and on Spark --------------------------------------------

#: The step lists and statements of one run, by the output tables they make, and what
#: stage each belongs to. A list whose Spark rows differ is marked with why.
STEP_LISTS: dict[str, str] = {
    "lk_master_flagged": "master index: normalisation (flags)",
    "lk_master_names": "master index: normalisation (names)",
    "lk_master_addresses": "master index: normalisation (addresses)",
    "lk_master_pass": "master index: one pass's returns",
    "lk_master_norm": "master index: normalisation",
    "lk_records_0": "master index: one pass's records",
    "lk_training_0": "master index: one pass's training rows",
    "lkidx.idx_record": "master index: records",
    "lkidx.idx_return": "master index: returns",
    "lkidx.idx_block_key": "master index: block keys",
    "lkidx.idx_block_size": "master index: block sizes",
    "lkidx.tf_first_n": "master index: term frequencies",
    "lkidx.tf_surname_n": "master index: term frequencies",
    "lk_training": "master index: training sample",
    "lk_household": "master index: housemates sample",
    "lk_training_u": "master index: the records whose pairs give u",
    "request_raw": "request intake",
    "_lk_valid_dates": "request validation",
    "_lk_valid_statutes": "request validation",
    "_lk_valid_periods": "request validation",
    "_lk_valid_checked": "request validation rules",
    "request_rejected": "request validation",
    "request_valid": "request validation",
    "lk_requests_people+lk_requests": "request normalisation",
    "lk_requests_chunk": "candidate search: chunk",
    "lk_candidates_keys+lk_candidates_oversized+lk_candidates_all+lk_candidates_judged+"
    "lk_candidates_named+lk_candidates_agree+lk_candidates_kept_tins+lk_candidates_kept+"
    "lk_candidates_pruned+lk_candidates_capped+lk_candidates": "candidate search with pruning",
    "lk_pairs+lk_pair_left+lk_pair_right": "pair steps",
    "lk_scored_chunk": "scores read from Splink's output",
    "lk_learn_confirmed+lk_learn_names+lk_learn_named+lk_learn_address": "learning",
    "lk_scored_confirmed+lk_tin_scores+lk_best+lk_decided+lk_disclosed+match_result+"
    "match_explanation": "decision",
}

#: Step lists whose Spark rows are known to differ, and why (xfail, strict).
#: (None now. ``hash_sample`` would differ on a master large enough to be sampled: this
#: run's 200 persons are all in the training sample on both engines.)
DIFFER: dict[str, str] = {}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One small run on DuckDB, every statement recorded with its inputs."""
    from lastknown.pipeline import ProcessOptions, build_master_index, process_request
    from lastknown.synth import generate
    from spark_replay import Recorder

    data = tmp_path_factory.mktemp("spark-sql") / "s"
    generate(persons=200, requests=40, seed=5, out=data)
    recorder = Recorder()
    # several passes (lastknown.match.index.index_steps), so each pass's steps are replayed
    with recorder.patched(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("lastknown.match.index.RETURNS_PER_PASS", 400)
        build_master_index(data / "master", out=data / "index", threads=2, memory_limit="1GB")
        # its own ledger and archive: the session's default archive may hold this batch id
        process_request(data / "request.csv", master=data / "index",
                        batch_path=data / "batch.toml", out=data / "response",
                        options=ProcessOptions(ledger=str(data / "ledger.sqlite"),
                                               archive=data / "archive",
                                               anchors=data / "anchors.jsonl"))
    shutil.rmtree(data / "master")
    return recorder


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from lastknown.engines.spark_session import spark_session
    from spark_replay import SparkReplayer

    session = spark_session("local[2]", conf=SPARK_TEST_CONF)
    yield SparkReplayer(session)
    session.stop()


#: Small data: interpreted expressions, no whole-stage code generation (compiling the
#: normalisation's large expressions costs more than running them on 200 persons).
SPARK_TEST_CONF = {"spark.sql.codegen.wholeStage": "false",
                   "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                   "spark.sql.shuffle.partitions": "2"}


def _compare(replayer: Any, case: Any) -> list[str]:
    from spark_replay import close, duckdb_rows, spark_rows

    problems = []
    frames = replayer.replay(case)
    for out, frame in frames.items():
        want, got = duckdb_rows(case.outputs[out]), spark_rows(frame)
        if not close(want, got):
            first = next(((w, g) for w, g in zip(want, got, strict=False) if w != g), None)
            problems.append(f"{out}: DuckDB {len(want)} rows, Spark {len(got)}; first "
                            f"difference {first!r:.400}")
    return problems


@pytest.mark.spark
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=DIFFER[n])) if n in DIFFER
    else n for n in STEP_LISTS])
def test_step_list_gives_duckdbs_rows_on_spark(recorded: Any, spark: Any, name: str) -> None:
    cases = [c for c in recorded.cases if c.name == name]
    assert cases, f"{name} ({STEP_LISTS[name]}) was not run: recorded " + ", ".join(
        c.name for c in recorded.cases if c.kind != "select")
    assert not _compare(spark, cases[0])


def test_every_step_list_of_the_run_is_listed(recorded: Any) -> None:
    # a pass's parts (lk_records_2) run the SQL of the first pass's (lk_records_0)
    made = {re.sub(r"^(lk_records|lk_training)_\d+$", r"\1_0", c.name)
            for c in recorded.cases if c.kind != "select"}
    assert made - {"match_nickname", "match_given_name"} <= set(STEP_LISTS), made - set(
        STEP_LISTS)


@pytest.mark.spark
def test_series_end_inclusive_or_not_as_on_duckdb(spark: Any) -> None:
    """``generate_series(a, b)`` includes b, ``range(a, b)`` stops before it, as DuckDB."""
    import duckdb

    sql = ("SELECT a, b, generate_series(a, b) AS g, range(a, b) AS r FROM (VALUES "
           "(1, 4), (2, 2), (3, 1), (0, 0)) AS t(a, b) ORDER BY a, b")
    want = [tuple(row) for row in duckdb.sql(sql).fetchall()]
    got = [(r.a, r.b, list(r.g), list(r.r)) for r in spark.spark.sql(to_spark(sql)).collect()]
    assert want == got == [(0, 0, [0], []), (1, 4, [1, 2, 3, 4], [1, 2, 3]),
                           (2, 2, [2], []), (3, 1, [], [])]


#: ``SELECT count(*) FROM t``: nothing to translate; each costs Spark a job
_TRIVIAL = re.compile(r"^\s*SELECT count\(\*\) FROM \w+\s*$", re.IGNORECASE)


@pytest.mark.spark
def test_queries_give_duckdbs_rows_on_spark(recorded: Any, spark: Any) -> None:
    """The summaries, checks and package queries a run fetches (each distinct one once)."""
    seen: set[str] = set()
    problems: list[str] = []
    for case in recorded.cases:
        sql = case.steps[0].sql
        if case.kind != "select" or sql in seen or _TRIVIAL.match(sql):
            continue
        seen.add(sql)
        problems += _compare(spark, case)
    assert len(seen) >= 15
    assert not problems, problems
