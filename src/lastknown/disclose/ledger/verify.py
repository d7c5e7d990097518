"""Verify a ledger: recompute the chain, check the typed tables and outside anchors.

What each check catches:

* chain walk (entries in ``seq`` order): an edited payload or hash (hash
  mismatch), a deleted entry (gap in ``seq`` / ``prev_hash`` mismatch), an
  inserted or reordered entry (``prev_hash`` mismatch);
* typed tables: a batch, disclosure or audit row edited, added or removed so
  that it no longer says what its hashed entry says;
* anchors: a chain recomputed from the point of an edit onward, caught by
  comparing with head hashes delivered to recipients in ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lastknown.disclose.ledger import models
from lastknown.disclose.ledger.chain import (
    COLUMNS_BY_KIND,
    GENESIS_HASH,
    EntryKind,
    entry_hash,
    payload_of,
)
from lastknown.errors import LedgerError, LedgerTamperedError

if TYPE_CHECKING:
    from lastknown.disclose.ledger.store import Ledger

_STREAM_ROWS = 20_000


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """A ledger that verified: how many entries, its head, how many anchors matched."""

    ok: bool
    ledger: str
    entries: int
    head_seq: int
    head_hash: str
    anchors_checked: int

    def __str__(self) -> str:
        return (f"Ledger {self.ledger} verified: {self.entries:,} entries, head "
                f"#{self.head_seq} {self.head_hash}; {self.anchors_checked} anchor(s) matched")


class _Tampered(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


def _walk_chain(conn: sa.Connection) -> tuple[int, int, str]:
    """Return (entries, head seq, head hash); raise _Tampered at the first bad entry."""
    expected_prev, last_seq, count = GENESIS_HASH, 0, 0
    query = sa.select(models.entries).order_by(models.entries.c.seq)
    with conn.execution_options(yield_per=_STREAM_ROWS).execute(query) as result:
        for row in result:
            count, last_seq, expected_prev = _check_entry(row, count, last_seq, expected_prev)
    return count, last_seq, expected_prev


def _check_entry(row: sa.Row[Any], count: int, last_seq: int,
                 expected_prev: str) -> tuple[int, int, str]:
    """One entry in chain order; raise _Tampered when it is bad."""
    seq = int(row.seq)
    if seq != last_seq + 1:
        raise _Tampered(seq, f"entry #{seq} follows #{last_seq}: entries "
                             f"#{last_seq + 1}..#{seq - 1} are missing (deleted)")
    if row.kind not in COLUMNS_BY_KIND:
        raise _Tampered(seq, f"entry #{seq} has unknown kind {row.kind!r}")
    if row.prev_hash != expected_prev:
        raise _Tampered(seq, f"entry #{seq} does not chain to entry #{last_seq} "
                             "(prev_hash differs): an entry was inserted, removed or moved")
    if entry_hash(row.prev_hash, seq, row.kind, row.payload) != row.hash:
        raise _Tampered(seq, f"entry #{seq} ({row.kind}) does not match its hash: its "
                             "content was edited")
    return count + 1, seq, str(row.hash)


def _check_typed(conn: sa.Connection, kind: EntryKind) -> None:
    """Every typed row matches its entry's payload; every entry of the kind has its row."""
    table, e = models.TYPED_TABLES[kind], models.entries
    query = (sa.select(table, e.c.payload.label("entry_payload"), e.c.kind.label("entry_kind"))
             .select_from(table.outerjoin(e, e.c.seq == table.c.entry_seq))
             .order_by(table.c.entry_seq))
    with conn.execution_options(yield_per=_STREAM_ROWS).execute(query) as result:
        for row in result:
            seq = int(row.entry_seq)
            if row.entry_payload is None or row.entry_kind != kind:
                raise _Tampered(seq, f"{table.name} row for entry #{seq} has no {kind} entry in "
                                     "the chain: it was added outside the ledger")
            if payload_of(kind, dict(row._mapping)) != row.entry_payload:
                raise _Tampered(seq, f"{table.name} row for entry #{seq} differs from the "
                                     "hashed entry: the typed row was edited")
    orphan = conn.execute(
        sa.select(e.c.seq).select_from(e.outerjoin(table, table.c.entry_seq == e.c.seq))
        .where(e.c.kind == kind, table.c.entry_seq.is_(None)).order_by(e.c.seq).limit(1)
    ).scalar_one_or_none()
    if orphan is not None:
        raise _Tampered(int(orphan), f"entry #{orphan} ({kind}) has no row in {table.name}: "
                                     "the typed row was deleted")


def _check_anchors(conn: sa.Connection, anchors: Mapping[int, str]) -> None:
    for seq, expected in sorted(anchors.items()):
        stored = conn.execute(sa.select(models.entries.c.hash)
                              .where(models.entries.c.seq == seq)).scalar_one_or_none()
        if stored != expected:
            raise _Tampered(seq, f"entry #{seq} hash {stored or 'missing'} differs from the "
                                 f"anchor {expected} held outside the ledger: the chain was "
                                 "rewritten from this point or earlier")


def verify_ledger(ledger: Ledger, *, anchors: Mapping[int, str] | None = None,
                  record: bool = True) -> VerifyReport:
    """Verify everything; return a report, or raise LedgerTamperedError naming the first bad entry.

    With ``record`` the outcome is appended as a ``ledger_verified`` audit event.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> verify_ledger(open_ledger("sqlite:///:memory:"), record=False).head_seq
    0
    """
    try:
        with ledger.connect() as conn:
            count, head_seq, head_hash = _walk_chain(conn)
            for kind in COLUMNS_BY_KIND:
                _check_typed(conn, kind)
            _check_anchors(conn, anchors or {})
    except _Tampered as bad:
        message = (f"ledger {ledger.display_url} does not verify: first bad entry #{bad.seq}: "
                   f"{bad.problem}. Keep the database as it is and restore from a trusted "
                   "copy; compare with the ledger_head values in delivered summary.json files")
        if record:
            _record(ledger, success=False, detail=f"first bad entry #{bad.seq}")
        raise LedgerTamperedError(message) from None
    report = VerifyReport(ok=True, ledger=ledger.display_url, entries=count, head_seq=head_seq,
                          head_hash=head_hash, anchors_checked=len(anchors or {}))
    if record:
        _record(ledger, success=True, detail=f"{count} entries, head #{head_seq} {head_hash}")
    return report


def _record(ledger: Ledger, *, success: bool, detail: str) -> None:
    try:
        ledger.audit(event_type="ledger_verified", success=success, obj="ledger", detail=detail)
    except LedgerError:
        if success:
            raise
