"""The same synthetic batch through DuckDB and through Spark local[2] (issue 14's bar:
same answers on both engines).

``master index`` runs on each engine: the index tables must hold the same rows and the
two models must be the same model (the same id: comparisons, levels, m and u). Then
``process`` runs on each engine against its own index, and every row's outcome, TIN,
disclosed address and probability must agree (probabilities and weights to 1e-9).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from lastknown.config import Deployment, SparkSettings
from lastknown.engines import make_engine
from lastknown.match.index import INDEX_SCHEMA, TABLES_DIR
from lastknown.pipeline import ProcessOptions, ProcessResult, build_master_index, process_request
from lastknown.synth import generate

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("differential")
    generate(persons=300, requests=100, seed=7, out=root / "data")
    spark = SparkSettings(master="local[2]", checkpoint_dir=root / "checkpoints")
    build_master_index(root / "data" / "master", out=root / "index-duckdb")
    build_master_index(root / "data" / "master", out=root / "index-spark", engine="spark",
                       spark=spark)
    results: dict[str, ProcessResult] = {}
    for engine in ("duckdb", "spark"):
        home = root / f"home-{engine}"
        deployment = Deployment(ledger=str(home / "ledger.sqlite"), archive=home / "archive",
                                anchors=home / "anchors.jsonl", source="test",
                                spark=spark)
        results[engine] = process_request(
            root / "data" / "request.csv", master=root / f"index-{engine}",
            batch_path=root / "data" / "batch.toml", out=root / f"out-{engine}",
            options=ProcessOptions(engine=engine, deployment=deployment))
    return {"root": root, "results": results}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _index_rows(index: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of an index (either storage) read through DuckDB."""
    manifest = json.loads((index / "index.json").read_text(encoding="utf-8"))
    with make_engine() as duck:
        if manifest.get("storage") == "parquet":
            duck.attach(index / TABLES_DIR, INDEX_SCHEMA, read_only=True)
        else:
            duck.attach(index / "index.duckdb", INDEX_SCHEMA, read_only=True)
        return sorted(duck.fetchall(sql), key=repr)


def test_the_spark_index_is_parquet_and_says_so(runs: dict[str, Any]) -> None:
    index = runs["root"] / "index-spark"
    manifest = json.loads((index / "index.json").read_text(encoding="utf-8"))
    assert manifest["storage"] == "parquet"
    assert not (index / "index.duckdb").exists()
    assert {p.name for p in (index / TABLES_DIR).iterdir()} >= {
        "idx_record", "idx_return", "idx_block_key", "idx_block_size", "tf_first_n",
        "tf_surname_n"}
    duck = json.loads((runs["root"] / "index-duckdb" / "index.json").read_text("utf-8"))
    assert duck["storage"] == "duckdb"
    for key in ("year_min", "year_max", "return_rows", "tin_count", "record_count",
                "quarantined_rows", "tax_years", "training"):
        assert manifest[key] == duck[key], key


@pytest.mark.parametrize("sql", [
    # record ids too: a total order numbers them (tin, first year, the record's values)
    f"SELECT * FROM {INDEX_SCHEMA}.idx_record",
    f"SELECT * FROM {INDEX_SCHEMA}.idx_return",
    f"SELECT first_n, round(tf_first_n, 12) FROM {INDEX_SCHEMA}.tf_first_n",
    f"SELECT surname_n, round(tf_surname_n, 12) FROM {INDEX_SCHEMA}.tf_surname_n",
    f"SELECT r.tin, r.year_min, r.first_n, r.surname_n, r.street_name, k.*"
    f" FROM {INDEX_SCHEMA}.idx_block_key k JOIN {INDEX_SCHEMA}.idx_record r USING (record_id)",
])
def test_both_engines_index_the_same_rows(runs: dict[str, Any], sql: str) -> None:
    duck = _index_rows(runs["root"] / "index-duckdb", sql)
    spark = _index_rows(runs["root"] / "index-spark", sql)
    assert len(duck) > 0
    assert spark == duck


def test_both_engines_train_the_same_model(runs: dict[str, Any]) -> None:
    models = [json.loads((runs["root"] / f"index-{e}" / "model.json").read_text("utf-8"))
              for e in ("duckdb", "spark")]
    duck, spark = models
    assert spark["sql_dialect"] == duck["sql_dialect"] == "duckdb"
    assert spark["lastknown"]["training"] == duck["lastknown"]["training"]
    assert spark["lastknown"]["household"] == duck["lastknown"]["household"]
    for cd, cs in zip(duck["comparisons"], spark["comparisons"], strict=True):
        for ld, ls in zip(cd["comparison_levels"], cs["comparison_levels"], strict=True):
            assert ls["sql_condition"] == ld["sql_condition"]
            if not ld.get("is_null_level"):
                assert ls["m_probability"] == pytest.approx(ld["m_probability"], abs=TOLERANCE)
                assert ls["u_probability"] == pytest.approx(ld["u_probability"], abs=TOLERANCE)
                assert 0 < ls["u_probability"] < 1
    # the id digests comparisons and household weights: the same model, to the last digit
    assert spark["lastknown"]["model_id"] == duck["lastknown"]["model_id"]


def test_totals_agree(runs: dict[str, Any]) -> None:
    duck, spark = runs["results"]["duckdb"], runs["results"]["spark"]
    assert duck.rows_total == 100
    assert duck.rows_matched > 20  # the batch exercises matching, not only rejection
    assert (spark.rows_matched, spark.rows_unmatched, spark.rows_rejected) == (
        duck.rows_matched, duck.rows_unmatched, duck.rows_rejected)


def test_every_rows_outcome_agrees(runs: dict[str, Any]) -> None:
    duck, spark = (_rows(runs["results"][e].record / "outcomes.csv") for e in ("duckdb", "spark"))
    assert len(duck) == 100
    assert {r["outcome"] for r in duck} >= {"M", "R", "N"}
    assert spark == duck  # outcome, candidates, address year, reasons: every column


def test_every_candidates_tin_weights_and_probability_agree(runs: dict[str, Any]) -> None:
    duck, spark = (_rows(runs["results"][e].record / "explanation.csv")
                   for e in ("duckdb", "spark"))
    assert len(duck) > 50
    assert len(spark) == len(duck)
    numeric = [c for c in duck[0] if c == "match_weight" or c == "match_probability"
               or c == "name_weight" or c.startswith("mw_")]
    for d, s in zip(duck, spark, strict=True):
        for column in d:
            if column in numeric:
                assert float(s[column]) == pytest.approx(float(d[column]), abs=TOLERANCE), (
                    d["source_row"], d["tin_rank"], column)
            else:
                assert s[column] == d[column], (d["source_row"], d["tin_rank"], column)


@pytest.mark.parametrize("name", ["matched.csv", "unmatched.csv", "rejected.csv"])
def test_the_packages_agree(runs: dict[str, Any], name: str) -> None:
    duck, spark = (_rows(runs["root"] / f"out-{e}" / name) for e in ("duckdb", "spark"))
    assert spark == duck
    if name == "matched.csv":
        assert len(duck) > 20 and all(r["street"] and r["zip"] for r in duck)
