"""Spark, the engine for a cluster (or ``local[N]`` on one machine).

The shared SQL is written in DuckDB's dialect; each statement is translated by
:func:`lastknown.engines.spark_sql.to_spark` and run on one SparkSession
(:func:`lastknown.engines.spark_session.spark_session`: Splink's jar and functions, a
checkpoint directory). What DuckDB does with statements Spark has no equivalent for is
done here, on DataFrames:

* ``CREATE [OR REPLACE] [TEMP] TABLE t AS …``: the result is computed once and
  checkpointed (its lineage cut), then named by a temporary view — DuckDB's table is a
  snapshot, so is this; ``CREATE … VIEW v AS …`` is a temporary view re-read on use;
* ``CREATE TABLE t (col type, …)`` an empty table; ``INSERT INTO t [BY NAME] …`` the
  union with the rows inserted, checkpointed again; ``UPDATE t SET … [FROM …] WHERE …``
  the table rewritten with the changed rows (``CASE`` per column set);
* ``DROP TABLE|VIEW [IF EXISTS]``; ``CHECKPOINT`` and ``SET`` are DuckDB's own and
  do nothing here (a setting set is read back by ``current_setting``);
* ``information_schema.tables``/``.columns`` answered from the session's catalog, with
  DuckDB's type names (the master check reads them).

A schema attached with :meth:`SparkEngine.attach` is a folder of Parquet tables (one
folder each), known to Spark's catalog as a database: ``lkidx.idx_record`` is a table
over ``<folder>/idx_record``. That is the index's Parquet storage (``match/index.py``),
which the DuckDB engine reads too.

A request CSV is read by the driver (``pyarrow.csv``) in file order; DuckDB's ``rowid``
of such a table (0 for the file's first row read) is kept in a column that only SQL
naming ``rowid`` sees.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lastknown.engines.base import Engine, Numbering, SqlStep
from lastknown.errors import ConfigError, CsvReadError, EngineError

log = logging.getLogger("lastknown.engines")

#: ``local[N]`` when no master is given: N the threads asked for, else 2.
DEFAULT_LOCAL_THREADS = 2
#: The hidden column that holds DuckDB's ``rowid`` of a table read by :meth:`read_csv`.
ROWID = "lk_rowid"
_ROWID_VIEW = "{}__lk_rowid"

_NAME = r"([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)?)"
_CREATE_AS = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(TABLE|VIEW)\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s+AS\s+(.*?)\s*;?\s*$", re.S | re.I)
_CREATE_COLUMNS = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s*\((.*)\)\s*;?\s*$", re.S | re.I)
_INSERT = re.compile(rf"^\s*INSERT\s+INTO\s+{_NAME}\s*(BY\s+NAME\s+|\(([^()]*)\)\s*)?"
                     r"((?:SELECT|WITH|FROM|VALUES|\().*?)\s*;?\s*$", re.S | re.I)
_DROP = re.compile(rf"^\s*DROP\s+(TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?{_NAME}\s*;?\s*$", re.I)
_UPDATE = re.compile(r"^\s*UPDATE\s", re.I)
_NOOP = re.compile(r"^\s*(CHECKPOINT|SET|DETACH)\b", re.I)
#: DuckDB's settings (``SET x = v``, ``current_setting('x')``): none means anything to
#: Spark; the engine keeps what was set, so code that saves and restores one still can.
_SET = re.compile(r"^\s*SET\s+(\w+)\s*=\s*(.*?)\s*;?\s*$", re.S | re.I)
_CURRENT_SETTING = re.compile(r"^\s*SELECT\s+current_setting\(\s*'(\w+)'\s*\)\s*;?\s*$",
                              re.I)
#: ``COPY (query) TO 'file' (options)`` (a CSV the disclosure path writes).
_COPY_CSV = re.compile(r"^\s*COPY\s*\((.*)\)\s*TO\s*'((?:[^']|'')*)'\s*\(([^()]*)\)\s*;?\s*$",
                       re.S | re.I)
#: A numbered row's partition and place in it (``monotonically_increasing_id``), and the
#: place's bits.
_PLACE = "lk_place"
_PLACE_MASK = (1 << 33) - 1
#: Names a statement reads (after FROM or JOIN).
_READS = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\b", re.I)
_INFO_SCHEMA = re.compile(r"information_schema\.(tables|columns)", re.I)

#: Spark type names (``DataType.simpleString()`` heads) as DuckDB spells them.
_DUCK_TYPES = {
    "string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT",
    "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB", "void": "NULL",
}


def _failed(sql: str, exc: BaseException) -> EngineError:
    message = str(exc).strip()
    return EngineError(f"Spark failed on:\n{sql[:2000]}\n{message[:4000]}",
                       detail=message.splitlines()[0] if message else type(exc).__name__)


def _duck_type(data_type: Any) -> str:
    """A Spark column type as DuckDB names it (``array<string>`` → ``VARCHAR[]``)."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.ArrayType):
        return _duck_type(data_type.elementType) + "[]"
    if isinstance(data_type, T.DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if isinstance(data_type, T.StructType):
        return "STRUCT(" + ", ".join(f"{f.name} {_duck_type(f.dataType)}"
                                     for f in data_type.fields) + ")"
    if isinstance(data_type, T.MapType):
        return f"MAP({_duck_type(data_type.keyType)}, {_duck_type(data_type.valueType)})"
    simple = data_type.simpleString()
    return str(_DUCK_TYPES.get(simple, simple.upper()))


def sql_value(value: Any) -> str:
    """A Python value as a DuckDB SQL literal (the translator turns it into Spark's).

    >>> sql_value("O'Hara"), sql_value(None), sql_value(True), sql_value(3)
    ("'O''Hara'", 'NULL', 'TRUE', '3')
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def bind(sql: str, parameters: Sequence[Any] | None) -> str:
    """``sql`` with each positional ``?`` outside quotes replaced by its value's literal.

    >>> bind("SELECT '?', ? WHERE x = ?", ["a", 1])
    "SELECT '?', 'a' WHERE x = 1"
    """
    if not parameters:
        return sql
    values = iter(parameters)
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            try:
                out.append(sql_value(next(values)))
            except StopIteration:
                raise EngineError(f"too few parameters for:\n{sql[:2000]}",
                                  detail="parameters") from None
        else:
            out.append(ch)
    if next(values, _END) is not _END:
        raise EngineError(f"too many parameters for:\n{sql[:2000]}", detail="parameters")
    return "".join(out)


_END = object()


class SparkEngine(Engine):
    """Runs the shared SQL steps on a SparkSession (see the module's docstring)."""

    name = "spark"
    index_storage = "parquet"

    def __init__(self, *, master: str | None = None, conf: Mapping[str, str] | None = None,
                 checkpoint_dir: str | Path | None = None,
                 shuffle_partitions: int | None = None, threads: int | None = None,
                 memory_limit: str | None = None) -> None:
        from lastknown.engines.spark_session import spark_session

        self.master = master or f"local[{int(threads or DEFAULT_LOCAL_THREADS)}]"
        settings = dict(conf or {})
        if shuffle_partitions:
            settings["spark.sql.shuffle.partitions"] = str(int(shuffle_partitions))
        if memory_limit:
            settings.setdefault("spark.driver.memory", memory_limit)
        self._own_checkpoints: Path | None = None
        if checkpoint_dir is None:
            self._own_checkpoints = Path(tempfile.mkdtemp(prefix="lastknown-spark-"))
            checkpoint_dir = self._own_checkpoints
        self.checkpoint_dir = Path(checkpoint_dir)
        self.spark = spark_session(self.master, settings, self.checkpoint_dir)
        # a failed query is raised as EngineError with Spark's message; pyspark would also
        # log it, with the JVM's stack, as a JSON line on stderr
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        #: lineage is cut in executors' storage on one machine, in the checkpoint
        #: directory (which survives an executor) on a cluster
        self.reliable_checkpoints = not self.master.startswith("local")
        self._tables: dict[str, Any] = {}   # name → the checkpointed DataFrame behind it
        self._rowid_tables: dict[str, list[str]] = {}  # table → its visible columns
        self._schemas: dict[str, tuple[Path, bool]] = {}  # schema → (folder, writable)
        self._types: dict[str, dict[str, str]] = {}  # table → column → DuckDB type (cache)
        self._settings: dict[str, str] = {}  # DuckDB settings SET here (no effect on Spark)

    # -- translation -------------------------------------------------------------------
    def _spark_sql(self, duckdb_sql: str) -> str:
        from lastknown.engines.spark_sql import to_spark

        sql = self._rowid_rewrite(duckdb_sql)
        return to_spark(sql, columns=self._columns_named_in(sql))

    def _columns_named_in(self, sql: str) -> dict[str, dict[str, str]]:
        """Columns and DuckDB types of the tables ``sql`` reads (the translator expands
        ``* EXCLUDE`` and tells lists from strings with them)."""
        found: dict[str, dict[str, str]] = {}
        for name in set(_READS.findall(sql)):
            if name not in self._types:
                self._types[name] = dict(self._column_types(name))
            found[name] = self._types[name]
            found[self._split(name)[1]] = self._types[name]
        return found

    def _rowid_rewrite(self, sql: str) -> str:
        """Statements naming ``rowid`` read a :meth:`read_csv` table with its rowid."""
        if not self._rowid_tables or not re.search(r"\browid\b", sql):
            return sql
        for table, columns in self._rowid_tables.items():
            hidden = _ROWID_VIEW.format(table)
            sql = re.sub(rf"SELECT\s+\*\s+FROM\s+{table}\b",
                         f"SELECT {', '.join(columns)} FROM {hidden}", sql, flags=re.I)
            sql = re.sub(rf"\bFROM\s+{table}\b", f"FROM {hidden}", sql, flags=re.I)
        return re.sub(r"\browid\b", ROWID, sql)

    def _df(self, duckdb_sql: str) -> Any:
        spark_sql = self._spark_sql(duckdb_sql)
        try:
            return self.spark.sql(spark_sql)
        except Exception as exc:  # pyspark's AnalysisException, ParseException, Py4J…
            raise _failed(spark_sql, exc) from exc

    # -- tables ------------------------------------------------------------------------
    def _split(self, name: str) -> tuple[str | None, str]:
        schema, _, table = name.rpartition(".")
        return (schema or None), table

    def _store(self, name: str, df: Any, *, append: bool = False) -> None:
        """Make ``df`` the table ``name``: written to its Parquet folder when ``name`` is in
        an attached schema, else checkpointed and named by a temporary view."""
        schema, table = self._split(name)
        if schema is not None:
            folder, writable = self._attached(schema)
            if not writable:
                raise EngineError(f"schema {schema} is attached read-only: cannot write {name}",
                                  detail="read-only")
            df.write.mode("append" if append else "overwrite").option(
                "compression", "zstd").parquet(str(folder / table))
            self._catalog_table(schema, table, folder / table)
            self._types.clear()
            return
        cut = self._cut(df, name)
        self._forget(name)
        cut.createOrReplaceTempView(name)
        self._tables[name] = cut

    def _cut(self, df: Any, what: str) -> Any:
        """``df`` computed once and its lineage cut (see ``reliable_checkpoints``)."""
        try:
            return (df.checkpoint(eager=True) if self.reliable_checkpoints
                    else df.localCheckpoint(eager=True))
        except Exception as exc:
            raise _failed(f"(materialising {what})", exc) from exc

    def _forget(self, name: str) -> None:
        self._types.clear()
        old = self._tables.pop(name, None)
        if old is not None:
            old.unpersist()
        if self._rowid_tables.pop(name, None) is not None:
            self.spark.catalog.dropTempView(_ROWID_VIEW.format(name))
        self.spark.catalog.dropTempView(name)

    def _attached(self, schema: str) -> tuple[Path, bool]:
        try:
            return self._schemas[schema]
        except KeyError:
            raise EngineError(f"schema {schema} is not attached", detail=schema) from None

    def _catalog_table(self, schema: str, table: str, folder: Path) -> None:
        self.spark.sql(f"DROP TABLE IF EXISTS `{schema}`.`{table}`")
        self.spark.catalog.createTable(f"{schema}.{table}", path=str(folder.resolve()),
                                       source="parquet")

    def _table_df(self, name: str) -> Any:
        try:
            return self.spark.table(name)
        except Exception as exc:
            raise _failed(f"(table {name})", exc) from exc

    # -- numbering rows ----------------------------------------------------------------
    def run_numbered(self, step: SqlStep) -> None:
        """The step's rows numbered as ``row_number() OVER (ORDER BY …)`` numbers them, with
        no window: that window (no PARTITION BY) moves the whole table to one partition, one
        task. Here the rows are sorted across the cluster (range-partitioned), each row's
        place in its partition is taken there, the partitions' sizes are counted (a small
        job: one row per partition), and a row's number is the rows of the partitions
        before its own plus its place in it (what ``RDD.zipWithIndex`` does, kept in the
        JVM)."""
        numbering = step.numbering
        if numbering is None:
            raise EngineError(f"{step.output_table_name}: no numbering", detail="numbered")
        if step.joins_as_written:
            with self.joins_as_written():
                df = self._df(step.sql)
        else:
            df = self._df(step.sql)
        numbered, placed = self._numbered(df, numbering)
        self._store(step.output_table_name, numbered)
        placed.unpersist()

    def _sorted_with_places(self, df: Any, numbering: Numbering) -> Any:
        """``df`` sorted on ``numbering.order_by`` across partitions (ascending, NULLs last
        as DuckDB), each row's partition and place in it packed in :data:`_PLACE`
        (``monotonically_increasing_id``: partition << 33 | place)."""
        from pyspark.sql import functions as F

        keys = [F.col(f"`{c}`").asc_nulls_last() for c in numbering.order_by]
        return df.orderBy(*keys).withColumn(_PLACE, F.monotonically_increasing_id())

    def _numbered(self, df: Any, numbering: Numbering) -> tuple[Any, Any]:
        """``df`` with ``numbering.column`` first (see :meth:`run_numbered`), and the
        sorted rows it reads (computed once: unpersist them once it is stored)."""
        from pyspark.sql import functions as F

        # computed once: a place is where the sort put a row, which must not move
        # between counting the partitions and numbering their rows
        placed = self._cut(self._sorted_with_places(df, numbering), "a numbering")
        partition = F.shiftright(F.col(_PLACE), 33)
        sizes = sorted((int(p), int(n)) for p, n in
                       placed.groupBy(partition.alias("p")).count().collect())
        offsets, before = [], 0
        for p, n in sizes:
            offsets.append((p, before))
            before += n
        starts = self.spark.createDataFrame(offsets, "lk_part BIGINT, lk_start BIGINT")
        number = F.col("lk_start") + F.col(_PLACE).bitwiseAND(_PLACE_MASK) + 1
        if numbering.as_text:
            number = number.cast("string")
        keep = numbering.keep if numbering.keep is not None else tuple(df.columns)
        numbered = placed.join(F.broadcast(starts), partition == F.col("lk_part")).select(
            number.alias(numbering.column), *[F.col(f"`{c}`") for c in keep])
        return numbered, placed

    # -- statements --------------------------------------------------------------------
    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        sql = bind(sql, parameters)
        if m := _SET.match(sql):
            self._settings[m.group(1).lower()] = m.group(2).strip().strip("'")
            return
        if _NOOP.match(sql):
            return
        if m := _CREATE_AS.match(sql):
            kind, name, body = m.group(1).upper(), m.group(2), m.group(3)
            if kind == "VIEW" and self._split(name)[0] is None:
                self._forget(name)
                self._run(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS "
                          f"{self._spark_sql(body)}")
            else:
                self._store(name, self._df(body))
            return
        if m := _CREATE_COLUMNS.match(sql):
            self._store(m.group(1), self._empty(sql))
            return
        if m := _INSERT.match(sql):
            named = m.group(3)
            self._insert(m.group(1), m.group(4), by_name=bool(m.group(2)) and named is None,
                         columns=[c.strip() for c in named.split(",")] if named else None)
            return
        if m := _DROP.match(sql):
            schema, table = self._split(m.group(2))
            if schema is None:
                self._forget(table)
            else:
                self._run(f"DROP TABLE IF EXISTS `{schema}`.`{table}`")
            return
        if _UPDATE.match(sql):
            self._update(sql)
            return
        self._run(self._spark_sql(sql))

    def _run(self, spark_sql: str) -> Any:
        try:
            return self.spark.sql(spark_sql)
        except Exception as exc:
            raise _failed(spark_sql, exc) from exc

    def fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        sql = bind(sql, parameters)
        if m := _INFO_SCHEMA.search(sql):
            return self._information_schema(sql, m.group(1).lower())
        if m := _COPY_CSV.match(sql):
            return [(self._copy_to_csv(m.group(1), m.group(2).replace("''", "'"),
                                       m.group(3)),)]
        if m := _CURRENT_SETTING.match(sql):
            value = self._settings.get(m.group(1).lower())
            return [({"true": True, "false": False}.get(str(value).lower(), value),)]
        df = self._df(sql)
        try:
            return [tuple(row) for row in df.collect()]
        except Exception as exc:
            raise _failed(sql, exc) from exc

    def _empty(self, sql: str) -> Any:
        import sqlglot
        from sqlglot import exp

        create = sqlglot.parse_one(sql, read="duckdb")
        schema = create.this
        if not isinstance(schema, exp.Schema):
            raise EngineError(f"cannot read the columns of:\n{sql[:2000]}", detail="create")
        columns = [f"`{c.name}` {c.args['kind'].sql(dialect='spark')}"
                   for c in schema.expressions if isinstance(c, exp.ColumnDef)]
        return self.spark.createDataFrame([], ", ".join(columns))

    def _insert(self, name: str, body: str, *, by_name: bool,
                columns: list[str] | None = None) -> None:
        """``INSERT INTO name [BY NAME | (columns)] body``; columns left out are NULL."""
        from pyspark.sql import functions as F

        old = self._table_df(name)
        new = self._df(body)
        if columns is not None:
            if len(columns) != len(new.columns):
                raise EngineError(f"INSERT INTO {name}: {len(new.columns)} values for "
                                  f"{len(columns)} columns", detail="insert")
            new = new.toDF(*columns)
            by_name = True
        if by_name:
            new = new.select(*[F.col(f"`{c}`") if c in new.columns else F.lit(None).alias(c)
                               for c in old.columns])
        elif len(new.columns) != len(old.columns):
            raise EngineError(f"INSERT INTO {name}: {len(new.columns)} columns for "
                              f"{len(old.columns)}", detail="insert")
        new = new.select(*[F.col(f"`{n}`").cast(f.dataType).alias(f.name)
                           for n, f in zip(new.columns, old.schema.fields, strict=True)])
        if self._split(name)[0] is not None:
            self._store(name, new, append=True)
        else:
            self._store(name, old.unionByName(new))

    def _update(self, sql: str) -> None:
        """``UPDATE t SET c = v, … [FROM s] WHERE cond`` as a rewrite of ``t``.

        With ``FROM``, a row of ``t`` takes the values of one row of ``s`` meeting
        ``cond`` (DuckDB: any one of them), else keeps its own.
        """
        import sqlglot
        from sqlglot import exp

        update = sqlglot.parse_one(sql, read="duckdb")
        if not isinstance(update, exp.Update):
            raise EngineError(f"cannot read the UPDATE:\n{sql[:2000]}", detail="update")
        table = update.this.name
        alias = update.this.alias_or_name
        columns = self._table_df(table).columns
        sets = {eq.this.name: eq.expression.sql(dialect="duckdb") for eq in update.expressions}
        where = update.args.get("where")
        cond = where.this.sql(dialect="duckdb") if where is not None else "TRUE"
        source = update.args.get("from_") or update.args.get("from")
        if source is None:
            select = ", ".join(
                f"CASE WHEN {cond} THEN {sets[c]} ELSE {c} END AS {c}" if c in sets else c
                for c in columns)
            self._store(table, self._df(f"SELECT {select} FROM {table} AS {alias}"))
            return
        rid = "__lk_rid"
        self._store("__lk_update_rows", self._df(
            f"SELECT *, monotonically_increasing_id() AS {rid} FROM {table}"))
        froms = source.sql(dialect="duckdb")  # "FROM s [AS] n"
        picked = ", ".join(f"first({v}) AS __lk_set_{c}" for c, v in sets.items())
        self._store("__lk_update_hits", self._df(
            f"SELECT {alias}.{rid}, {picked} FROM __lk_update_rows AS {alias} "
            f"CROSS JOIN {froms[len('FROM '):]} WHERE {cond} GROUP BY {alias}.{rid}"))
        select = ", ".join(
            f"CASE WHEN h.{rid} IS NOT NULL THEN h.__lk_set_{c} ELSE t.{c} END AS {c}"
            if c in sets else f"t.{c}" for c in columns)
        self._store(table, self._df(
            f"SELECT {select} FROM __lk_update_rows AS t "
            f"LEFT JOIN __lk_update_hits AS h ON h.{rid} = t.{rid}"))
        self._forget("__lk_update_rows")
        self._forget("__lk_update_hits")

    def _information_schema(self, sql: str, kind: str) -> list[tuple[Any, ...]]:
        """The two questions the shared code asks the catalog: does a table exist, and
        its columns (names, DuckDB type names) in order."""
        name = re.search(r"table_name\s*=\s*'((?:[^']|'')*)'", sql)
        if name is None:
            raise EngineError(f"only lookups by table_name are answered:\n{sql[:2000]}",
                              detail="information_schema")
        table = name.group(1).replace("''", "'")
        if kind == "tables":
            return [(int(self.table_exists(table)),)]
        fields = re.search(r"SELECT\s+(.*?)\s+FROM", sql, re.S | re.I)
        wanted = [f.strip().lower() for f in (fields.group(1) if fields else "").split(",")]
        rows = []
        for column, data_type in self._column_types(table):
            by_field = {"column_name": column, "data_type": data_type}
            rows.append(tuple(by_field[f] for f in wanted))
        return rows

    def _column_types(self, table: str) -> list[tuple[str, str]]:
        if not self._known(table):
            return []
        df = self._table_df(table)
        return [(f.name, _duck_type(f.dataType)) for f in df.schema.fields]

    def _known(self, table: str) -> bool:
        try:
            return self.table_exists(table)
        except Exception:  # a name that is no table (a CTE, a function's argument)
            return False

    def table_exists(self, table_name: str) -> bool:
        schema, table = self._split(table_name)
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}" if schema else table))

    def columns(self, table_name: str) -> list[str]:
        return [name for name, _ in self._column_types(table_name)]

    # -- files -------------------------------------------------------------------------
    def register_parquet(self, table_name: str, path: str | Path, *,
                         positions: bool = False) -> None:
        from pyspark.sql import functions as F

        p = Path(path)
        reader = self.spark.read.option("mergeSchema", "true")
        if p.is_dir():
            reader = reader.option("recursiveFileLookup", "true").option(
                "pathGlobFilter", "*.parquet")
        try:
            df = reader.parquet(str(p.resolve()))
            if positions:
                # DuckDB's filename is the path as globbed: the file's path, not a URI
                df = df.select("*", F.regexp_replace(
                    F.col("_metadata.file_path"), "^file:(//)?", "").alias("lk_source_file"),
                    (F.col("_metadata.row_index") + 1).alias("lk_source_row"))
        except Exception as exc:
            raise _failed(f"(reading {p})", exc) from exc
        self._forget(table_name)
        df.createOrReplaceTempView(table_name)

    def register_arrow(self, table_name: str, data: Any) -> None:
        table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self._forget(table_name)
        self._from_arrow(table).createOrReplaceTempView(table_name)

    def _from_arrow(self, table: pa.Table) -> Any:
        # Spark reads large_string / string alike; its Arrow path wants plain strings
        fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
                  for f in table.schema]
        try:
            return self.spark.createDataFrame(table.cast(pa.schema(fields)))
        except Exception as exc:
            raise _failed("(an Arrow table)", exc) from exc

    def unregister(self, table_name: str) -> None:
        self._forget(table_name)

    def stream_arrow(self, sql: str, batch_rows: int, *,
                     alongside: bool = False) -> Iterator[pa.RecordBatch]:
        """The result collected to the driver (as Arrow), then handed out in batches: the
        callers stream a batch's rows (a package, a spreadsheet), never the master's."""
        yield from self._arrow(sql).to_batches(max_chunksize=batch_rows)

    def copy_to_parquet(self, sql: str, path: str | Path) -> None:
        """One Parquet file (the callers' contract), written by the driver."""
        import pyarrow.parquet as pq

        pq.write_table(self._arrow(sql), str(path), compression="zstd")

    def copy_to_csv(self, sql: str, path: str | Path) -> int:
        return self._copy_to_csv(sql, str(path), "HEADER, DELIMITER ','")

    def numbered(self, table: str, column: str = "_lk_rowid") -> str:
        """A :meth:`read_csv` table with its rows' positions (kept in a hidden column)."""
        columns = self._rowid_tables.get(table)
        if columns is None:
            raise EngineError(f"{table} was not read by read_csv: Spark keeps no order of "
                              "its rows", detail="numbered")
        return (f"(SELECT {ROWID} AS {column}, {', '.join(columns)} "
                f"FROM {_ROWID_VIEW.format(table)})")

    def column_types(self, table_name: str) -> dict[str, str]:
        return dict(self._column_types(table_name))

    def _copy_to_csv(self, sql: str, path: str, options: str) -> int:
        """DuckDB's ``COPY (sql) TO 'path' (HEADER, DELIMITER ',')``, as DuckDB writes it:
        a header, quotes only where needed, NULL empty and an empty string ``""``."""
        if re.sub(r"\s+", "", options).upper() not in ("HEADER,DELIMITER','",
                                                        "DELIMITER',',HEADER"):
            raise EngineError(f"COPY options not supported on Spark: ({options})",
                              detail="copy")
        table = self._arrow(sql)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(",".join(_csv_cell(n) for n in table.column_names) + "\n")
            for batch in table.to_batches(max_chunksize=50_000):
                columns = [c.to_pylist() for c in batch.columns]
                for row in zip(*columns, strict=True):
                    f.write(",".join(_csv_cell(v) for v in row) + "\n")
        return int(table.num_rows)

    def _arrow(self, sql: str) -> pa.Table:
        df = self._df(sql)
        try:
            return df.toArrow()
        except Exception as exc:
            raise _failed(sql, exc) from exc

    def read_csv(self, table_name: str, path: str | Path, *, width: int, skip: int,
                 delimiter: str, max_line_bytes: int) -> None:
        from pyarrow import csv

        names = [f"c{i}" for i in range(width)]
        invalid: list[Any] = []

        def refuse(row: Any) -> str:
            invalid.append(row)
            return "error"

        try:
            table = csv.read_csv(
                str(path),
                read_options=csv.ReadOptions(column_names=names, skip_rows=skip,
                                             block_size=max(1 << 20, 2 * max_line_bytes),
                                             encoding="utf8"),
                parse_options=csv.ParseOptions(delimiter=delimiter, quote_char='"',
                                               double_quote=True, newlines_in_values=True,
                                               invalid_row_handler=refuse),
                convert_options=csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), null_values=[""],
                    strings_can_be_null=True, quoted_strings_can_be_null=False))
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise _csv_failed(path, exc, invalid[0] if invalid else None) from exc
        table = table.append_column(ROWID, pa.array(range(table.num_rows), pa.int64()))
        self._forget(table_name)
        self._store(table_name, self._from_arrow(table))
        df = self._tables[table_name]
        df.createOrReplaceTempView(_ROWID_VIEW.format(table_name))
        df.select(*names).createOrReplaceTempView(table_name)
        self._rowid_tables[table_name] = names

    def parquet_row_count(self, path: str | Path) -> int:
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(str(path)).metadata.num_rows)
        except (OSError, pa.ArrowException) as exc:
            raise EngineError(f"cannot read the Parquet metadata of {path}: {exc}",
                              detail=str(exc)) from exc

    # -- Splink, schemas, lifetime -----------------------------------------------------
    def splink_db_api(self) -> Any:
        from splink.backends.spark import SparkAPI

        return SparkAPI(  # type: ignore[no-untyped-call]
            spark_session=self.spark, register_udfs_automatically=False)

    def splink_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The level conditions and blocking rules translated to Spark SQL (``ELSE`` is
        Splink's own word); the model keeps DuckDB's text (``match/model.py``)."""
        import copy

        from lastknown.engines.spark_sql import to_spark

        def spark(condition: str) -> str:
            if condition.strip().upper() == "ELSE":
                return condition
            return to_spark(f"SELECT {condition}")[len("SELECT "):]

        rendered = copy.deepcopy(settings)
        rendered["sql_dialect"] = "spark"
        for comparison in rendered.get("comparisons", []):
            for level in comparison.get("comparison_levels", []):
                level["sql_condition"] = spark(level["sql_condition"])
        rules = rendered.get("blocking_rules_to_generate_predictions", [])
        rendered["blocking_rules_to_generate_predictions"] = [
            spark(rule) if isinstance(rule, str)
            else {**rule, "blocking_rule": spark(rule["blocking_rule"])} for rule in rules]
        return rendered

    def attach(self, database: Path, schema: str, *, read_only: bool) -> None:
        """Open the Parquet folder ``database`` (one sub-folder per table) as database
        ``schema`` of the session's catalog."""
        folder = Path(database)
        if folder.suffix == ".duckdb":
            raise ConfigError(f"{folder} is a DuckDB index: --engine spark reads an index "
                              "built with --engine spark (Parquet); rebuild it with "
                              "`lastknown master index --engine spark`")
        if not read_only:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise ConfigError(f"index tables folder {folder} is missing; rebuild the index")
        self._run(f"DROP DATABASE IF EXISTS `{schema}` CASCADE")
        # the database's own location is scratch (dropping it deletes it), never the folder
        location = str((self.checkpoint_dir / "catalog" / f"{schema}.db").resolve())
        self._run(f"CREATE DATABASE `{schema}` LOCATION '{location.replace(chr(39), '')}'")
        self._schemas[schema] = (folder, not read_only)
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith((".", "_")):
                self._catalog_table(schema, sub.name, sub)

    def close(self) -> None:
        for name in list(self._tables):
            self._forget(name)
        for schema in self._schemas:
            try:
                self.spark.sql(f"DROP DATABASE IF EXISTS `{schema}` CASCADE")
            except Exception:  # the session may be gone already
                log.debug("could not drop database %s", schema)
        self._schemas.clear()
        self.spark.catalog.clearCache()
        if self._own_checkpoints is not None:
            shutil.rmtree(self._own_checkpoints, ignore_errors=True)


def _csv_failed(path: str | Path, exc: BaseException, row: Any) -> CsvReadError:
    """pyarrow's CSV reader's message (and its first invalid row, if any), read for what
    it says about the file."""
    message = str(exc)
    fields = re.search(r"Expected (\d+) columns, got (\d+)", message)
    line = None
    if row is not None:
        fields = None
        line = _line_of(Path(path), row.text)
    return CsvReadError(
        f"Spark's CSV reader (pyarrow) failed on {path}:\n{message[:2000]}", detail=message,
        line=line,
        fields=((row.expected_columns, row.actual_columns) if row is not None
                else (int(fields.group(1)), int(fields.group(2))) if fields else None),
        line_too_long="straddling" in message.lower(),
        not_utf8="utf8" in message.lower() or "utf-8" in message.lower())


def _line_of(path: Path, text: str) -> int | None:
    """The 1-based line of the file where the row ``text`` starts (None: not found)."""
    data = path.read_bytes()
    at = data.find(text.encode("utf-8"))
    return data.count(b"\n", 0, at) + 1 if at >= 0 else None


def _csv_cell(value: Any) -> str:
    """One CSV field as DuckDB's COPY writes it.

    >>> [_csv_cell(v) for v in (None, "", 'a"b', "x,y", 1.5, True, 3, "#613")]
    ['', '""', '"a""b"', '"x,y"', '1.5', 'true', '3', '"#613"']

    DuckDB also quotes a field holding ``#`` (a unit such as ``#613``), its comment
    character.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if isinstance(value, (date, datetime)) else str(value)
    if text == "" or any(ch in text for ch in ',"\n\r#'):
        return '"' + text.replace('"', '""') + '"'
    return text
