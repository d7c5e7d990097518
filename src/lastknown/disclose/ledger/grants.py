"""PostgreSQL: the application role may append to the ledger and read it, nothing else.

The append-only triggers of the migration stop an UPDATE, DELETE or TRUNCATE, but a
role that owns the tables (or may alter them) can drop triggers. So the role the
application connects as is not the owner and holds only ``SELECT, INSERT`` on the
ledger tables (and ``SELECT`` on ``alembic_version``, which opening the ledger
reads); everything else is revoked from it and from ``PUBLIC``. The tables are
created and migrated by the owner (e.g. one ``lastknown ledger verify`` run as the
owner), then the grant is made once:

    lastknown ledger grant --ledger postgresql+psycopg://owner@db/ledger --role lk_app

>>> grant_statements("lk_app", "public")[-1]
'GRANT SELECT ON TABLE "public"."alembic_version" TO "lk_app"'
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from lastknown.disclose.ledger.models import LEDGER_TABLES
from lastknown.disclose.ledger.store import Ledger
from lastknown.errors import ConfigError, LedgerError

_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grant_statements(role: str, schema: str) -> list[str]:
    """The SQL that leaves ``role`` with SELECT and INSERT only on the ledger tables."""
    tables = ", ".join(f"{_quote(schema)}.{_quote(t)}" for t in LEDGER_TABLES)
    version = f"{_quote(schema)}.{_quote('alembic_version')}"
    who = _quote(role)
    return [
        f"REVOKE ALL ON TABLE {tables}, {version} FROM PUBLIC",
        f"REVOKE ALL ON TABLE {tables}, {version} FROM {who}",
        f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {who}",
        f"GRANT SELECT, INSERT ON TABLE {tables} TO {who}",
        f"GRANT SELECT ON TABLE {version} TO {who}",
    ]


def grant_append_only(ledger: Ledger, role: str) -> list[str]:
    """Run :func:`grant_statements` for ``role`` on the ledger's schema; return them.

    Must be run by the tables' owner (or a superuser). The role must exist and must not
    own the tables, or the grant would mean nothing.
    """
    if ledger.engine.dialect.name != "postgresql":
        raise ConfigError(f"ledger {ledger.display_url} is SQLite, which has no roles: "
                          "protect the file with operating-system permissions instead")
    if not _ROLE.fullmatch(role):
        raise ConfigError(f"--role {role!r} is not a plain PostgreSQL role name (letters, "
                          "digits, _ and $, starting with a letter or _)")
    try:
        with ledger.engine.begin() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                            {"r": role}).first() is None:
                raise ConfigError(f"role {role!r} does not exist; create it first "
                                  f"(CREATE ROLE {role} LOGIN) and run again")
            schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
            owners = {str(o) for o in conn.execute(
                sa.text("SELECT tableowner FROM pg_tables WHERE schemaname = :s AND "
                        "tablename = ANY(:t)"), {"s": schema, "t": list(LEDGER_TABLES)})
                .scalars()}
            if role in owners:
                raise ConfigError(f"role {role!r} owns the ledger tables in schema {schema}; "
                                  "the application must connect as a role that does not "
                                  "(create the tables as the owner, grant to another role)")
            statements = grant_statements(role, schema)
            for statement in statements:
                conn.exec_driver_sql(statement)
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(f"ledger {ledger.display_url}: could not grant to {role!r}: "
                          f"{str(exc).splitlines()[0][:300]} — run this as the tables' "
                          "owner") from exc
    return statements
