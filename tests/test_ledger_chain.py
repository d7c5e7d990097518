"""The hash chain on SQLite and PostgreSQL: append-only, and every kind of tampering caught."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import GENESIS_HASH, Ledger, models, open_ledger
from lastknown.disclose.ledger.anchors import append_anchor
from lastknown.disclose.ledger.chain import entry_hash
from lastknown.disclose.ledger.verify import quick_verify, verify_anchored
from lastknown.errors import LedgerError, LedgerTamperedError
from test_ledger_fixtures import BACKENDS, ledger_at, synthetic_tin, tamper

FAKE_A, FAKE_B = "a" * 64, "b" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _disclosure(i: int) -> dict[str, object]:
    return {"batch_id": "B-1", "request_row_id": f"R{i}", "tin": synthetic_tin(i),
            "fields": ["street", "city"], "address_tax_year": 2024, "address_sha256": "0" * 64,
            "legal_authority": "26 U.S.C. 6103(i)(2)", "request_statute": None,
            "recipient": "Agency A", "disclosed_at": T0}


def _fill(ledger: Ledger) -> None:
    """Entries 1..6: audit, five disclosures (2..6), audit (7)."""
    with ledger.transaction() as tx:
        tx.audit(event_type="batch_received", success=True, obj="batch B-1", at=T0)
        tx.add_many("disclosure", (_disclosure(i) for i in range(5)))
        tx.audit(event_type="disclosure_recorded", success=True, obj="batch B-1", at=T0)


def _first_bad(ledger: Ledger) -> int:
    with pytest.raises(LedgerTamperedError) as caught:
        ledger.verify(record=False)
    found = re.search(r"first bad entry #(\d+)", str(caught.value))
    assert found, str(caught.value)
    return int(found.group(1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_clean_ledger_verifies_and_chains_from_genesis(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        _fill(ledger)
        report = ledger.verify(record=False)
        assert (report.entries, report.head_seq) == (7, 7)
        with ledger.connect() as conn:
            first = conn.exec_driver_sql(
                "SELECT seq, kind, payload, prev_hash, hash FROM ledger_entries WHERE seq = 1"
            ).one()
        assert first.prev_hash == GENESIS_HASH
        assert entry_hash(GENESIS_HASH, 1, first.kind, first.payload) == first.hash
        assert ledger.verify().head_seq == 7  # recording the check appends entry 8
        assert ledger.head().seq == 8


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_disclosures"])
def test_update_and_delete_are_refused(backend: str, table: str, tmp_path: Path) -> None:
    column = "seq" if table == "ledger_entries" else "entry_seq"
    with ledger_at(backend, tmp_path) as ledger:
        _fill(ledger)
        for statement in (f"UPDATE {table} SET {column} = {column} WHERE {column} = 3",
                          f"DELETE FROM {table} WHERE {column} = 3"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
                    ledger.engine.begin() as conn:
                conn.exec_driver_sql(statement)
        assert ledger.verify(record=False).entries == 7


TAMPERING = {
    "edited payload": (
        ["UPDATE ledger_entries SET payload = replace(payload, 'R2', 'R9') WHERE seq = 4"], 4),
    "edited hash": (["UPDATE ledger_entries SET hash = '{FAKE_A}' WHERE seq = 3"], 3),
    "deleted entry": (["DELETE FROM ledger_disclosures WHERE entry_seq = 4",
                       "DELETE FROM ledger_entries WHERE seq = 4"], 5),
    "deleted last entries": (["DELETE FROM ledger_audit_events WHERE entry_seq = 7",
                              "DELETE FROM ledger_entries WHERE seq = 7"], None),
    "reordered entries": (["UPDATE ledger_entries SET seq = 100 WHERE seq = 3",
                           "UPDATE ledger_entries SET seq = 3 WHERE seq = 4",
                           "UPDATE ledger_entries SET seq = 4 WHERE seq = 100"], 3),
    "inserted entry": (["UPDATE ledger_entries SET seq = seq + 100 WHERE seq >= 4",
                        "UPDATE ledger_entries SET seq = seq - 99 WHERE seq >= 100",
                        "INSERT INTO ledger_entries (seq, kind, payload, prev_hash, hash) "
                        f"SELECT 4, kind, payload, prev_hash, '{FAKE_B}' FROM "
                        "ledger_entries WHERE seq = 5"], 4),
    "edited typed row": (
        ["UPDATE ledger_disclosures SET recipient = 'Agency B' WHERE entry_seq = 5"], 5),
    "deleted typed row": (["DELETE FROM ledger_disclosures WHERE entry_seq = 6"], 6),
    "added typed row": (["INSERT INTO ledger_disclosures SELECT 99, batch_id, request_row_id, "
                         "tin, fields, address_tax_year, address_sha256, legal_authority, "
                         "request_statute, recipient, disclosed_at FROM ledger_disclosures "
                         "WHERE entry_seq = 2"], 99),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_verify_names_the_first_bad_entry(backend: str, kind: str, tmp_path: Path) -> None:
    statements, bad = TAMPERING[kind]
    with ledger_at(backend, tmp_path) as ledger:
        _fill(ledger)
        anchor = {7: ledger.head().hash}  # the head a recipient holds in summary.json
        tamper(ledger, *statements)
        if bad is None:  # truncating the tail leaves a valid chain: only the anchor tells
            assert ledger.verify(record=False).entries == 6
            with pytest.raises(LedgerTamperedError,
                               match="#7 anchored in the anchors given is missing"):
                ledger.verify(anchors=anchor, record=False)
        else:
            assert _first_bad(ledger) == bad


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_recomputed_chain_is_caught_by_an_anchor(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        _fill(ledger)
        anchor = {7: ledger.head().hash}
        with ledger.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT seq, kind, payload FROM ledger_entries ORDER BY seq").all()
        statements, prev = [], GENESIS_HASH
        for seq, kind, payload in rows:  # the attacker edits entry 3 and rehashes everything
            if seq == 3:
                payload = payload.replace("R1", "R8")
            digest = entry_hash(prev, seq, kind, payload)
            statements.append(f"UPDATE ledger_entries SET payload = '{payload}', "
                              f"prev_hash = '{prev}', hash = '{digest}' WHERE seq = {seq}")
            prev = digest
        statements.append("UPDATE ledger_disclosures SET request_row_id = 'R8' "
                          "WHERE entry_seq = 3")
        tamper(ledger, *statements)
        assert ledger.verify(record=False).entries == 7  # self-consistent forgery...
        with pytest.raises(LedgerTamperedError, match="first bad entry #7"):
            ledger.verify(anchors=anchor, record=False)  # ...but not the recipient's copy


@pytest.mark.parametrize("backend", BACKENDS)
def test_times_in_any_zone_verify_as_the_same_instant(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        with ledger.transaction() as tx:
            tx.audit(event_type="x", success=True, obj="o",
                     at=datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=-5))))
        assert ledger.verify(record=False).entries == 1
        with ledger.connect() as conn:
            payload = conn.exec_driver_sql("SELECT payload FROM ledger_entries").scalar_one()
        assert '"event_time":"2026-01-01T14:00:00.000000Z"' in payload


@pytest.mark.parametrize("backend", BACKENDS)
def test_awkward_values_go_in_and_come_back_as_given(backend: str, tmp_path: Path) -> None:
    """The bulk append (COPY on PostgreSQL, executemany on SQLite) keeps every value:
    tabs, newlines, backslashes, quotes, non-Latin text, NULL; times as the same instant."""
    awkward = ["R\t1", "R\n2", "R\\N", 'R"4,', "R-Ærøskøbing-中文", "\\."]
    statutes = ["8 U.S.C. 1253\tx", None, "\\N", "", "§ 1326(a)", "a\r\nb"]
    with ledger_at(backend, tmp_path) as ledger:
        with ledger.transaction() as tx:
            pairs = enumerate(zip(awkward, statutes, strict=True))
            tx.add_many("disclosure", ({**_disclosure(i), "request_row_id": rid,
                                        "request_statute": statute} for i, (rid, statute) in pairs))
        assert ledger.verify(record=False).entries == len(awkward)
        with ledger.connect() as conn:
            table = models.disclosures
            rows = conn.execute(sa.select(table.c.request_row_id, table.c.request_statute,
                                          table.c.disclosed_at).order_by(table.c.entry_seq)).all()
    assert [r[0] for r in rows] == awkward
    assert [r[1] for r in rows] == statutes
    assert {r[2].replace(tzinfo=r[2].tzinfo or UTC) for r in rows} == {T0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_transaction_appends_nothing(backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        _fill(ledger)
        with pytest.raises(RuntimeError), ledger.transaction() as tx:
            tx.audit(event_type="x", success=True, obj="o")
            raise RuntimeError("crash")
        assert ledger.head().seq == 7
        assert ledger.verify(record=False).entries == 7


def test_only_a_writer_creates_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.sqlite"
    with pytest.raises(LedgerError, match="no ledger at"):
        open_ledger(path)
    assert not (tmp_path / "new").exists()
    ledger = open_ledger(path, create=True)
    ledger.audit(event_type="x", success=True, obj="o")
    ledger.close()
    reopened = open_ledger(path)
    assert reopened.head().seq == 1  # migrations to head are idempotent on reopen
    reopened.close()


def test_an_unusable_url_is_a_ledger_error() -> None:
    with pytest.raises(LedgerError, match="unsupported database|not a database URL"):
        open_ledger("nosuchdb+driver://x/y")


# -- anchors kept outside the database (issue 12 item 4) --------------------------------


def _anchored_batches(ledger: Ledger, anchors: Path, batches: int = 3, rows: int = 25) -> int:
    """``batches`` transactions of ``rows`` disclosures + an audit event, each anchored."""
    for b in range(batches):
        with ledger.transaction() as tx:
            tx.add_many("disclosure", (_disclosure(b * rows + i) for i in range(rows)))
            tx.audit(event_type="disclosure_recorded", success=True, obj=f"batch {b}", at=T0)
            head = tx.head
        append_anchor(anchors, ledger, head)
    return ledger.head().seq


def _rehash_from(ledger: Ledger, seq_edited: int) -> list[str]:
    """The attacker's statements: edit one entry and its typed row, recompute every hash."""
    with ledger.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT seq, kind, payload FROM ledger_entries ORDER BY seq").all()
    statements, prev = [], GENESIS_HASH
    for seq, kind, payload in rows:
        if seq == seq_edited:
            payload = payload.replace('"recipient":"Agency A"', '"recipient":"Agency Z"')
            statements.append("UPDATE ledger_disclosures SET recipient = 'Agency Z' "
                              f"WHERE entry_seq = {seq}")
        digest = entry_hash(prev, seq, kind, payload)
        statements.append(f"UPDATE ledger_entries SET payload = '{payload}', "
                          f"prev_hash = '{prev}', hash = '{digest}' WHERE seq = {seq}")
        prev = digest
    return statements


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_last_50_entries_cut_from_every_table_are_caught_by_the_anchor_file(
        backend: str, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    with ledger_at(backend, tmp_path) as ledger:
        head = _anchored_batches(ledger, anchors)
        assert head == 78
        cut = head - 50
        tamper(ledger, *(f"DELETE FROM {t} WHERE entry_seq > {cut}" for t in
                         ("ledger_disclosures", "ledger_batches", "ledger_audit_events")),
               f"DELETE FROM ledger_entries WHERE seq > {cut}")
        assert ledger.verify(record=False).entries == cut  # the shortened chain is valid...
        with pytest.raises(LedgerTamperedError,
                           match=r"first bad entry #52: entry #52 anchored in anchors.jsonl "
                                 r"line 2 is missing: the newest entries were cut off"):
            verify_anchored(ledger, [anchors], record=False)  # ...but not what was anchored
        with pytest.raises(LedgerTamperedError, match="fails the check before writing"):
            quick_verify(ledger, anchors)
        assert ledger.head().seq == cut


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_recomputed_chain_is_caught_by_the_anchor_file(backend: str, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    with ledger_at(backend, tmp_path) as ledger:
        _anchored_batches(ledger, anchors)
        tamper(ledger, *_rehash_from(ledger, 3))
        assert ledger.verify(record=False).entries == 78  # a self-consistent forgery
        with pytest.raises(LedgerTamperedError,
                           match=r"first bad entry #26: entry #26 hash [0-9a-f]{64} differs "
                                 r"from the anchor [0-9a-f]{64} in anchors.jsonl line 1"):
            verify_anchored(ledger, [anchors], record=False)
        with pytest.raises(LedgerTamperedError, match="first bad entry #26"):
            quick_verify(ledger, anchors)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quick_verify_passes_a_clean_ledger_and_catches_a_tail_edit_or_a_gap(
        backend: str, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    with ledger_at(backend, tmp_path) as ledger:
        _anchored_batches(ledger, anchors)
        quick_verify(ledger, anchors)
        quick_verify(ledger, None, tail=1)
        tamper(ledger, "UPDATE ledger_disclosures SET recipient = 'Agency Z' "
                       "WHERE entry_seq = 70")
        with pytest.raises(LedgerTamperedError, match="first bad entry #70: ledger_disclosures "
                                                      "row for entry #70 differs"):
            quick_verify(ledger, None, tail=10)
        quick_verify(ledger, None, tail=5)  # only the newest entries are rechecked...
        tamper(ledger, "DELETE FROM ledger_disclosures WHERE entry_seq = 10",
               "DELETE FROM ledger_entries WHERE seq = 10")
        with pytest.raises(LedgerTamperedError, match=r"77 entries are numbered #1\.\.#78: 1 "
                                                      "were deleted"):
            quick_verify(ledger, None, tail=5)  # ...but a gap anywhere is counted
        assert ledger.head().seq == 78


def test_a_driver_with_named_parameters_gets_the_same_rows(tmp_path: Path) -> None:
    """The bulk append's other path: a named paramstyle has no positional order, so the
    rows go through SQLAlchemy's own executemany, with the same values as the fast path."""
    from lastknown.disclose.ledger.store import _bulk_insert

    rows = [(1, "audit", '{"a":1}', GENESIS_HASH, FAKE_A), (2, "audit", '{"b":2}', FAKE_A, FAKE_B)]
    names = ("seq", "kind", "payload", "prev_hash", "hash")
    got = {}
    for style in ("qmark", "named"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / style}.sqlite", paramstyle=style)
        try:
            models.metadata.create_all(engine, tables=[models.entries])
            with engine.begin() as conn:
                _bulk_insert(conn, models.entries, names, rows)
                got[style] = conn.execute(sa.select(*[models.entries.c[n] for n in names])
                                          .order_by(models.entries.c.seq)).all()
        finally:
            engine.dispose()
    assert [tuple(r) for r in got["named"]] == [tuple(r) for r in got["qmark"]] == rows
