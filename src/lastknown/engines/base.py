"""The engine interface: the shared steps written once, a few hooks per engine."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Numbering:
    """A step's rows numbered 1, 2, … in ``order_by`` order (ascending, NULLs last), the
    number (BIGINT; ``as_text``: VARCHAR) in a new first column ``column``, followed by the
    step's columns (``keep``: only these, in this order; an ``order_by`` column may be
    left out).

    What ``row_number() OVER (ORDER BY …)`` gives, which is how DuckDB numbers
    (:meth:`sql`, a parallel sort); a window without ``PARTITION BY`` would put a whole
    table in one Spark partition, so :meth:`Engine.run_numbered` lets an engine number its
    own way. Rows that tie on ``order_by`` get their numbers in no fixed order on any
    engine.
    """

    column: str
    order_by: tuple[str, ...]
    keep: tuple[str, ...] | None = None
    as_text: bool = False

    def sql(self, sql: str) -> str:
        """``sql``'s rows numbered by a window: one portable query.

        >>> Numbering(column="n", order_by=("a", "b"), keep=("a",)).sql("SELECT a, b FROM t")
        'SELECT row_number() OVER (ORDER BY a, b) AS n, a FROM (SELECT a, b FROM t) AS lk_numbered'
        """
        number = f"row_number() OVER (ORDER BY {', '.join(self.order_by)})"
        if self.as_text:
            number = f"CAST({number} AS VARCHAR)"
        columns = "*" if self.keep is None else ", ".join(self.keep)
        return f"SELECT {number} AS {self.column}, {columns} FROM ({sql}) AS lk_numbered"


@dataclass(frozen=True, kw_only=True)
class SqlStep:
    """One SQL statement whose result becomes ``output_table_name``.

    ``materialise`` decides between a table (computed once, stored) and a view.
    ``joins_as_written`` asks the engine to join the tables in the order the SQL names
    them (see :meth:`Engine.joins_as_written`): a plan hint, never a change of result.
    ``numbering`` adds a column numbering the rows (:class:`Numbering`; a table, always).
    """

    sql: str
    output_table_name: str
    materialise: bool = True
    joins_as_written: bool = False
    numbering: Numbering | None = None

    def portable_sql(self) -> str:
        """The step's query, its numbering (if any) written as a window."""
        return self.sql if self.numbering is None else self.numbering.sql(self.sql)


