"""The ledger schema is written three times (models, migration, chain columns): they agree."""

from __future__ import annotations

import re
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import models, open_ledger
from lastknown.disclose.ledger.chain import COLUMNS_BY_KIND, ColumnKind
from test_ledger_fixtures import BACKENDS, PG_URL, ledger_at, pg_problem

#: The SQLAlchemy types a payload kind may be stored as.
STORED_AS: dict[ColumnKind, tuple[type[Any], ...]] = {
    "str": (sa.String,), "int": (sa.Integer,), "bool": (sa.Boolean,),
    "time": (sa.DateTime,), "json": (sa.Text,),
}


def _indexes(engine: sa.Engine, inspector: sa.Inspector, table: str,
             schema: str | None) -> set[tuple[tuple[str, ...], bool]]:
    """(columns or expressions, unique) of each index; SQLAlchemy cannot reflect SQLite's
    expression indexes, so those are read from their SQL (whitespace and case aside)."""
    reflected = inspector.get_indexes(table, schema)
    found = {(tuple(i.get("expressions") or i["column_names"]), bool(i["unique"]))
             for i in reflected}
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = "
                                        "'index' AND tbl_name = :t AND sql IS NOT NULL"),
                                {"t": table}).all()
        known = {i["name"] for i in reflected}
        for name, sql in rows:
            if name not in known:
                expression = re.sub(r"\s+", "", sql.split(" ON ", 1)[1].split("(", 1)[1])[:-1]
                found.add(((expression.lower(),), sql.upper().startswith("CREATE UNIQUE")))
    return found


def _describe(engine: sa.Engine, schema: str | None) -> dict[str, dict[str, Any]]:
    """Columns (type, nullability, key), foreign keys, unique constraints and indexes
    (expression indexes included)."""
    with warnings.catch_warnings():  # read from the SQL instead, see _indexes
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based",
                                sa.exc.SAWarning)
        return _describe_tables(engine, schema)


def _describe_tables(engine: sa.Engine, schema: str | None) -> dict[str, dict[str, Any]]:
    inspector = sa.inspect(engine)
    found: dict[str, dict[str, Any]] = {}
    for table in models.LEDGER_TABLES:
        pk = set(inspector.get_pk_constraint(table, schema)["constrained_columns"])
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table,
                                                                                      schema)}
        indexes = _indexes(engine, inspector, table, schema)
        found[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c["name"] in pk)
                        for c in inspector.get_columns(table, schema)],
            "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]))
                                   for f in inspector.get_foreign_keys(table, schema)),
            # a UNIQUE column may show as a constraint or as a unique index: either will do
            "unique": sorted(uniques | {cols for cols, unique in indexes if unique}),
            "indexes": sorted(cols for cols, unique in indexes if not unique),
        }
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_creates_exactly_the_tables_the_models_describe(backend: str,
                                                                      tmp_path: Path) -> None:
    if backend == "sqlite":
        migrated = open_ledger(tmp_path / "migrated.sqlite", create=True)
        modelled = sa.create_engine(f"sqlite:///{tmp_path / 'modelled.sqlite'}")
        models.metadata.create_all(modelled)
        try:
            assert _describe(migrated.engine, None) == _describe(modelled, None)
        finally:
            migrated.close()
            modelled.dispose()
        return
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    a, b = (f"lk_schema_{uuid.uuid4().hex[:10]}" for _ in range(2))
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {a}"))
        conn.execute(sa.text(f"CREATE SCHEMA {b}"))
    migrated = open_ledger(PG_URL, create=True, connect_args={"options": f"-csearch_path={a}"})
    modelled = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={b}"})
    try:
        models.metadata.create_all(modelled)
        assert _describe(admin, a) == _describe(admin, b)
    finally:
        migrated.close()
        modelled.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {a} CASCADE"))
            conn.execute(sa.text(f"DROP SCHEMA {b} CASCADE"))
        admin.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_description_sees_the_case_insensitive_batch_id_index(backend: str,
                                                                 tmp_path: Path) -> None:
    """The comparison above would be blind to a missing expression index if the
    description could not see one: it does, on both databases."""
    with ledger_at(backend, tmp_path) as ledger:
        with ledger.connect() as conn:
            schema = (conn.execute(sa.text("SELECT current_schema()")).scalar_one()
                      if backend == "postgres" else None)
        unique = _describe(ledger.engine, schema)["ledger_batches"]["unique"]
    expressions = [" ".join(cols).lower().replace(" ", "") for cols in unique
                   if cols != ("batch_id",)]
    assert len(expressions) == 1 and "lower(" in expressions[0], unique
    assert "trim(" in expressions[0] and "batch_id" in expressions[0], unique


@pytest.mark.parametrize("kind", sorted(COLUMNS_BY_KIND))
def test_each_typed_table_has_exactly_the_payload_columns_of_its_chain_kind(kind: str) -> None:
    table = models.TYPED_TABLES[kind]  # type: ignore[index]
    chain = COLUMNS_BY_KIND[kind]  # type: ignore[index]
    columns = [c for c in table.columns if c.name != "entry_seq"]
    assert [c.name for c in columns] == list(chain)
    for column in columns:
        assert isinstance(column.type, STORED_AS[chain[column.name]]), (
            f"{table.name}.{column.name} is {column.type}, the chain says {chain[column.name]}")
    assert [c.name for c in table.primary_key] == ["entry_seq"]
    assert {f.target_fullname for f in table.c.entry_seq.foreign_keys} == {"ledger_entries.seq"}


def test_the_ledger_tables_are_the_model_tables() -> None:
    assert set(models.LEDGER_TABLES) == set(models.metadata.tables)
    assert set(models.LEDGER_TABLES) == {models.entries.name} | {
        t.name for t in models.TYPED_TABLES.values()}
