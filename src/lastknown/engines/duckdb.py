"""DuckDB, the embedded default engine."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from lastknown.engines.base import Engine
from lastknown.errors import ConfigError, CsvReadError, EngineError


def _quote(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _failed(sql: str, exc: duckdb.Error) -> EngineError:
    return EngineError(f"DuckDB failed on:\n{sql[:2000]}\n{exc}", detail=str(exc))


def _csv_failed(sql: str, exc: duckdb.Error) -> CsvReadError:
    """DuckDB's CSV reader's message, read for what it says about the file."""
    message = str(exc)
    line = re.search(r"Line: (\d+)", message)
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    return CsvReadError(
        f"DuckDB failed on:\n{sql[:2000]}\n{exc}", detail=message,
        line=int(line.group(1)) if line else None,
        fields=(int(fields.group(1)), int(fields.group(2))) if fields else None,
        line_too_long="maximum line size" in message.lower(),
        not_utf8="unicode" in message.lower() or "utf" in message.lower())


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
            raise _failed(sql, exc) from exc

    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, parameters).fetchall()
        except duckdb.Error as exc:
            raise _failed(sql, exc) from exc

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

    def unregister(self, table_name: str) -> None:
        self.con.unregister(table_name)

    def stream_arrow(self, sql: str, batch_rows: int, *,
                     alongside: bool = False) -> Iterator[pa.RecordBatch]:
        cursor = self.con.cursor() if alongside else self.con
        try:
            try:
                reader = cursor.sql(sql).to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise _failed(sql, exc) from exc
            yield from reader
        finally:
            if alongside:
                cursor.close()

    def read_csv(self, table_name: str, path: str | Path, *, width: int, skip: int,
                 delimiter: str, max_line_bytes: int) -> None:
        columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
        sql = (f"CREATE OR REPLACE TABLE {table_name} AS SELECT * FROM read_csv("
               f"{_quote(path)}, header = false, skip = {skip}, auto_detect = false, "
               f"delim = {_quote(delimiter)}, quote = '\"', escape = '\"', "
               f"columns = {columns}, encoding = 'utf-8', max_line_size = {max_line_bytes})")
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise _csv_failed(sql, exc) from exc

    def parquet_row_count(self, path: str | Path) -> int:
        rows = self.fetchall(f"SELECT sum(num_rows) FROM parquet_file_metadata({_quote(path)})")
        return int(rows[0][0] or 0) if rows else 0

    @contextmanager
    def insertion_order_kept(self) -> Iterator[None]:
        before = bool(self.fetchall("SELECT current_setting('preserve_insertion_order')")[0][0])
        self.execute("SET preserve_insertion_order = true")
        try:
            yield
        finally:
            self.execute(f"SET preserve_insertion_order = {str(before).lower()}")

    def numbered(self, table: str, column: str = "_lk_rowid") -> str:
        # rowid follows the order read: read_csv and insertion_order_kept keep it
        return f"(SELECT rowid AS {column}, * FROM {table})"

    def splink_db_api(self) -> Any:
        from splink import DuckDBAPI

        return DuckDBAPI(connection=self.con)

    def attach(self, database: Path, schema: str, *, read_only: bool) -> None:
        self.execute(f"DETACH DATABASE IF EXISTS {schema}")
        if Path(database).is_dir():
            self._attach_parquet(Path(database), schema, read_only=read_only)
            return
        mode = " (READ_ONLY)" if read_only else ""
        self.execute(f"ATTACH {_quote(database)} AS {schema}{mode}")

    def _attach_parquet(self, folder: Path, schema: str, *, read_only: bool) -> None:
        """A folder of Parquet tables (written by the Spark engine) as views in schema
        ``schema`` of the in-memory database: read, never written."""
        if not read_only:
            raise ConfigError(f"{folder}: a Parquet index is written by --engine spark; "
                              "DuckDB writes its index as one database file")
        self.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.execute(f"CREATE SCHEMA {schema}")
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith((".", "_")):
                self.execute(
                    f"CREATE VIEW {schema}.{sub.name} AS SELECT * FROM "
                    f"read_parquet({_quote(str(sub / '*.parquet'))})")

    def copy_to_csv(self, sql: str, path: str | Path) -> int:
        return int(self.fetchall(f"COPY ({sql}) TO {_quote(path)} (HEADER, DELIMITER ',')")[0][0])

    @contextmanager
    def progress_off(self) -> Iterator[None]:
        before = self.fetchall("SELECT current_setting('enable_progress_bar')")[0][0]
        self.execute("SET enable_progress_bar = false")
        try:
            yield
        finally:
            self.execute(f"SET enable_progress_bar = {'true' if before else 'false'}")

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
