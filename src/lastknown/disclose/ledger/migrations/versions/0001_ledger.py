"""Create the hash-chained ledger: entries, batches, disclosures, audit events.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-01-01

UPDATE, DELETE and TRUNCATE on every ledger table are refused by triggers on
both SQLite and PostgreSQL: the ledger is append-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("ledger_entries", "ledger_batches", "ledger_disclosures", "ledger_audit_events")
_TZ = sa.DateTime(timezone=True)


def _entry_ref() -> sa.Column[int]:
    return sa.Column("entry_seq", sa.BigInteger, sa.ForeignKey("ledger_entries.seq"),
                     primary_key=True, autoincrement=False)


def _create_tables() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "ledger_batches",
        _entry_ref(),
        sa.Column("batch_id", sa.String(200), nullable=False, unique=True),
        sa.Column("agency", sa.String(300), nullable=False, index=True),
        sa.Column("requesting_official", sa.String(300), nullable=False),
        sa.Column("official_title", sa.String(300), nullable=False),
        sa.Column("certified", sa.Boolean, nullable=False),
        sa.Column("certification", sa.Text, nullable=False),
        sa.Column("statutes", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source_file", sa.String(500), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in (
            "rows_total", "rows_valid", "rows_rejected", "rows_disclosed", "rows_unmatched")),
        sa.Column("rejections_by_reason", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ, nullable=False, index=True),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.Column("package", sa.String(500), nullable=False),
    )
    op.create_table(
        "ledger_disclosures",
        _entry_ref(),
        sa.Column("batch_id", sa.String(200), nullable=False, index=True),
        sa.Column("request_row_id", sa.String(200), nullable=False),
        sa.Column("tin", sa.String(9), nullable=False, index=True),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("address_tax_year", sa.Integer, nullable=False),
        sa.Column("address_sha256", sa.String(64), nullable=False),
        sa.Column("legal_authority", sa.String(300), nullable=False),
        sa.Column("request_statute", sa.String(300), nullable=True),
        sa.Column("recipient", sa.String(300), nullable=False, index=True),
        sa.Column("disclosed_at", _TZ, nullable=False, index=True),
    )
    op.create_table(
        "ledger_audit_events",
        _entry_ref(),
        sa.Column("event_time", _TZ, nullable=False, index=True),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.Column("object", sa.String(500), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def _refuse_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION lastknown_ledger_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'lastknown ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP; "
            "END $$"
        )
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "
                       f"{table} FOR EACH ROW EXECUTE FUNCTION lastknown_ledger_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION lastknown_ledger_append_only()")
        return
    for table in TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'lastknown ledger table {table} is "
                       f"append-only: {action} refused'); END")


def upgrade() -> None:
    _create_tables()
    _refuse_changes()


def downgrade() -> None:
    raise RuntimeError("the ledger is permanent (26 U.S.C. 6103(p)(3)(A)); it is never "
                       "downgraded")
