"""Alembic revision scripts of the ledger (one file per revision)."""
