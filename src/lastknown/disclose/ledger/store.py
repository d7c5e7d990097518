"""Open a ledger (SQLite path or SQLAlchemy URL), migrate it, and append to it.

Appending happens only inside :meth:`Ledger.transaction`: it takes the ledger's
write lock (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock,
``pg_advisory_xact_lock``, on PostgreSQL, which needs no privilege beyond INSERT and
SELECT, see :mod:`.grants`), so entries get consecutive ``seq``
numbers and each one chains to the true head. Nothing is visible to anyone until
the transaction commits; an exception (or a killed process) leaves the ledger
exactly as it was.

Reads never take the write lock: :meth:`Ledger.connect` starts a plain (deferred)
transaction, and a SQLite ledger runs in WAL mode, so a reader sees the last
committed state at once while a writer holds its transaction open.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    COLUMNS_BY_KIND,
    GENESIS_HASH,
    EntryKind,
    entry_hash,
    payload_of,
    typed_row_of,
    typed_rows_of_columns,
)
from lastknown.errors import LedgerError
from lastknown.request.batch import batch_key as batch_key  # re-exported: the ledger's key

if TYPE_CHECKING:
    from lastknown.disclose.ledger.anchors import Anchor
    from lastknown.disclose.ledger.verify import VerifyReport

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_CHUNK_ROWS = 5_000
#: Execution option marking a connection whose transactions take the write lock.
_WRITE_OPTION = "lastknown_write"
#: Names the PostgreSQL advisory lock (per schema) that serialises ledger writers (LOCK
#: TABLE would need UPDATE rights, which the application role does not have).
_PG_LOCK_KEY = ".lastknown_ledger_write"
#: ... and the one that serialises migrations (kept apart: readers open ledgers too).
_PG_MIGRATE_KEY = ".lastknown_ledger_migrate"


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


@dataclass(frozen=True, kw_only=True)
class PreparedEntries:
    """Records of one kind made ready to append: each typed row with its canonical payload.

    Building these (typed values, canonical JSON) is most of an append's cost and needs no
    lock, so a writer can prepare them before :meth:`Ledger.transaction` takes the write
    lock; :meth:`LedgerWriter.add_prepared` then only chains (hashes) and inserts them.
    """

    kind: EntryKind
    #: per record: its typed values in :data:`~.chain.COLUMNS_BY_KIND` order (a tuple, not a
    #: dict: a prepared disclosure takes about 0.96 KB instead of 1.1) and its payload
    rows: list[tuple[tuple[Any, ...], str]]


def prepare_entries(kind: EntryKind, records: Iterable[Mapping[str, Any]]) -> PreparedEntries:
    """Typed rows and payloads of ``records`` (see :class:`PreparedEntries`).

    >>> prepare_entries("audit", []).rows
    []
    """
    rows = []
    for record in records:
        typed = typed_row_of(kind, record)
        rows.append((tuple(typed.values()), payload_of(kind, typed)))
    return PreparedEntries(kind=kind, rows=rows)


def prepare_columns(kind: EntryKind, constants: Mapping[str, Any],
                    columns: Mapping[str, Sequence[Any]]) -> PreparedEntries:
    """What :func:`prepare_entries` makes of the records ``{**constants, name:
    columns[name][i]}``, built column-wise (:func:`~.chain.typed_rows_of_columns`).

    >>> prepare_columns("audit", {"event_time": "2026-01-01T00:00:00.000000Z",
    ...     "user_name": "u", "event_type": "t", "success": True, "origin": "o",
    ...     "object": "x"}, {"detail": ["a", "b"]}).rows[1][0][-1]
    'b'
    """
    return PreparedEntries(kind=kind, rows=typed_rows_of_columns(kind, constants, columns))


#: The columns of ``ledger_entries`` in the order :meth:`LedgerWriter._insert` gives them.
_ENTRY_COLUMNS = ("seq", "kind", "payload", "prev_hash", "hash")


def _bulk_insert(conn: sa.Connection, table: sa.Table, names: Sequence[str],
                 rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (values in the order of ``names``) into ``table`` in bulk.

    On PostgreSQL through psycopg, ``COPY … FROM STDIN`` (it needs only the INSERT
    privilege the application role has, :mod:`.grants`); elsewhere one DB-API
    ``executemany`` of the compiled INSERT, each value passed through its column type's
    bind processor as SQLAlchemy would (a driver with named parameters gets SQLAlchemy's
    own executemany). The same rows either way; SQLAlchemy's own executemany spends
    much of an append's time building per-row parameters, and on PostgreSQL sends the
    rows as statements (``bench/bench_ledger.py``; README's performance table).
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        raw: Any = conn.connection.dbapi_connection  # psycopg's: cursor().copy()
        if raw is None:  # pragma: no cover - an open Connection always has one
            raise LedgerError("ledger connection closed while appending")
        quote = conn.dialect.identifier_preparer.quote
        statement = (f"COPY {conn.dialect.identifier_preparer.format_table(table)} "
                     f"({', '.join(quote(n) for n in names)}) FROM STDIN")
        dbapi = conn.dialect.loaded_dbapi
        try:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi.Error as exc:  # as SQLAlchemy would have raised it (IntegrityError …)
            raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        return
    insert = table.insert().compile(dialect=conn.dialect, column_keys=list(names))
    if insert.positiontup is None:  # a named paramstyle: let SQLAlchemy bind the values
        conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
        return
    if list(insert.positiontup) != list(names):
        index = [list(names).index(n) for n in insert.positiontup]
        rows = [tuple(row[i] for i in index) for row in rows]
    # a bind processor on the few columns that have one (times on SQLite), once per value
    # object: a batch's disclosures share one time object
    convert: list[tuple[int, Callable[[Any], Any], dict[int, Any]]] = [
        (i, p, {}) for i, p in enumerate(
        table.c[n].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        for n in insert.positiontup) if p is not None]
    if convert:
        rows = [_bound(row, convert) for row in rows]
    conn.exec_driver_sql(insert.string, rows)


def _bound(row: tuple[Any, ...],
           convert: list[tuple[int, Callable[[Any], Any], dict[int, Any]]]) -> tuple[Any, ...]:
    """``row`` with each value of a ``convert`` column processed; ``seen`` (by ``id``: the
    rows hold every value alive, so an id is one object throughout) saves repeats."""
    values = list(row)
    for i, process, seen in convert:
        value = values[i]
        if value is not None:
            key = id(value)
            if key not in seen:
                seen[key] = process(value)
            values[i] = seen[key]
    return tuple(values)


class LedgerWriter:
    """Appends entries inside one open transaction; see :meth:`Ledger.transaction`."""

    def __init__(self, conn: sa.Connection, head: EntryRef) -> None:
        self._conn = conn
        self.head = head

    @property
    def conn(self) -> sa.Connection:
        """The open, write-locked connection (for checks that must see the committed state)."""
        return self._conn

    def add(self, kind: EntryKind, values: Mapping[str, Any]) -> EntryRef:
        """Append one record (values keyed by its typed table's columns)."""
        self.add_many(kind, [values])
        return self.head

    def add_many(self, kind: EntryKind, records: Iterable[Mapping[str, Any]]) -> int:
        """Append many records of one kind in chunks (no round trip per row)."""
        count = 0
        chunk: list[Mapping[str, Any]] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= _CHUNK_ROWS:
                count += self.add_prepared(prepare_entries(kind, chunk))
                chunk = []
        if chunk:
            count += self.add_prepared(prepare_entries(kind, chunk))
        return count

    def add_prepared(self, prepared: PreparedEntries) -> int:
        """Append records made ready by :func:`prepare_entries`: only chain and insert."""
        rows = prepared.rows
        for start in range(0, len(rows), _CHUNK_ROWS):
            self._insert(prepared.kind, rows[start:start + _CHUNK_ROWS])
        return len(rows)

    def _insert(self, kind: EntryKind, rows: list[tuple[tuple[Any, ...], str]]) -> None:
        entry_rows, typed_rows = [], []
        seq, prev = self.head.seq, self.head.hash
        for typed, payload in rows:
            seq += 1
            digest = entry_hash(prev, seq, kind, payload)
            entry_rows.append((seq, kind, payload, prev, digest))
            typed_rows.append((seq, *typed))
            prev = digest
        _bulk_insert(self._conn, models.entries, _ENTRY_COLUMNS, entry_rows)
        _bulk_insert(self._conn, models.TYPED_TABLES[kind],
                     ("entry_seq", *COLUMNS_BY_KIND[kind]), typed_rows)
        self.head = EntryRef(seq=seq, hash=prev)

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
        """Append entries atomically: committed when the block ends without an error.

        The block holds the ledger's write lock from its first line to the commit, so
        whatever it reads through :attr:`LedgerWriter.conn` (caps, batch ids) cannot
        change before the commit; keep slow work (a spreadsheet) outside it.
        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock("
                                             "hashtext(current_schema() || :key))"),
                                     {"key": _PG_LOCK_KEY})
                    yield LedgerWriter(conn, _head(conn))
                if conn.dialect.name == "sqlite":  # committed: fold the WAL into the file, so
                    raw = conn.connection.dbapi_connection  # a copy of it alone is complete
                    if raw is not None:
                        raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
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
        """True when a batch with this id, compared by :func:`batch_key`, is in the ledger.

        >>> ledger = open_ledger("sqlite:///:memory:")
        >>> ledger.batch_recorded("2026-0142")
        False
        """
        with self.connect() as conn:
            return batch_recorded_in(conn, batch_id)

    def verify(self, *, anchors: Mapping[int, str] | Iterable[Anchor] | None = None,
               record: bool = True) -> VerifyReport:
        """Recompute the chain; raise LedgerTamperedError naming the first bad entry.

        ``anchors`` are heads known from outside (:mod:`.anchors`: the anchor file,
        delivered receipts), as :class:`~.anchors.Anchor` s or ``{seq: hash}``. See
        :func:`lastknown.disclose.ledger.verify.verify_ledger`.

        >>> open_ledger("sqlite:///:memory:").verify(record=False).entries
        0
        """
        from lastknown.disclose.ledger.verify import verify_ledger

        return verify_ledger(self, anchors=anchors, record=record)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def batch_rows_in(conn: sa.Connection, batch_id: str,
                  *columns: sa.ColumnElement[Any]) -> list[sa.Row[Any]]:
    """The batch records of this batch id seen by ``conn`` (compared by :func:`batch_key`;
    one row per batch, so a scan is cheap, and exact for any id, where SQL's ``lower`` is
    not), with ``batch_id`` and ``columns``."""
    key = batch_key(batch_id)
    rows = conn.execute(sa.select(models.batches.c.batch_id, *columns))
    return [row for row in rows if batch_key(str(row.batch_id)) == key]


def batch_recorded_in(conn: sa.Connection, batch_id: str) -> bool:
    """True when the ledger seen by ``conn`` holds this batch id (:func:`batch_rows_in`)."""
    return bool(batch_rows_in(conn, batch_id))


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
        # 64 MiB of page cache instead of 2: a batch's entries insert into two indexes on
        # random keys (hash, TIN), which thrash a small cache (550k disclosures: 7.7 → 5.9 s;
        # 256 MiB was within 3 % of 64)
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the ledger's schema to ``revision``, by default the newest (no ini file needed).

    An older ``revision`` is for tests that build a ledger as an earlier version wrote it.
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":  # two first runs must not both create
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock("  # the tables
                                         "hashtext(current_schema() || :key))"),
                                 {"key": _PG_MIGRATE_KEY})
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
    except CommandError as exc:  # e.g. a revision this version does not ship: a newer ledger
        raise LedgerError(f"ledger {engine.url.render_as_string(hide_password=True)}: its schema "
                          f"cannot be brought to this version's ({exc}); it was probably written "
                          "by a newer lastknown: use that version, or another --ledger") from exc


def open_ledger(url_or_path: str | Path, *, create: bool = False,
                connect_args: Mapping[str, Any] | None = None) -> Ledger:
    """Open (and migrate) the ledger at a SQLite path or SQLAlchemy URL.

    Only a command that writes disclosures passes ``create=True``; without it a
    missing SQLite file (or its folder), or a database without the ledger's tables, is a
    :class:`LedgerError` and nothing is created. There is no default location: the
    deployment configuration (:mod:`lastknown.config`) says where the ledger is.

    >>> ledger = open_ledger("postgresql+psycopg://lk@db.example/ledger")  # doctest: +SKIP
    >>> ledger = open_ledger(Path("ledger.sqlite"), create=True)  # doctest: +SKIP
    """
    target = url_or_path
    if isinstance(target, str) and "://" in target:
        try:
            url = sa.make_url(target)
        except sa.exc.ArgumentError as exc:
            raise LedgerError(f"--ledger {target!r} is not a database URL; give a SQLite file "
                              "path or e.g. postgresql+psycopg://user@host/db") from exc
        if url.get_backend_name() == "sqlite":
            if url.database in (None, "", ":memory:"):
                create = True  # a new, private, in-memory ledger: nothing to find
            else:
                _sqlite_folder(Path(str(url.database)), create=create)
    else:
        path = Path(target).expanduser()
        _sqlite_folder(path, create=create)
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
        if not create:
            with engine.connect() as conn:
                present = sa.inspect(conn).has_table("ledger_entries")
            if not present:
                engine.dispose()
                raise LedgerError(f"no ledger at {ledger.display_url}: the database has no "
                                  "ledger tables; check --ledger or the deployment config "
                                  "(a ledger is created only by `lastknown process`)")
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise ledger._fail("create or migrate its tables", exc) from exc
    except LedgerError:  # a schema this version cannot take: close what was opened
        engine.dispose()
        raise
    return ledger


def _sqlite_folder(path: Path, *, create: bool) -> None:
    """Check (or, for a writer, create) the folder of a SQLite ledger file."""
    if not create:
        if not path.is_file():
            raise LedgerError(f"no ledger at {path}; check --ledger or the deployment config "
                              "(a ledger is created only by `lastknown process`)")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"ledger folder {path.parent} cannot be created: "
                          f"{exc.strerror}; choose another --ledger path") from exc
