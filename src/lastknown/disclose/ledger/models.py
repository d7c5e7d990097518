"""The ledger's tables (SQLAlchemy Core), as created by the Alembic migrations.

``ledger_entries`` is the hash chain. ``ledger_batches``, ``ledger_disclosures``
and ``ledger_audit_events`` are the typed, queryable form of the same records:
each row references its entry by ``entry_seq`` and its columns are exactly the
keys of that entry's payload (see :mod:`.chain`), so verification can prove the
typed rows say what the chain says.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

entries = Table(
    "ledger_entries", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)


def _entry_ref() -> Column[int]:
    return Column("entry_seq", BigInteger, ForeignKey("ledger_entries.seq"), primary_key=True,
                  autoincrement=False)


batches = Table(
    "ledger_batches", metadata,
    _entry_ref(),
    Column("batch_id", String(200), nullable=False, unique=True),
    Column("agency", String(300), nullable=False, index=True),
    Column("requesting_official", String(300), nullable=False),
    Column("official_title", String(300), nullable=False),
    Column("certified", Boolean, nullable=False),
    Column("certification", Text, nullable=False),
    Column("statutes", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("source_file", String(500), nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("rows_total", BigInteger, nullable=False),
    Column("rows_valid", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    Column("rows_disclosed", BigInteger, nullable=False),
    Column("rows_unmatched", BigInteger, nullable=False),
    Column("rejections_by_reason", Text, nullable=False),
    Column("policy", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False, index=True),
    Column("operator", String(200), nullable=False),
    Column("origin", String(300), nullable=False),
    Column("package", String(500), nullable=False),
)

disclosures = Table(
    "ledger_disclosures", metadata,
    _entry_ref(),
    Column("batch_id", String(200), nullable=False, index=True),
    Column("request_row_id", String(200), nullable=False),
    Column("tin", String(9), nullable=False, index=True),
    Column("fields", Text, nullable=False),
    Column("address_tax_year", Integer, nullable=False),
    Column("address_sha256", String(64), nullable=False),
    Column("legal_authority", String(300), nullable=False),
    Column("request_statute", String(300), nullable=True),
    Column("recipient", String(300), nullable=False, index=True),
    Column("disclosed_at", DateTime(timezone=True), nullable=False, index=True),
)

audit_events = Table(
    "ledger_audit_events", metadata,
    _entry_ref(),
    Column("event_time", DateTime(timezone=True), nullable=False, index=True),
    Column("user_name", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("origin", String(300), nullable=False),
    Column("object", String(500), nullable=False),
    Column("detail", Text, nullable=False),
)

#: Batch ids are unique compared as :func:`lastknown.request.batch.batch_key` compares
#: them, as far as SQL can say it alike on SQLite and PostgreSQL (migration 0002).
BATCH_ID_KEY_INDEX = "ux_ledger_batches_batch_id_key"


def batch_id_key(batch_id: ColumnElement[str]) -> ColumnElement[str]:
    """The SQL form of :func:`lastknown.request.batch.batch_key`: ``lower(trim(batch_id))``.
    """
    return func.lower(func.trim(batch_id))


Index(BATCH_ID_KEY_INDEX, batch_id_key(batches.c.batch_id), unique=True)

TYPED_TABLES = {"batch": batches, "disclosure": disclosures, "audit": audit_events}
LEDGER_TABLES = ("ledger_entries", "ledger_batches", "ledger_disclosures",
                 "ledger_audit_events")
