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
    ["worker", "--database", "sqlite:///{d}/jobs.sqlite", "--queue", "sqlite:///{d}/q.sqlite",
     "--spark-master", "local[2]"],
    ["demo", "--persons", "100", "--requests", "10", "--out", "{d}/x", "--spark-master",
     "local[2]"],
])
def test_spark_master_without_engine_spark_is_a_usage_error(tmp_path: Path,
                                                           command: list[str]) -> None:
    (tmp_path / "r.csv").write_text("x\n", encoding="utf-8")
    (tmp_path / "b.toml").write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, [a.format(d=tmp_path) for a in command])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "o").exists()
    assert "--spark-master is for --engine spark" in result.output


def test_a_spark_worker_runs_one_job_at_a_time(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["worker", "--database", f"sqlite:///{tmp_path}/j.sqlite",
                                      "--queue", f"sqlite:///{tmp_path}/q.sqlite",
                                      "--engine", "spark", "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        "Error: --engine spark runs one job at a time (a worker process has one Spark session):"
        " give --workers 1 and start more workers for more at once\n")
    assert not (tmp_path / "j.sqlite").exists()


class _Built(Exception):
    """Stops a job once its engine is being built (no Spark session is started)."""


def test_a_worker_on_spark_prepares_its_jobs_on_a_spark_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lastknown worker --engine spark`: the prepare job it runs builds a SparkEngine with
    the worker's master (over the deployment's [spark] table), threads and memory."""
    from lastknown.engines.spark import SparkEngine
    from lastknown.service.jobs import JobStore, Worker
    from lastknown.service.submission import PREPARE_JOB
    from lastknown.synth import generate

    data, home = tmp_path / "s", tmp_path / "home"
    generate(persons=100, requests=10, seed=3, out=data)
    (tmp_path / "policy.toml").write_text("", encoding="utf-8")
    config = tmp_path / "lastknown.toml"
    config.write_text('archive = "home/archive"\n[spark]\nmaster = "spark://head:7077"\n'
                      'shuffle_partitions = 8\n', encoding="utf-8")
    jobs = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    paths = {"request": data / "request.csv", "batch_path": data / "batch.toml",
             "master": data / "master", "policy": tmp_path / "policy.toml",
             "archive": home / "archive", "anchors": home / "anchors.jsonl"}
    job = JobStore(jobs).enqueue("prepare", PREPARE_JOB, {
        **{k: str(v) for k, v in paths.items()}, "submitted_by": "dana",
        "ledger": str(home / "ledger.sqlite")}, submitted_by="dana")
    built: list[dict[str, object]] = []

    def spy(self: SparkEngine, **settings: object) -> None:
        built.append(settings)
        raise _Built

    ran: list[str] = []
    monkeypatch.setattr(SparkEngine, "__init__", spy)
    monkeypatch.setattr(Worker, "run", lambda self: ran.append(self.queue._run(job.id)))
    result = CliRunner().invoke(cli, [
        "--config-file", str(config), "worker", "--database", jobs,
        "--queue", f"sqlite:///{tmp_path / 'q.sqlite'}", "--engine", "spark",
        "--spark-master", "local[3]", "--threads", "3", "--memory-limit", "1g"])
    assert result.exit_code == 0, result.output
    assert ran == ["failed"]  # stopped by the spy, once the engine was being built
    assert built == [{"master": "local[3]", "conf": {}, "checkpoint_dir": None,
                      "shuffle_partitions": 8, "threads": 3, "memory_limit": "1g"}]
