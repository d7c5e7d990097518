"""Record the SQL a DuckDB run sends, with each statement's inputs, and replay it on Spark.

:class:`Recorder` wraps a DuckDB run (``synth`` → ``master index`` → ``process``): each
list of SqlSteps, each ``CREATE TABLE … AS``, each ``SELECT`` fetched and the query of
each ``COPY (…) TO`` becomes a :class:`Case` holding the input tables as they were just
before it ran (Arrow, with DuckDB's column types) and what DuckDB produced. :func:`replay`
runs a case's SQL translated by :func:`lastknown.engines.spark_sql.to_spark` on Spark,
from the same inputs, and :func:`rows` brings both results to one comparable form.
Statements that are not queries (DDL, INSERT, UPDATE, SET, ATTACH ...) are counted as
*engine hooks*, not replayed. A test helper module, not a test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from lastknown.engines.base import Engine, SqlStep
from lastknown.engines.duckdb import DuckDBEngine
from lastknown.engines.spark_sql import _LkDuckDB, to_spark

_CREATE_AS = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?TABLE\s+"
                        r"([\w.]+)\s+AS\s+(.*)$", re.IGNORECASE | re.DOTALL)
_NUMBERED = re.compile(r"\(SELECT rowid AS (\w+), \* FROM (\w+)\)", re.IGNORECASE)
_COPY = re.compile(r"^\s*COPY\s*\((.*)\)\s*TO\s+'[^']*'\s*\([^)]*\)\s*$",
                   re.IGNORECASE | re.DOTALL)


@dataclass
class Table:
    arrow: pa.Table
    types: dict[str, str]

    @property
    def digest(self) -> str:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.arrow.schema) as writer:
            writer.write_table(self.arrow)
        return hashlib.sha1(sink.getvalue().to_pybytes()).hexdigest()


@dataclass
class Case:
    """One replayable unit: ``steps`` run in order; ``outputs`` are DuckDB's results."""

    name: str
    kind: str  # steps | create | select
    steps: list[SqlStep]
    inputs: dict[str, Table] = field(default_factory=dict)
    outputs: dict[str, Table] = field(default_factory=dict)


def _referenced(sql: str) -> set[str]:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        tree = sqlglot.parse_one(sql, read=_LkDuckDB)
    finally:
        sys.setrecursionlimit(limit)
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = set()
    for t in tree.find_all(exp.Table):
        if not t.name or isinstance(t.this, exp.Anonymous | exp.Func):
            continue
        name = ".".join(p for p in (t.db, t.name) if p).lower()
        if name not in ctes:
            out.add(name)
    return out


class Recorder:
    """Collects :class:`Case` s from a DuckDB run (patching the engine's methods)."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.hooks: list[str] = []
        self._depth = 0

    def _snapshot(self, engine: DuckDBEngine, name: str) -> Table:
        arrow = engine.con.sql(f"SELECT * FROM {name}").to_arrow_table()
        types = {str(r[0]): str(r[1]) for r in
                 engine.con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()}
        return Table(arrow=arrow, types=types)

    def _inputs(self, engine: DuckDBEngine, steps: list[SqlStep]) -> dict[str, Table]:
        made: set[str] = set()
        inputs: dict[str, Table] = {}
        for step in steps:
            for name in _referenced(step.sql) - made:
                if name not in inputs:
                    inputs[name] = self._snapshot(engine, name)
            made.add(step.output_table_name.lower())
        return inputs

    def _case(self, engine: DuckDBEngine, name: str, kind: str, steps: list[SqlStep],
              run: Any) -> Any:
        try:
            inputs = self._inputs(engine, steps)
        except Warning:
            raise
        except Exception:  # noqa: BLE001 - a table function or a Splink table: not replayable
            self.hooks.append(f"{kind}: {name} (inputs unreadable)")
            return run()
        result = run()
        case = Case(name=name, kind=kind, steps=steps, inputs=inputs)
        for step in steps:
            case.outputs[step.output_table_name.lower()] = self._snapshot(
                engine, step.output_table_name)
        self.cases.append(case)
        return result

    @contextmanager
    def patched(self) -> Iterator[Recorder]:
        import pytest

        recorder = self
        run_steps, execute, fetchall = Engine.run_steps, DuckDBEngine.execute, \
            DuckDBEngine.fetchall

        def rec_run_steps(self: Engine, steps: Any) -> None:
            steps = list(steps)
            if not isinstance(self, DuckDBEngine) or recorder._depth:
                return run_steps(self, steps)
            recorder._depth += 1
            try:
                name = "+".join(s.output_table_name for s in steps)
                recorder._case(self, name, "steps", steps, lambda: run_steps(self, steps))
            finally:
                recorder._depth -= 1
            return None

        def rec_execute(self: DuckDBEngine, sql: str, parameters: Any = None) -> None:
            if recorder._depth:
                return execute(self, sql, parameters)
            found = _CREATE_AS.match(sql)
            if found and not parameters:
                step = SqlStep(sql=found.group(2), output_table_name=found.group(1))
                recorder._depth += 1
                try:
                    return recorder._case(self, found.group(1), "create", [step],
                                          lambda: execute(self, sql, parameters))
                finally:
                    recorder._depth -= 1
            recorder.hooks.append(" ".join(sql.split())[:80])
            return execute(self, sql, parameters)

        def rec_fetchall(self: DuckDBEngine, sql: str, parameters: Any = None) -> Any:
            if recorder._depth:
                return fetchall(self, sql, parameters)
            query = sql
            copied = _COPY.match(sql)
            if copied:
                query = copied.group(1)
            if parameters or not re.match(r"^\s*(SELECT|WITH)\b", query, re.IGNORECASE) or \
                    "__splink__" in query or "information_schema" in query.lower() or \
                    "current_setting" in query or "rowid" in query:
                recorder.hooks.append(" ".join(sql.split())[:80])
                return fetchall(self, sql, parameters)
            recorder._depth += 1
            try:
                out = f"lk_q{len(recorder.cases)}"
                step = SqlStep(sql=query, output_table_name=out)

                def run() -> Any:
                    result = fetchall(self, sql, parameters)
                    self.con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS {query}")
                    return result

                result = recorder._case(self, ("copy " if copied else "")
                                        + " ".join(query.split())[:60], "select", [step], run)
                self.con.execute(f"DROP TABLE IF EXISTS {out}")
                return result
            finally:
                recorder._depth -= 1

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Engine, "run_steps", rec_run_steps)
            patch.setattr(DuckDBEngine, "execute", rec_execute)
            patch.setattr(DuckDBEngine, "fetchall", rec_fetchall)
            yield self


def spark_name(name: str) -> str:
    """A Spark temp view's name for a DuckDB table name (``lkidx.t`` → ``lkidx__t``)."""
    return name.lower().replace(".", "__")


