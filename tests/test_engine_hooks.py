"""The engine hooks the rest of the package uses instead of an engine's connection."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lastknown.engines import Engine, make_engine
from lastknown.errors import ConfigError, CsvReadError, EngineError


def test_a_refused_statement_is_an_engine_error_with_the_engines_message() -> None:
    with make_engine() as engine, pytest.raises(EngineError) as caught:
        engine.execute("SELECT * FROM no_such_table")
    assert "no_such_table" in caught.value.detail
    assert "no_such_table" in str(caught.value)


def test_stream_arrow_yields_batches_of_at_most_the_rows_asked() -> None:
    with make_engine() as engine:
        batches = list(engine.stream_arrow("SELECT range AS n FROM range(10) ORDER BY n", 4))
    assert all(isinstance(b, pa.RecordBatch) and b.num_rows <= 4 for b in batches)
    assert [n for b in batches for n in b.column(0).to_pylist()] == list(range(10))


def test_stream_alongside_lets_the_caller_write_while_reading() -> None:
    with make_engine() as engine:
        engine.execute("CREATE TABLE src AS SELECT range AS n FROM range(5)")
        engine.execute("CREATE TABLE dst (n BIGINT)")
        for batch in engine.stream_arrow("SELECT n FROM src", 2, alongside=True):
            engine.register_arrow("_chunk", pa.table({"n": batch.column(0)}))
            engine.execute("INSERT INTO dst SELECT n FROM _chunk")
            engine.unregister("_chunk")
        assert engine.fetchall("SELECT sum(n), count(*) FROM dst") == [(10, 5)]
        assert not engine.table_exists("_chunk")


def test_insertion_order_kept_restores_the_engines_setting() -> None:
    with make_engine() as engine:
        setting = "SELECT current_setting('preserve_insertion_order')"
        assert engine.fetchall(setting) == [(False,)]
        with engine.insertion_order_kept():
            assert engine.fetchall(setting) == [(True,)]
        assert engine.fetchall(setting) == [(False,)]


def test_read_csv_says_what_it_found_in_engine_neutral_terms(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with make_engine() as engine, pytest.raises(CsvReadError) as caught:
        engine.read_csv("t", path, width=2, skip=0, delimiter=",", max_line_bytes=1 << 20)
    assert caught.value.fields == (2, 3)
    assert caught.value.line == 3
    assert not caught.value.line_too_long


def test_read_csv_reads_text_columns_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('a;b\n"x;1";2\n3;\n', encoding="utf-8")
    with make_engine() as engine:
        engine.read_csv("t", path, width=2, skip=1, delimiter=";", max_line_bytes=1 << 20)
        assert engine.fetchall("SELECT c0, c1 FROM t ORDER BY rowid") == [("x;1", "2"),
                                                                         ("3", None)]


class _Bare(Engine):
    """An engine filling only the abstract hooks: what a new engine starts from."""

    name = "bare"

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None: ...
    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[Any]:
        return []
    def register_parquet(self, table_name: str, path: str | Path, *,
                         positions: bool = False) -> None: ...
    def register_arrow(self, table_name: str, data: Any) -> None: ...
    def unregister(self, table_name: str) -> None: ...
    def stream_arrow(self, sql: str, batch_rows: int, *,
                     alongside: bool = False) -> Iterator[Any]:
        yield from ()
    def read_csv(self, table_name: str, path: str | Path, *, width: int, skip: int,
                 delimiter: str, max_line_bytes: int) -> None: ...
    def parquet_row_count(self, path: str | Path) -> int:
        return 0
    def copy_to_parquet(self, sql: str, path: str | Path) -> None: ...
    def close(self) -> None: ...


def test_an_engine_without_splink_or_an_index_file_is_refused_by_name() -> None:
    engine = _Bare()
    with pytest.raises(ConfigError, match="needs --engine duckdb \\(got bare\\)"):
        engine.splink_db_api()
    with pytest.raises(ConfigError, match="got bare"):
        engine.attach(Path("index.duckdb"), "lk_index", read_only=True)


def test_the_duckdb_engine_gives_splink_its_database_api() -> None:
    from splink import DuckDBAPI

    with make_engine() as engine:
        assert isinstance(engine.splink_db_api(), DuckDBAPI)


def test_numbered_gives_each_row_its_position_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("h\nz\ny\nx\n", encoding="utf-8")
    with make_engine() as engine:
        with engine.insertion_order_kept():
            engine.read_csv("t", path, width=1, skip=0, delimiter=",", max_line_bytes=1 << 20)
        rows = engine.fetchall(f"SELECT _lk_rowid, c0 FROM {engine.numbered('t')} s "
                               "ORDER BY c0")
    assert rows == [(0, "h"), (3, "x"), (2, "y"), (1, "z")]


def test_column_types_in_order_in_the_engines_spelling() -> None:
    with make_engine() as engine:
        engine.execute("CREATE TABLE t (b VARCHAR, a BIGINT, c DOUBLE)")
        assert list(engine.column_types("t").items()) == [
            ("b", "VARCHAR"), ("a", "BIGINT"), ("c", "DOUBLE")]


def test_copy_to_csv_writes_a_header_and_counts_rows(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with make_engine() as engine:
        rows = engine.copy_to_csv("SELECT 1 AS n, 'a,b' AS s UNION ALL SELECT 2, NULL "
                                  "ORDER BY n", path)
    assert rows == 2
    assert path.read_text(encoding="utf-8").splitlines() == ["n,s", '1,"a,b"', "2,"]


def test_progress_off_restores_the_engines_setting() -> None:
    with make_engine() as engine:
        setting = "SELECT current_setting('enable_progress_bar')"
        engine.execute("SET enable_progress_bar = true")
        with engine.progress_off():
            assert engine.fetchall(setting) == [(False,)]
        assert engine.fetchall(setting) == [(True,)]


def test_an_engine_without_row_positions_or_csv_writing_is_refused_by_name() -> None:
    engine = _Bare()
    with pytest.raises(ConfigError, match="got bare"):
        engine.numbered("t")
    with pytest.raises(ConfigError, match="got bare"):
        engine.copy_to_csv("SELECT 1", "x.csv")


def test_run_steps_logs_each_steps_time_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    from lastknown.engines import SqlStep

    steps = [SqlStep(sql="SELECT range AS n FROM range(3)", output_table_name="lk_a"),
             SqlStep(sql="SELECT n * 2 AS n FROM lk_a", output_table_name="lk_b")]
    with make_engine() as engine:
        with caplog.at_level("INFO", logger="lastknown.engines"):
            engine.run_steps(steps[:1])
        assert not [r for r in caplog.records if r.getMessage().startswith("step ")]
        with caplog.at_level("DEBUG", logger="lastknown.engines"):
            engine.run_steps(steps)
        assert engine.fetchall("SELECT sum(n) FROM lk_b") == [(6,)]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [m.split(":")[0] for m in said] == ["step lk_a", "step lk_b"]
    assert all(re.fullmatch(r"step lk_[ab]: \d+\.\d{3} s wall, \d+\.\d{3} s CPU", m)
               for m in said), said
