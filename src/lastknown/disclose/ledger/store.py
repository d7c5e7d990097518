"""Open a ledger (SQLite path or SQLAlchemy URL), migrate it, and append to it.

Appending happens only inside :meth:`Ledger.transaction`: it takes the ledger's
write lock (``BEGIN IMMEDIATE`` on SQLite, ``LOCK TABLE ... EXCLUSIVE`` on
PostgreSQL), so entries get consecutive ``seq`` numbers and each one chains to
the true head. Nothing is visible to anyone until the transaction commits; an
exception (or a killed process) leaves the ledger exactly as it was.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from lastknown.disclose.ledger import models
from lastknown.disclose.ledger.chain import (
    GENESIS_HASH,
    EntryKind,
    entry_hash,
    payload_of,
    typed_row_of,
)
from lastknown.errors import LedgerError

if TYPE_CHECKING:
    from lastknown.disclose.ledger.verify import VerifyReport

DEFAULT_LEDGER = Path(".lastknown") / "ledger.sqlite"
"""Where the ledger lives when no ``--ledger`` is given (under the working directory)."""

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_CHUNK_ROWS = 5_000


@dataclass(frozen=True, kw_only=True)
class EntryRef:
    """Where an entry sits in the chain."""

    seq: int
    hash: str


def default_origin() -> str:
    """The host name recorded as the origin of an event."""
    return socket.gethostname() or "unknown-host"


def default_user() -> str:
    """The operating-system user recorded as the operator of an event."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown-user"


class LedgerWriter:
    """Appends entries inside one open transaction; see :meth:`Ledger.transaction`."""

    def __init__(self, conn: sa.Connection, head: EntryRef) -> None:
        self._conn = conn
        self.head = head

    def add(self, kind: EntryKind, values: Mapping[str, Any]) -> EntryRef:
        """Append one record (values keyed by its typed table's columns)."""
        self.add_many(kind, [values])
        return self.head

    def add_many(self, kind: EntryKind, records: Iterable[Mapping[str, Any]]) -> int:
        """Append many records of one kind in chunks (no round trip per row)."""
        count = 0
        chunk: list[dict[str, Any]] = []
        for record in records:
            chunk.append(typed_row_of(kind, record))
            if len(chunk) >= _CHUNK_ROWS:
                count += self._insert(kind, chunk)
                chunk = []
        if chunk:
            count += self._insert(kind, chunk)
        return count

    def _insert(self, kind: EntryKind, typed_rows: list[dict[str, Any]]) -> int:
        entry_rows = []
        seq, prev = self.head.seq, self.head.hash
        for row in typed_rows:
            seq += 1
            payload = payload_of(kind, row)
            digest = entry_hash(prev, seq, kind, payload)
            entry_rows.append({"seq": seq, "kind": kind, "payload": payload,
                               "prev_hash": prev, "hash": digest})
            row["entry_seq"] = seq
            prev = digest
        self._conn.execute(models.entries.insert(), entry_rows)
        self._conn.execute(models.TYPED_TABLES[kind].insert(), typed_rows)
        self.head = EntryRef(seq=seq, hash=prev)
        return len(typed_rows)

    def audit(self, *, event_type: str, success: bool, obj: str, detail: str = "",
              user: str | None = None, origin: str | None = None,
              at: datetime | None = None) -> EntryRef:
        """Append one audit event: who did what, when, from where, whether it worked."""
        return self.add("audit", {
            "event_time": at or datetime.now(UTC), "user_name": user or default_user(),
            "event_type": event_type, "success": success,
            "origin": origin or default_origin(), "object": obj, "detail": detail,
        })