class SparkReplayer:
    """Runs cases on one Spark session; input views are made once per distinct content."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self._views: dict[str, str] = {}

    def _view(self, name: str, table: Table) -> None:
        digest = table.digest
        if self._views.get(name) == digest:
            return
        arrow = table.arrow
        # Spark has no unsigned integers: DuckDB's UBIGINT etc. arrive as signed
        fields = [pa.field(f.name, pa.int64()) if pa.types.is_unsigned_integer(f.type) else f
                  for f in arrow.schema]
        arrow = arrow.cast(pa.schema(fields))
        frame = self.spark.createDataFrame(arrow) if arrow.num_rows else \
            self.spark.createDataFrame([], self._schema(arrow))
        frame.createOrReplaceTempView(spark_name(name))
        self._views[name] = digest

    def _schema(self, arrow: pa.Table) -> Any:
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(arrow.schema)

    def _numbered(self, sql: str, case: Case) -> str:
        """DuckDB's ``Engine.numbered`` (rowid) as a Spark engine answers it: the rows'
        positions carried as a column (here from the order DuckDB returned the table)."""
        def view(found: re.Match[str]) -> str:
            column, table = found.group(1), found.group(2)
            name = f"{table}__numbered"
            source = case.inputs[table.lower()]
            numbered = source.arrow.append_column(
                column, pa.array(range(source.arrow.num_rows), pa.int64()))
            self._view(name, Table(arrow=numbered, types={**source.types, column: "BIGINT"}))
            return spark_name(name)

        return _NUMBERED.sub(view, sql)

    def replay(self, case: Case) -> dict[str, Any]:
        """Each output of ``case`` computed on Spark (a DataFrame per output name)."""
        for name, table in case.inputs.items():
            self._view(name, table)
        columns = {spark_name(n): t.types for n, t in case.inputs.items()}
        columns.update({n.lower(): t.types for n, t in case.inputs.items()})
        tables = {n: spark_name(n) for n in case.inputs if "." in n}
        frames: dict[str, Any] = {}
        for step in case.steps:
            out = step.output_table_name.lower()
            sql = to_spark(self._numbered(step.portable_sql(), case), columns=columns,
                           tables=tables)
            frame = self.spark.sql(sql).localCheckpoint()
            frame.createOrReplaceTempView(spark_name(out))
            self._views.pop(out, None)
            if "." in out:
                tables[out] = spark_name(out)
            columns[spark_name(out)] = columns[out] = case.outputs[out].types
            frames[out] = frame
        return frames


# -- comparing rows ----------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float | Decimal):
        f = float(value)
        if math.isnan(f):
            return "nan"
        if f == int(f) and abs(f) < 2**53:
            return int(f)
        return round(f, 9)
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return tuple(_norm(v) for v in value.values())
    if hasattr(value, "asDict"):
        return tuple(_norm(v) for v in value)
    if isinstance(value, list | tuple):
        return tuple(_norm(v) for v in value)
    return value


def duckdb_rows(table: Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(_norm(v) for v in row.values()) for row in table.arrow.to_pylist()),
                  key=repr)


def spark_rows(frame: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(_norm(v) for v in row) for row in frame.collect()), key=repr)


def close(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Rows equal, floats to 1e-9 (relative)."""
    if len(a) != len(b):
        return False
    return all(_close(x, y) for x, y in zip(a, b, strict=True))


def _close(x: Any, y: Any) -> bool:
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(_close(p, q) for p, q in zip(x, y, strict=True))
    if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    return bool(x == y)
