"""Choosing and configuring the Spark engine (no Spark session is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lastknown.cli import cli
from lastknown.config import SparkSettings, load_deployment
from lastknown.engines import make_engine
from lastknown.errors import ConfigError
from lastknown.pipeline import ProcessOptions, open_engine


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "lastknown.toml"
    path.write_text(text, encoding="utf-8")
    return load_deployment(path, env={}, user_config_dir=tmp_path / "c",
                           user_data_dir=tmp_path / "d")


def test_the_spark_table_is_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    deployment = _load(tmp_path, '[spark]\nmaster = "spark://head:7077"\n'
                                 'checkpoint_dir = "ckpt"\nshuffle_partitions = 64\n'
                                 'conf = { "spark.executor.memory" = "16g", '
                                 '"spark.speculation" = true }\n')
    assert deployment.spark == SparkSettings(
        master="spark://head:7077", checkpoint_dir=tmp_path / "ckpt", shuffle_partitions=64,
        conf={"spark.executor.memory": "16g", "spark.speculation": "true"})
    assert deployment.spark.with_master("local[4]").master == "local[4]"
    assert deployment.spark.with_master(None).master == "spark://head:7077"


def test_without_a_spark_table_spark_runs_locally(tmp_path: Path) -> None:
    assert _load(tmp_path, 'ledger = "l.sqlite"\n').spark == SparkSettings()


@pytest.mark.parametrize(("text", "message"), [
    ("[spark]\nexecutors = 4\n", "unknown key `executors`"),
    ("[spark]\nshuffle_partitions = 0\n", "positive integer"),
    ("[spark]\nshuffle_partitions = true\n", "positive integer"),
    ('[spark]\nmaster = ""\n', "master URL"),
    ('[spark]\nconf = "x"\n', "table of Spark settings"),
    ('spark = "local"\n', "must be a table"),
])
def test_a_wrong_spark_table_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)


def test_an_unknown_engine_names_the_ones_there_are() -> None:
    with pytest.raises(ConfigError, match="duckdb or spark"):
        make_engine("presto")


def test_open_engine_keeps_duckdb_the_default() -> None:
    with open_engine(ProcessOptions()) as engine:
        assert engine.name == "duckdb"
        assert engine.index_storage == "duckdb"


@pytest.mark.parametrize("command", [
    ["master", "index", "--master", "{d}", "--out", "{d}/x", "--spark-master", "local[2]"],
    ["process", "{d}/r.csv", "--master", "{d}", "--batch", "{d}/b.toml", "--out", "{d}/o",
     "--spark-master", "local[2]"],
])
def test_spark_master_without_engine_spark_is_a_usage_error(tmp_path: Path,
                                                           command: list[str]) -> None:
    (tmp_path / "r.csv").write_text("x\n", encoding="utf-8")
    (tmp_path / "b.toml").write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, [a.format(d=tmp_path) for a in command])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "o").exists()
    assert "--spark-master is for --engine spark" in result.output
