"""Create the app tables: agencies, users, api_tokens, sessions, access_log, admin_changes.

Revision ID: 0001_app
Revises:
Create Date: 2026-11-30

Written out in full (not ``metadata.create_all``) so this revision keeps creating the
same tables when ``service/db.py`` changes later; a test checks they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_app"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _ref(name: str, table: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     sa.ForeignKey(f"{table}.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agencies", _id(),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_key", sa.String(300), nullable=False, unique=True),
        sa.Column("statutes", sa.Text, nullable=False),
        sa.Column("max_rows_per_batch", sa.Integer),
        sa.Column("max_rows_per_official_per_period", sa.Integer),
        sa.Column("period_days", sa.Integer),
        sa.Column("created_at", _TZ, nullable=False))
    op.create_table(
        "users", _id(),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _ref("agency_id", "agencies", nullable=True),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", _TZ, nullable=False))
    op.create_table(
        "api_tokens", _id(),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200), nullable=False),
        _ref("user_id", "users"), _ref("agency_id", "agencies"),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("revoked_at", _TZ), sa.Column("last_used_at", _TZ))
    op.create_table(
        "sessions", _id(),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ref("user_id", "users"),
        sa.Column("csrf_secret", sa.String(64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("ended_at", _TZ))
    op.create_table(
        "access_log", _id(),
        sa.Column("at", _TZ, nullable=False, index=True),
        sa.Column("username", sa.String(100)),
        sa.Column("role", sa.String(16)),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("object", sa.String(500), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("origin_ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False))
    op.create_table(
        "admin_changes", _id(),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("object_type", sa.String(20), nullable=False),
        sa.Column("object_key", sa.String(300), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False))


def downgrade() -> None:
    for table in ("admin_changes", "access_log", "sessions", "api_tokens", "users",
                  "agencies"):
        op.drop_table(table)