class Ledger:
    """A migrated ledger database. Open one with :func:`open_ledger`.

    >>> ledger = open_ledger("sqlite:///:memory:")
    >>> ledger.head().seq
    0
    >>> with ledger.transaction() as tx:
    ...     _ = tx.audit(event_type="report_run", success=True, obj="report 2026")
    >>> ledger.head().seq
    1
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.display_url = engine.url.render_as_string(hide_password=True)

    def _fail(self, action: str, exc: Exception) -> LedgerError:
        return LedgerError(f"ledger {self.display_url}: could not {action}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]} — check "
                           "that the database is reachable and writable")

    def head(self) -> EntryRef:
        """The last entry (seq 0 and the genesis hash for an empty ledger)."""
        with self.connect() as conn:
            return _head(conn)

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A read connection; database errors become :class:`LedgerError`."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("read", exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[LedgerWriter]:
        """Append entries atomically: committed when the block ends without an error."""
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
                yield LedgerWriter(conn, _head(conn))
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("append", exc) from exc

    def audit(self, *, event_type: str, success: bool, obj: str, detail: str = "",
              user: str | None = None, origin: str | None = None) -> EntryRef:
        """Append and commit one audit event.

        >>> ledger = open_ledger("sqlite:///:memory:")
        >>> ledger.audit(event_type="ledger_verified", success=True, obj="ledger").seq
        1
        """
        with self.transaction() as tx:
            return tx.audit(event_type=event_type, success=success, obj=obj, detail=detail,
                            user=user, origin=origin)

    def entry_hash(self, seq: int) -> str | None:
        """The stored hash of entry ``seq`` (None when there is no such entry)."""
        with self.connect() as conn:
            value = conn.execute(sa.select(models.entries.c.hash)
                                 .where(models.entries.c.seq == seq)).scalar_one_or_none()
        return None if value is None else str(value)

    def batch_recorded(self, batch_id: str) -> bool:
        """True when a batch with this id is in the ledger."""
        with self.connect() as conn:
            found = conn.execute(sa.select(models.batches.c.entry_seq)
                                 .where(models.batches.c.batch_id == batch_id)).first()
        return found is not None

    def verify(self, *, anchors: Mapping[int, str] | None = None,
               record: bool = True) -> VerifyReport:
        """Recompute the chain; raise LedgerTamperedError naming the first bad entry.

        ``anchors`` maps seq -> hash known from outside (e.g. ``ledger_seq`` and
        ``ledger_head`` of delivered ``summary.json`` files). See
        :func:`lastknown.disclose.ledger.verify.verify_ledger`.

        >>> open_ledger("sqlite:///:memory:").verify(record=False).entries
        0
        """
        from lastknown.disclose.ledger.verify import verify_ledger

        return verify_ledger(self, anchors=anchors, record=record)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _head(conn: sa.Connection) -> EntryRef:
    row = conn.execute(sa.select(models.entries.c.seq, models.entries.c.hash)
                       .order_by(models.entries.c.seq.desc()).limit(1)).first()
    if row is None:
        return EntryRef(seq=0, hash=GENESIS_HASH)
    return EntryRef(seq=int(row[0]), hash=str(row[1]))


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrate(engine: sa.Engine) -> None:
    """Bring the ledger's schema to the newest Alembic revision (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except CommandError as exc:  # e.g. a revision this version does not ship: a newer ledger
        raise LedgerError(f"ledger {engine.url.render_as_string(hide_password=True)}: its schema "
                          f"cannot be brought to this version's ({exc}); it was probably written "
                          "by a newer lastknown: use that version, or another --ledger") from exc


def open_ledger(url_or_path: str | Path | None = None, *,
                connect_args: Mapping[str, Any] | None = None) -> Ledger:
    """Open (creating and migrating if needed) the ledger at a SQLite path or SQLAlchemy URL.

    ``None`` means ``.lastknown/ledger.sqlite`` under the working directory.

    >>> ledger = open_ledger("postgresql+psycopg://lk@db.example/ledger")  # doctest: +SKIP
    >>> ledger = open_ledger(Path("ledger.sqlite"))  # doctest: +SKIP
    """
    target: str | Path = DEFAULT_LEDGER if url_or_path is None else url_or_path
    if isinstance(target, str) and "://" in target:
        try:
            url = sa.make_url(target)
        except sa.exc.ArgumentError as exc:
            raise LedgerError(f"--ledger {target!r} is not a database URL; give a SQLite file "
                              "path or e.g. postgresql+psycopg://user@host/db") from exc
    else:
        path = Path(target).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"ledger folder {path.parent} cannot be created: "
                              f"{exc.strerror}; choose another --ledger path") from exc
        url = sa.URL.create("sqlite", database=str(path))
    try:
        if url.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url)
        else:
            engine = sa.create_engine(url, connect_args=dict(connect_args or {}),
                                      pool_pre_ping=True)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise LedgerError(f"ledger {url.render_as_string(hide_password=True)}: unsupported "
                          f"database ({exc}); use a SQLite path or postgresql+psycopg://") from exc
    ledger = Ledger(engine)
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise ledger._fail("create or migrate its tables", exc) from exc
    return ledger
