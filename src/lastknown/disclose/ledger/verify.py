"""Verify a ledger: recompute the chain, check the typed tables and outside anchors.

What each check catches:

* chain walk (entries in ``seq`` order): an edited payload or hash (hash
  mismatch), a deleted entry (gap in ``seq`` / ``prev_hash`` mismatch), an
  inserted or reordered entry (``prev_hash`` mismatch);
* typed tables: a batch, disclosure or audit row edited, added or removed so
  that it no longer says what its hashed entry says;
* anchors (:mod:`.anchors`: the deployment's anchor file, delivered receipts): the
  newest entries cut off (the anchored entry is gone) and a chain recomputed from
  the point of an edit onward (the anchored position holds another hash).

:func:`verify_ledger` does all of it; :func:`verify_anchored` reads anchor files
first; :func:`quick_verify` is the cheap check ``process`` runs before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lastknown.disclose.ledger import models
from lastknown.disclose.ledger.anchors import Anchor, anchors_for, ledger_id, read_anchors
from lastknown.disclose.ledger.chain import (
    COLUMNS_BY_KIND,
    GENESIS_HASH,
    EntryKind,
    entry_hash,
    payload_of,
)
from lastknown.errors import InputError, LedgerError, LedgerTamperedError

if TYPE_CHECKING:
    from lastknown.disclose.ledger.store import Ledger

_STREAM_ROWS = 20_000
QUICK_TAIL = 1_000
"""How many of the newest entries :func:`quick_verify` rechains and rechecks."""
_LOOKUP_CHUNK = 500


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


def _check_typed(conn: sa.Connection, kind: EntryKind, since: int = 0) -> None:
    """Every typed row (from entry ``since`` on) matches its entry's payload; every entry
    of the kind has its row."""
    table, e = models.TYPED_TABLES[kind], models.entries
    query = (sa.select(table, e.c.payload.label("entry_payload"), e.c.kind.label("entry_kind"))
             .select_from(table.outerjoin(e, e.c.seq == table.c.entry_seq))
             .where(table.c.entry_seq >= since).order_by(table.c.entry_seq))
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
        .where(e.c.kind == kind, e.c.seq >= since, table.c.entry_seq.is_(None))
        .order_by(e.c.seq).limit(1)
    ).scalar_one_or_none()
    if orphan is not None:
        raise _Tampered(int(orphan), f"entry #{orphan} ({kind}) has no row in {table.name}: "
                                     "the typed row was deleted")


def _as_anchors(anchors: Mapping[int, str] | Iterable[Anchor] | None) -> list[Anchor]:
    if anchors is None:
        return []
    if isinstance(anchors, Mapping):
        return [Anchor(sequence=seq, hash=digest, source="the anchors given")
                for seq, digest in anchors.items()]
    return list(anchors)


def _check_anchors(conn: sa.Connection, anchors: Sequence[Anchor]) -> None:
    """Each anchored position still holds the anchored hash; the lowest bad one is named."""
    ordered = sorted(anchors, key=lambda a: (a.sequence, a.source))
    seqs = sorted({a.sequence for a in ordered})
    stored: dict[int, str] = {}
    for start in range(0, len(seqs), _LOOKUP_CHUNK):
        chunk = seqs[start:start + _LOOKUP_CHUNK]
        query = sa.select(models.entries.c.seq, models.entries.c.hash).where(
            models.entries.c.seq.in_(chunk))
        stored.update((int(seq), str(digest)) for seq, digest in conn.execute(query))
    for anchor in ordered:
        found = stored.get(anchor.sequence)
        if found is None:
            raise _Tampered(anchor.sequence, (
                f"entry #{anchor.sequence} anchored in {anchor.source} is missing: the newest "
                "entries were cut off (the ledger ends before it)"))
        if found != anchor.hash:
            raise _Tampered(anchor.sequence, (
                f"entry #{anchor.sequence} hash {found} differs from the anchor {anchor.hash} "
                f"in {anchor.source}: the chain was rewritten from this point or earlier"))


def verify_ledger(ledger: Ledger, *,
                  anchors: Mapping[int, str] | Iterable[Anchor] | None = None,
                  record: bool = True) -> VerifyReport:
    """Verify everything; return a report, or raise LedgerTamperedError naming the first bad entry.

    ``anchors`` are heads known from outside (:class:`Anchor` s, or ``{seq: hash}``).
    With ``record`` the outcome is appended as a ``ledger_verified`` audit event.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> verify_ledger(open_ledger("sqlite:///:memory:"), record=False).head_seq
    0
    """
    checked = _as_anchors(anchors)
    try:
        with ledger.connect() as conn:
            count, head_seq, head_hash = _walk_chain(conn)
            for kind in COLUMNS_BY_KIND:
                _check_typed(conn, kind)
            _check_anchors(conn, checked)
    except _Tampered as bad:
        message = (f"ledger {ledger.display_url} does not verify: first bad entry #{bad.seq}: "
                   f"{bad.problem}. {_ADVICE}")
        if record:
            _record(ledger, success=False, detail=f"first bad entry #{bad.seq}")
        raise LedgerTamperedError(message) from None
    report = VerifyReport(ok=True, ledger=ledger.display_url, entries=count, head_seq=head_seq,
                          head_hash=head_hash, anchors_checked=len(checked))
    if record:
        _record(ledger, success=True, detail=f"{count} entries, head #{head_seq} {head_hash}")
    return report


_ADVICE = ("Keep the database as it is and restore from a trusted copy; compare with the "
           "deployment's anchor file and the ledger_head of delivered receipt.json files")


def verify_anchored(ledger: Ledger, anchor_files: Sequence[Path], *,
                    record: bool = True) -> VerifyReport:
    """:func:`verify_ledger` with the anchors read from anchor files or receipts.

    Anchor-file lines of another ledger (another :func:`~.anchors.ledger_id`) are left
    out; a file none of whose anchors apply is an :class:`InputError` (exit 2), so a
    wrong file is never mistaken for a passed check.

    >>> verify_anchored(open_ledger(url), [Path("anchors.jsonl")])  # doctest: +SKIP
    """
    chosen: list[Anchor] = []
    for path in anchor_files:
        kept, skipped = anchors_for(ledger, read_anchors(path))
        if not kept:
            which = f"{skipped} anchor(s), all for another ledger" if skipped else "no anchors"
            raise InputError(f"anchor file {path} holds {which} (this ledger is "
                             f"{ledger.display_url}, id {ledger_id(ledger)}); give the anchor "
                             "file or receipt.json of this ledger's deployment")
        chosen.extend(kept)
    return verify_ledger(ledger, anchors=chosen, record=record)


def deployment_anchors(ledger: Ledger, path: Path) -> tuple[list[Anchor], str]:
    """The anchors of ``ledger`` in the deployment's anchor file, and a line saying which
    file that was (``ledger verify`` without ``--anchor``).

    A missing file, or one without anchors of this ledger, leaves the chain alone to be
    verified, and the line says so; a malformed file is an :class:`InputError` (exit 2).

    >>> from lastknown.disclose.ledger import open_ledger
    >>> deployment_anchors(open_ledger("sqlite:///:memory:"), Path("/nowhere/anchors.jsonl"))
    ([], 'No anchor file at /nowhere/anchors.jsonl: verifying the chain alone')
    """
    if not path.exists():
        return [], f"No anchor file at {path}: verifying the chain alone"
    kept, skipped = anchors_for(ledger, read_anchors(path))
    if not kept:
        other = f" ({skipped} of another ledger)" if skipped else ""
        return [], (f"Anchor file {path} holds no anchors of this ledger{other}: verifying "
                    "the chain alone")
    return kept, f"Anchor file {path}: {len(kept):,} anchor(s) of this ledger"


def quick_verify(ledger: Ledger, anchors_path: Path | None, *, tail: int = QUICK_TAIL) -> None:
    """The check before writing: no entry missing, the newest ``tail`` entries chained and
    matching their typed rows, and every anchor of this ledger in ``anchors_path`` (if the
    file exists) still in place. Raises :class:`LedgerTamperedError`; appends nothing.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> quick_verify(open_ledger("sqlite:///:memory:"), None)
    """
    anchors: list[Anchor] = []
    if anchors_path is not None and anchors_path.exists():
        anchors, _ = anchors_for(ledger, read_anchors(anchors_path))
    e = models.entries
    try:
        with ledger.connect() as conn:
            count, first, last = conn.execute(
                sa.select(sa.func.count(), sa.func.min(e.c.seq), sa.func.max(e.c.seq))).one()
            count, last = int(count), int(last or 0)
            if count and (int(first) != 1 or last != count):
                raise _Tampered(1 if int(first) != 1 else last, (
                    f"{count:,} entries are numbered #{first}..#{last}: "
                    f"{last - count:,} were deleted (`lastknown ledger "
                    "verify` names where)"))
            _check_tail(conn, max(1, last - tail + 1), last)
            _check_anchors(conn, anchors)
    except _Tampered as bad:
        raise LedgerTamperedError(
            f"ledger {ledger.display_url} fails the check before writing, so nothing was "
            f"written to it: first bad entry #{bad.seq}: {bad.problem}. Run `lastknown ledger "
            f"verify --anchor <anchor file>`. {_ADVICE}") from None


def _check_tail(conn: sa.Connection, start: int, last: int) -> None:
    """Entries ``start..last`` chain to each other and hash right; their typed rows match."""
    if last < start:
        return
    query = (sa.select(models.entries).where(models.entries.c.seq >= start)
             .order_by(models.entries.c.seq))
    with conn.execution_options(yield_per=_STREAM_ROWS).execute(query) as result:
        rows = iter(result)
        row = next(rows)
        if entry_hash(row.prev_hash, int(row.seq), row.kind, row.payload) != row.hash:
            raise _Tampered(int(row.seq), f"entry #{row.seq} ({row.kind}) does not match its "
                                          "hash: its content was edited")
        count, last_seq, expected_prev = 1, int(row.seq), str(row.hash)
        for row in rows:
            count, last_seq, expected_prev = _check_entry(row, count, last_seq, expected_prev)
    for kind in COLUMNS_BY_KIND:
        _check_typed(conn, kind, since=start)


def _record(ledger: Ledger, *, success: bool, detail: str) -> None:
    try:
        ledger.audit(event_type="ledger_verified", success=success, obj="ledger", detail=detail)
    except LedgerError:
        if success:
            raise
