"""The ledger's schema is written three times; they must agree.

``disclose/ledger/models.py`` (what the code reads and writes), the Alembic migrations
(what a database really has) and ``chain.py``'s column lists (what each entry's hash
covers). A column added to one and not the others would be unhashed, unwritten or
missing on a migrated database.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import models
from lastknown.disclose.ledger.chain import COLUMNS_BY_KIND
from test_ledger_fixtures import BACKENDS, ledger_at

PYTHON_TYPE = {"str": str, "int": int, "bool": bool, "time": datetime, "json": str}


def _described(columns: list[tuple[str, type, bool, bool]]) -> dict[str, tuple[type, bool, bool]]:
    return {name: (kind, nullable, key) for name, kind, nullable, key in columns}


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_build_exactly_the_models(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        inspector = sa.inspect(ledger.engine)
        migrated = set(inspector.get_table_names()) - {"alembic_version"}
        assert migrated == set(models.metadata.tables) == set(models.LEDGER_TABLES)
        for table in models.metadata.sorted_tables:
            keys = set(inspector.get_pk_constraint(table.name)["constrained_columns"])
            database = _described([
                (c["name"], c["type"].python_type, c["nullable"] and c["name"] not in keys,
                 c["name"] in keys) for c in inspector.get_columns(table.name)])
            model = _described([(c.name, c.type.python_type, bool(c.nullable), c.primary_key)
                                for c in table.columns])
            assert database == model, table.name


def test_every_typed_column_is_in_the_hash_chain() -> None:
    assert set(COLUMNS_BY_KIND) == set(models.TYPED_TABLES)
    for kind, table in models.TYPED_TABLES.items():
        typed = {c.name: c.type.python_type for c in table.columns if c.name != "entry_seq"}
        hashed = {name: PYTHON_TYPE[spelling] for name, spelling in COLUMNS_BY_KIND[kind].items()}
        assert typed == hashed, kind
