"""Batch ids are unique in the ledger regardless of case and surrounding spaces.

Revision ID: 0002_batch_id_nocase
Revises: 0001_ledger
Create Date: 2026-11-30

The application compares batch ids by :func:`lastknown.request.batch.batch_key`
(``strip().casefold()``); 0001's unique constraint on ``batch_id`` compares them
exactly, so a second writer that skipped the application's check could record ``b-1``
beside ``B-1``. This adds a unique index on ``lower(trim(batch_id))`` (the SQL both
SQLite and PostgreSQL evaluate alike for ASCII ids). A ledger that already holds two such
ids cannot take the index and is refused with their names: the ledger is permanent, so
nothing here rewrites it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lastknown.errors import LedgerError

revision = "0002_batch_id_nocase"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

#: As in ``models.BATCH_ID_KEY_INDEX`` / ``models.batch_id_key`` (written out here, as
#: 0001 writes out its tables, so this revision never changes with the models;
#: tests/test_ledger_schema.py checks that the two agree).
INDEX = "ux_ledger_batches_batch_id_key"


def _key(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    return sa.func.lower(sa.func.trim(column))


def upgrade() -> None:
    batches = sa.table("ledger_batches", sa.column("batch_id", sa.String))
    key = _key(batches.c.batch_id)
    clashes = op.get_bind().execute(
        sa.select(key, sa.func.count()).group_by(key).having(sa.func.count() > 1)
        .order_by(key).limit(5)).all()
    if clashes:
        names = ", ".join(repr(str(row[0])) for row in clashes)
        raise LedgerError(
            f"the ledger already holds batch ids that differ only in case or spaces ({names}); "
            "this version records one batch per id regardless of case and cannot add that "
            "rule to this ledger: keep it with the lastknown version that wrote it")
    op.create_index(INDEX, "ledger_batches", [_key(sa.column("batch_id"))], unique=True)


def downgrade() -> None:
    raise RuntimeError("the ledger is permanent (26 U.S.C. 6103(p)(3)(A)); it is never "
                       "downgraded")
