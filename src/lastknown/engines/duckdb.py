"""DuckDB, the embedded default engine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from lastknown.engines.base import Engine
from lastknown.errors import ConfigError, PipelineError


def _quote(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDBEngine(Engine):
    """Runs SQL steps in one DuckDB connection. ``con`` is open for Splink's DuckDBAPI."""

    name = "duckdb"

    def __init__(self, *, database: str = ":memory:", threads: int | None = None,
                 memory_limit: str | None = None, read_only: bool = False) -> None:
        self.database = database
        self.con = duckdb.connect(database, read_only=read_only)
        try:
            if threads:
                self.con.execute(f"SET threads = {int(threads)}")
            if memory_limit:
                self.con.execute(f"SET memory_limit = {_quote(memory_limit)}")
        except duckdb.Error as exc:
            self.con.close()
            raise ConfigError(
                f"engine limits threads={threads!r} memory_limit={memory_limit!r} were "
                f"refused ({exc}); give --threads a positive number and --memory-limit a "
                "size such as 6GB or 800MB"
            ) from exc
        self.con.execute("SET preserve_insertion_order = false")
        # Progress goes to our own bars on stderr, never DuckDB's on stdout.
        self.con.execute("SET enable_progress_bar = false")

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        try:
            self.con.execute(sql, parameters)
        except duckdb.Error as exc:
            raise PipelineError(f"DuckDB failed on:\n{sql[:2000]}\n{exc}") from exc

    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, parameters).fetchall()
        except duckdb.Error as exc:
            raise PipelineError(f"DuckDB failed on:\n{sql[:2000]}\n{exc}") from exc

    def register_parquet(self, table_name: str, path: str | Path, *,
                         positions: bool = False) -> None:
        p = Path(path)
        pattern = str(p / "**" / "*.parquet") if p.is_dir() else str(p)
        cols, options = "*", ""
        if positions:
            cols = ("* EXCLUDE (filename, file_row_number), filename AS lk_source_file, "
                    "file_row_number + 1 AS lk_source_row")
            options = ", filename = true, file_row_number = true"
        self.execute(
            f"CREATE OR REPLACE VIEW {table_name} AS "
            f"SELECT {cols} FROM read_parquet({_quote(pattern)}, union_by_name = true{options})"
        )

    def register_arrow(self, table_name: str, data: Any) -> None:
        self.con.register(table_name, data)

    def copy_to_parquet(self, sql: str, path: str | Path) -> None:
        self.execute(f"COPY ({sql}) TO {_quote(path)} (FORMAT parquet, COMPRESSION zstd)")

    @contextmanager
    def joins_as_written(self) -> Iterator[None]:
        """DuckDB's join-order optimiser off for the enclosed statements, then restored.

        Each join still builds its hash table on the smaller side (a separate optimiser).
        """
        before = self.fetchall("SELECT current_setting('disabled_optimizers')")[0][0]
        off = ",".join(x for x in [*str(before or "").split(","), "join_order"] if x.strip())
        self.execute(f"SET disabled_optimizers = {_quote(off)}")
        try:
            yield
        finally:
            self.execute(f"SET disabled_optimizers = {_quote(str(before or ''))}")

    def close(self) -> None:
        self.con.close()