class Engine(ABC):
    """What every engine provides. Subclasses fill in the hooks below."""

    name: str = "abstract"
    #: How this engine stores a master index (``match/index.py``): ``"duckdb"``, one
    #: database file, or ``"parquet"``, a folder of Parquet tables. Every engine reads
    #: ``"parquet"``; only DuckDB reads ``"duckdb"``.
    index_storage: str = "duckdb"

    # -- hooks -------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        """Run one statement for its effect."""

    @abstractmethod
    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query whose result is small (counts, summaries) and return its rows."""

    @abstractmethod
    def register_parquet(self, table_name: str, path: str | Path, *,
                         positions: bool = False) -> None:
        """Expose a Parquet file or folder of Parquet files as a view.

        ``positions`` adds ``lk_source_file`` and ``lk_source_row`` (1-based row within
        that file), so a report can point at a row.
        """

    @abstractmethod
    def register_arrow(self, table_name: str, data: Any) -> None:
        """Expose an Arrow table / record batch reader as a view."""

    @abstractmethod
    def copy_to_parquet(self, sql: str, path: str | Path) -> None:
        """Write the result of ``sql`` to a Parquet file without fetching it into Python."""

    def copy_to_csv(self, sql: str, path: str | Path) -> int:
        """Write the result of ``sql`` to a UTF-8 CSV file with a header row (comma, ``"``
        quotes where needed); return the rows written."""
        from lastknown.errors import ConfigError

        raise ConfigError(f"writing CSV files needs --engine duckdb (got {self.name})")

    @abstractmethod
    def unregister(self, table_name: str) -> None:
        """Drop a view made by :meth:`register_arrow`."""

    @abstractmethod
    def stream_arrow(self, sql: str, batch_rows: int, *,
                     alongside: bool = False) -> Iterator[Any]:
        """The result of ``sql`` as pyarrow RecordBatches of at most ``batch_rows`` rows.

        ``alongside`` lets the caller run other statements on this engine before the
        stream is drained (the stream then cannot see views made by
        :meth:`register_arrow`).
        """

    @abstractmethod
    def read_csv(self, table_name: str, path: str | Path, *, width: int, skip: int,
                 delimiter: str, max_line_bytes: int) -> None:
        """Read a UTF-8 CSV into ``table_name`` as text columns ``c0`` … ``c{width-1}``
        in file order (no header handling: rows before ``skip`` are left out, quotes and
        their escape are ``"``). Raises :class:`~lastknown.errors.CsvReadError`."""

    @abstractmethod
    def parquet_row_count(self, path: str | Path) -> int:
        """The rows a Parquet file declares in its metadata (nothing decoded)."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources."""

    @contextmanager
    def joins_as_written(self) -> Iterator[None]:
        """Run the enclosed statements with their joins in the order written.

        For a query whose best order the engine's optimiser misjudges. The default does
        nothing: the optimiser decides.
        """
        yield

    @contextmanager
    def progress_off(self) -> Iterator[None]:
        """No progress display of the engine's own on stdout in the enclosed statements. The
        default does nothing: an engine that never prints one."""
        yield

    @contextmanager
    def insertion_order_kept(self) -> Iterator[None]:
        """Tables created in the enclosed statements keep their rows in the order read
        (a file's order). The default does nothing: an engine that always keeps it."""
        yield

    def numbered(self, table: str, column: str = "_lk_rowid") -> str:
        """``table`` as a parenthesised relation with one more column, ``column``: each
        row's 0-based position in the order it was read (a table made by :meth:`read_csv`,
        or inside :meth:`insertion_order_kept`). SQL cannot ask for a row's position
        portably (DuckDB's ``rowid``); each engine answers it its own way."""
        from lastknown.errors import ConfigError

        raise ConfigError(f"reading a request file's rows in order needs --engine duckdb "
                          f"(got {self.name})")

    def column_types(self, table_name: str) -> dict[str, str]:
        """Each column of ``table_name`` and its type, in this engine's spelling, in order."""
        rows = self.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table_name])
        return {str(name): str(kind) for name, kind in rows}

    def splink_db_api(self) -> Any:
        """The Splink database API object that runs Splink's SQL on this engine."""
        from lastknown.errors import ConfigError

        raise ConfigError(f"the Splink scoring step needs --engine duckdb (got {self.name})")

    def splink_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Splink settings whose SQL (level conditions, blocking rules) is DuckDB's, as the
        model stores it, written for this engine's Splink database API. DuckDB: as they
        are."""
        return settings

    def attach(self, database: Path, schema: str, *, read_only: bool) -> None:
        """Open the persisted database ``database`` as schema ``schema`` (replacing one
        attached before under that name): a database file, or a folder of Parquet tables
        (one sub-folder of ``*.parquet`` files per table, the index's ``"parquet"``
        storage)."""
        from lastknown.errors import ConfigError

        raise ConfigError(f"the Splink scoring step needs --engine duckdb (got {self.name})")

    def run_numbered(self, step: SqlStep) -> None:
        """Create the table of a step with a :class:`Numbering`. The default runs the
        window query (:meth:`SqlStep.portable_sql`): DuckDB sorts in parallel."""
        self.run_steps([replace(step, sql=step.portable_sql(), numbering=None,
                                materialise=True)])

    # -- shared steps ------------------------------------------------------
    def run_steps(self, steps: Iterable[SqlStep]) -> None:
        """Run a pipeline of SQL steps in order, each creating its output table.

        At DEBUG level the ``lastknown.engines`` logger says each step's output table, wall
        seconds and this process's CPU seconds (all threads), for profiling a run."""
        for step in steps:
            wall, cpu = time.perf_counter(), time.process_time()
            if step.numbering is not None:
                self.run_numbered(step)
            else:
                kind = "TABLE" if step.materialise else "VIEW"
                sql = f"CREATE OR REPLACE {kind} {step.output_table_name} AS {step.sql}"
                if step.joins_as_written:
                    with self.joins_as_written():
                        self.execute(sql)
                else:
                    self.execute(sql)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("step %s: %.3f s wall, %.3f s CPU", step.output_table_name,
                          time.perf_counter() - wall, time.process_time() - cpu)

    def table_exists(self, table_name: str) -> bool:
        rows = self.fetchall(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table_name]
        )
        return bool(rows[0][0])

    def count(self, table_name: str) -> int:
        return int(self.fetchall(f"SELECT count(*) FROM {table_name}")[0][0])

    def columns(self, table_name: str) -> list[str]:
        rows = self.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table_name],
        )
        return [str(r[0]) for r in rows]

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
