"""Alembic environment: runs on the connection :func:`..store.migrate` hands over.

There is no ini file and no URL here: lastknown drives Alembic programmatically
(``config.attributes["connection"]``), so the same migrations run on SQLite and
PostgreSQL, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
