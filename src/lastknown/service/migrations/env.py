"""Alembic environment of the app database: runs on the connection
:func:`lastknown.service.db.open_app_db` hands over (no ini file, no URL)."""

from __future__ import annotations

from alembic import context

from lastknown.service.db import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
