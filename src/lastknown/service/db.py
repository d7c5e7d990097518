"""The app database: users, agencies, API tokens, sessions, the access log, admin changes.

SQLAlchemy Core tables, the same on SQLite and PostgreSQL; the schema is created and
upgraded by Alembic (``service/migrations``, version table ``alembic_version_app``, so
the app tables may share a PostgreSQL database with the ledger). Secrets are never
stored: a password as its Argon2 hash, a session or API token as its SHA-256.

>>> db = open_app_db("sqlite:///:memory:")
>>> sorted(sa.inspect(db.engine).get_table_names())[:3]
['access_log', 'admin_changes', 'agencies']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from lastknown.errors import ConfigError

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_app"
_TZ = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER

metadata = sa.MetaData()

agencies = sa.Table(
    "agencies", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("name_key", sa.String(300), nullable=False, unique=True),
    sa.Column("statutes", sa.Text, nullable=False),  # JSON list, as written by the admin
    # Caps as in lastknown.disclose.policy.Policy; NULL = the policy's value.
    sa.Column("max_rows_per_batch", sa.Integer),
    sa.Column("max_rows_per_official_per_period", sa.Integer),
    sa.Column("period_days", sa.Integer),
    sa.Column("created_at", _TZ, nullable=False),
)
users = sa.Table(
    "users", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),  # casefolded
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("agency_id", _ID, sa.ForeignKey("agencies.id")),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
)
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("agency_id", _ID, sa.ForeignKey("agencies.id"), nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("revoked_at", _TZ),
    sa.Column("last_used_at", _TZ),
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_secret", sa.String(64), nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("expires_at", _TZ, nullable=False),
    sa.Column("ended_at", _TZ),
)
access_log = sa.Table(
    "access_log", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
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
    sa.Column("detail", sa.String(500), nullable=False),
)
admin_changes = sa.Table(
    "admin_changes", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", _TZ, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("object_type", sa.String(20), nullable=False),
    sa.Column("object_key", sa.String(300), nullable=False),
    sa.Column("before", sa.Text, nullable=False),  # JSON, never a hash or secret
    sa.Column("after", sa.Text, nullable=False),
)


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives it back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AppDB:
    """The migrated app database; open one with :func:`open_app_db`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.display_url = engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """One transaction, committed when the block ends without an error."""
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def _engine(target: str, connect_args: dict[str, Any] | None) -> sa.Engine:
    if "://" not in target:
        path = Path(target).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"app database folder {path.parent} cannot be created: "
                              f"{exc.strerror}; set [service] app_db or --db") from exc
        target = sa.URL.create("sqlite", database=str(path)).render_as_string()
    try:
        url = sa.make_url(target)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"app database {target!r} is not a database URL; give a SQLite "
                          "path or postgresql+psycopg://user@host/db") from exc
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, connect_args=connect_args or {}, pool_pre_ping=True)
    memory = url.database in (None, "", ":memory:")
    engine = sa.create_engine(url, poolclass=sa.StaticPool if memory else None,
                              connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if not memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    return engine


def open_app_db(target: str, *, connect_args: dict[str, Any] | None = None) -> AppDB:
    """Open the app database at a SQLite path or SQLAlchemy URL; create or upgrade its
    tables."""
    engine = _engine(target, connect_args)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(f"app database {engine.url.render_as_string(hide_password=True)}: "
                          f"cannot create or upgrade its tables ({type(exc).__name__}); check "
                          "that it is reachable and writable") from exc
    return AppDB(engine)
