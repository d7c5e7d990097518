"""Publish a response package and record it in the ledger, so that neither outlives the other.

The protocol (each step is a checkpoint a test can kill the process at):

1. ``start``      — a left-over staging folder of this package is recovered first;
2. ``staged``     — the package is written, complete, into a staging folder next to
   ``final_dir`` (a large matched.xlsx is written by a child process, see
   :mod:`lastknown.disclose.xlsx_job`, which has finished by now: the ledger's write
   lock is never held while waiting for it), the internal record into its staging
   folder in the archive (:mod:`lastknown.disclose.record`);
3. ``recorded``   — in ONE ledger transaction, under the ledger's write lock: the
   policy's ledger-dependent rules re-checked
   (:func:`lastknown.disclose.policy.recheck_in_transaction` — batch id not yet
   recorded, the official's cap), the batch record, one entry per disclosure, a
   ``disclosure_recorded`` audit event; the chain's new head is known before commit
   (hashes are deterministic), so
4. ``summarised`` — the package's ``receipt.json`` and the record's ``record.json`` get
   ``ledger_head`` (``{"sequence", "hash"}``) and are fsynced, still before the commit;
5. ``committed``  — the transaction commits;
6. ``published``  — the record is renamed into the archive, then staging to ``final_dir``
   (each atomic on its filesystem).

A crash before 5 leaves no ledger entries and no published package (the staging
folder and the staged record are discarded by :func:`recover`); a crash after 5 leaves the
entries and a complete staging folder whose receipt's head is in the ledger, which
:func:`recover` renames into place, record first. `process` finds interrupted runs
through the publish journal (:mod:`lastknown.disclose.journal`);
:func:`recover_interrupted` settles every one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from lastknown.disclose.journal import (
    HeldRecord,
    RunRecord,
    ledger_identity,
    lock_record,
    record_path,
    record_paths,
    remove_scratch,
)
from lastknown.disclose.ledger import EntryRef, Ledger
from lastknown.disclose.ledger.anchors import anchor_once, head_record
from lastknown.disclose.ledger.chain import canonical_json
from lastknown.disclose.ledger.store import PreparedEntries, default_origin, prepare_columns
from lastknown.disclose.policy import (
    DISCLOSED_FIELDS,
    LEGAL_AUTHORITY,
    BatchLike,
    PolicyDecision,
    agency_key,
    recheck_in_transaction,
)
from lastknown.disclose.receipt import receipt_head, summary_from_receipt
from lastknown.disclose.record import (
    begin_record,
    deliver_record,
    discard_record,
    read_record,
    seal,
    write_record_tables,
)
from lastknown.engines.base import Engine
from lastknown.errors import LastknownError, LedgerError, PipelineError, PolicyError
from lastknown.outdirs import fsync_dir
from lastknown.request.reasons import reason_counts_sql

STEPS = ("start", "staged", "recorded", "summarised", "committed", "published")
_STREAM_ROWS = 20_000
#: At most this many disclosure entries are prepared before the ledger's write lock, while
#: the spreadsheet child runs (about 1 KB each in memory: ~500 MB); a larger batch's other
#: entries are prepared and appended in chunks under the lock, so publishing never holds a
#: Python object per disclosure of a national batch (docs/LEDGER.md, step 1).
PREPARED_DISCLOSURES = 500_000
#: Recent TINs read from the ledger into the engine at a time (:func:`_recently_disclosed`).
RECENT_TINS_CHUNK = 100_000
_RECENT_TINS = "ledger_recent_tins"


class PendingPackage(Protocol):
    """A package still being written (:class:`lastknown.disclose.package.StagedPackage`)."""

    def finish_summary(self) -> dict[str, Any]: ...
    def cancel(self) -> None: ...


class PublishBatch(BatchLike, Protocol):
    """The batch fields recorded in the ledger (``request.batch.Batch`` fits)."""

    @property
    def official_title(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def certification(self) -> str: ...


class IntakeLike(Protocol):
    """What publish needs of the intake result."""

    @property
    def row_count(self) -> int: ...
    @property
    def sha256(self) -> str: ...


class ValidationLike(Protocol):
    """What publish needs of the validation result."""

    @property
    def valid_count(self) -> int: ...
    @property
    def rejected_count(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Publication:
    """A published package: where, its final summary, its place in the ledger."""

    final_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    head: EntryRef
    recovered: bool = False


def staging_dir_for(final_dir: Path) -> Path:
    """The staging folder of a package: a hidden sibling, so the rename stays on one disk."""
    return final_dir.parent / f".{final_dir.name}.staging"


def _published(ledger: Ledger, final_dir: Path) -> Publication | None:
    """The package already at ``final_dir`` when the ledger holds the head its receipt names."""
    anchored = receipt_head(final_dir) if final_dir.is_dir() else None
    if anchored is None or ledger.entry_hash(anchored[0]) != anchored[1]:
        return None
    return Publication(final_dir=final_dir, summary=summary_from_receipt(final_dir),
                       head=EntryRef(seq=anchored[0], hash=anchored[1]), recovered=True)


def recover(*, ledger: Ledger, final_dir: Path) -> Publication | None:
    """Finish or discard a staging folder left by a crash; return the publication if finished.

    >>> recover(ledger=open_ledger(None), final_dir=Path("response"))  # doctest: +SKIP
    """
    staging = staging_dir_for(final_dir)
    if not staging.is_dir():
        return None
    anchored = receipt_head(staging)
    if anchored is None or ledger.entry_hash(anchored[0]) != anchored[1]:
        discard_record(staging)  # no receipt, or its head never committed: nothing disclosed
        shutil.rmtree(staging)
        return None
    seq, head = anchored
    if final_dir.exists():
        raise LedgerError(f"{final_dir} exists and {staging} holds the committed package of "
                          f"ledger entry #{seq}; move {final_dir} away and run again to publish")
    record = deliver_record(staging)
    summary = read_record(record) if record is not None else summary_from_receipt(staging)
    os.rename(staging, final_dir)
    fsync_dir(final_dir.parent)
    return Publication(final_dir=final_dir, summary=summary, head=EntryRef(seq=seq, hash=head),
                       recovered=True)


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """What settling one interrupted run did.

    ``outcome``: ``delivered`` (a committed package renamed into place), ``removed`` (an
    uncommitted package deleted), ``cleaned`` (nothing staged; scratch removed),
    ``in progress`` (a live run holds it: left alone) or ``other ledger`` (recorded
    against another ledger: left for ``recover`` with that ledger).
    """

    batch_id: str
    final_dir: Path
    outcome: str
    publication: Publication | None = None

    def describe(self) -> str:
        """One line for the operator (batch id and folder only: never a name or TIN)."""
        what = {"delivered": "committed package delivered to {d}",
                "removed": "uncommitted package removed (nothing was disclosed); {d} not created",
                "cleaned": "working files removed ({d})",
                "in progress": "still running in another process ({d}): left alone",
                "other ledger": "recorded against another ledger ({d}): run `lastknown "
                                "recover` with that --ledger"}[self.outcome]
        return f"batch {self.batch_id}: " + what.format(d=self.final_dir)


def _anchor_delivered(anchors: Path | None, ledger: Ledger,
                      publication: Publication | None) -> None:
    """A package recovery delivered: its head goes into the anchor file, as publish's would
    have (unless the dead run got that far)."""
    if anchors is not None and publication is not None:
        anchor_once(anchors, ledger, publication.head)


def _settle(ledger: Ledger, held: HeldRecord, identity: str,
            anchors: Path | None = None) -> Recovery | None:
    """Finish or undo the dead run whose record ``held`` is; release the record if settled.

    A package it delivers has its ledger head added to the ``anchors`` file."""
    found = held.found
    if found is None:  # empty or cut short: the run died before creating anything
        held.release()
        return None
    final = Path(found.final_dir)
    if found.ledger != identity:
        held.release(remove=False)
        return Recovery(batch_id=found.batch_id, final_dir=final, outcome="other ledger")
    staged = staging_dir_for(final).is_dir()
    try:
        publication = recover(ledger=ledger, final_dir=final)
    except BaseException:
        held.release(remove=False)  # kept: a rerun settles it once the cause is fixed
        raise
    remove_scratch(found)
    held.release()
    if publication is None and not staged:  # killed after the rename: delivered already
        publication = _published(ledger, final)
    _anchor_delivered(anchors, ledger, publication)
    outcome = "delivered" if publication else "removed" if staged else "cleaned"
    return Recovery(batch_id=found.batch_id, final_dir=final, outcome=outcome,
                    publication=publication)


def recover_interrupted(ledger: Ledger, journal: Path, *, outs: Sequence[Path] = (),
                        anchors: Path | None = None) -> list[Recovery]:
    """Settle every interrupted publish of this ledger: deliver what committed, remove the rest.

    Reads the publish journal (:mod:`lastknown.disclose.journal`); ``outs`` are response
    folders whose staging folders should be settled too (e.g. from before the journal).
    A run still alive is left alone. The head of each package delivered goes into the
    ``anchors`` file (the deployment's) unless it is there already. Raises
    :class:`LedgerError` when a committed package cannot be delivered because its folder
    exists (the record is kept for a rerun).

    >>> recover_interrupted(open_ledger("ledger.sqlite"), Path("publishing"))  # doctest: +SKIP
    [Recovery(batch_id='B-7', final_dir=PosixPath('response'), outcome='delivered', ...)]
    """
    identity, done = ledger_identity(ledger), []
    for path in record_paths(journal):
        held = lock_record(path)
        if held is None:
            found = RunRecord.parse(path.read_text(encoding="utf-8", errors="replace"))
            if found is not None:
                done.append(Recovery(batch_id=found.batch_id,
                                     final_dir=Path(found.final_dir), outcome="in progress"))
            continue
        settled = _settle(ledger, held, identity, anchors)
        if settled is not None:
            done.append(settled)
    for out in outs:
        if staging_dir_for(out).is_dir():
            publication = recover(ledger=ledger, final_dir=out)
            _anchor_delivered(anchors, ledger, publication)
            batch_id = str(publication.summary.get("batch_id", "?")) if publication else "?"
            done.append(Recovery(batch_id=batch_id, final_dir=out,
                                 outcome="delivered" if publication else "removed",
                                 publication=publication))
    return done


@dataclass(frozen=True, kw_only=True)
class PublishRun:
    """A run of one batch, registered in the journal (see :func:`publish_run`)."""

    #: The run's private working folder (removed when the run ends or is recovered).
    scratch: Path
    #: What settling an interrupted earlier run of the same batch did, if there was one.
    previous: Recovery | None = None


@contextmanager
def publish_run(ledger: Ledger, journal: Path, *, batch_id: str, final_dir: Path,
                anchors: Path | None = None) -> Iterator[PublishRun]:
    """Register a run of ``batch_id`` in the journal for its whole length.

    First settles an interrupted run of the same batch (so a committed package is
    delivered before anything else happens); refuses (:class:`PolicyError`, exit 3) when
    another live process is answering the same batch id. On leaving, the scratch folder
    and the record are removed; a package left in staging by an error is settled like an
    interrupted run's. A package delivered by settling gets its head into ``anchors``.

    >>> with publish_run(ledger, Path("publishing"), batch_id="B-7",
    ...                  final_dir=Path("response")) as run:  # doctest: +SKIP
    ...     build_index(..., out=run.scratch / "index")
    """
    path = record_path(journal, batch_id)
    previous = None
    for _attempt in range(2):
        held = lock_record(path)
        if held is None:
            raise PolicyError(f"batch {batch_id} is being answered by another run right now "
                              f"(journal record {path}); a batch is answered once — wait for "
                              "that run to finish")
        if held.found is None:
            break
        previous = _settle(ledger, held, ledger_identity(ledger), anchors)  # releases it
        if previous is not None and previous.outcome == "other ledger":
            raise LedgerError(f"batch {batch_id} has an interrupted run recorded against "
                              f"another ledger (journal record {path}); run `lastknown "
                              "recover` with that --ledger first")
    else:
        raise PolicyError(f"batch {batch_id} is being answered by another run right now")
    final = final_dir.absolute()
    scratch = journal / f"{path.stem}.scratch"
    record = RunRecord(batch_id=batch_id, final_dir=str(final),
                       staging=str(staging_dir_for(final)), scratch=str(scratch),
                       ledger=ledger_identity(ledger), started_at=datetime.now(UTC).isoformat(),
                       pid=os.getpid())
    try:
        held.write(record)
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
    except BaseException:
        remove_scratch(record)
        held.release()
        raise
    try:
        yield PublishRun(scratch=scratch, previous=previous)
    finally:
        remove_scratch(record)
        if staging_dir_for(final).is_dir():  # an error left it: settle as if interrupted
            try:
                _anchor_delivered(anchors, ledger, recover(ledger=ledger, final_dir=final))
            except LastknownError:
                held.release(remove=False)  # `lastknown recover` finishes it later
                raise
        held.release()


def _disclosure_sql(engine: Engine, *, limit: int | None = None, offset: int = 0) -> str:
    """The matched rows in ``source_row`` order (unique: a slice is always the same rows)."""
    statute = "v.statute" if engine.table_exists("request_valid") else "NULL"
    join = ("LEFT JOIN request_valid v ON v.source_row = m.source_row"
            if statute != "NULL" else "")
    window = (f" LIMIT {int(limit)}" if limit is not None else "") + (
        f" OFFSET {int(offset)}" if offset else "")
    return ("SELECT m.request_row_id, m.tin, m.address_tax_year, m.street, m.unit, m.city, "
            f"m.state, m.zip, {statute} AS statute FROM match_result m {join} "
            "WHERE m.outcome = 'M' ORDER BY m.source_row" + window)


def _rejections_by_reason(engine: Engine) -> dict[str, int]:
    if not engine.table_exists("request_rejected"):
        return {}
    rows = engine.fetchall(reason_counts_sql("request_rejected"))
    return {str(code): int(n) for code, n in rows}


def _recently_disclosed(engine: Engine, ledger: Ledger, *, agency: str, days: int,
                        now: datetime) -> list[str]:
    """request_row_ids of this batch's matches disclosed to the same agency in the last days.

    The ledger's recent TINs for the agency go into the engine :data:`RECENT_TINS_CHUNK` at a
    time (a national ledger holds millions), and the engine joins them to the matches.
    """
    from lastknown.disclose.ledger.models import disclosures

    recent = disclosures.c.disclosed_at >= now - timedelta(days=days)
    with ledger.connect() as conn:  # the recipients' spellings are few: compare them here
        same = [name for name in conn.execute(sa.select(disclosures.c.recipient).distinct()
                                              .where(recent)).scalars()
                if agency_key(str(name)) == agency_key(agency)]
        if not same:
            return []
        import pyarrow as pa

        tins = conn.execute(sa.select(disclosures.c.tin).distinct().where(
            recent, disclosures.c.recipient.in_(same)).execution_options(
                yield_per=RECENT_TINS_CHUNK)).scalars()
        read = 0
        for part in tins.partitions():
            engine.register_arrow(f"{_RECENT_TINS}_part", pa.table(
                {"tin": pa.array([str(t) for t in part], pa.string())}))
            engine.execute((f"INSERT INTO {_RECENT_TINS} " if read else
                            f"CREATE OR REPLACE TABLE {_RECENT_TINS} AS ")
                           + f"SELECT tin FROM {_RECENT_TINS}_part")
            engine.unregister(f"{_RECENT_TINS}_part")
            read += len(part)
    if not read:
        return []
    rows = engine.fetchall(f"SELECT m.request_row_id FROM match_result m JOIN {_RECENT_TINS} r "
                           "ON r.tin = m.tin WHERE m.outcome = 'M' ORDER BY m.source_row")
    return [str(r[0]) for r in rows]


def _disclosure_entries(engine: Engine, *, batch_id: str, agency: str, at: datetime,
                        limit: int | None = None, offset: int = 0,
                        ) -> Iterator[PreparedEntries]:
    """The matched rows' disclosure entries, prepared column-wise a stream chunk at a time
    (:func:`~lastknown.disclose.ledger.store.prepare_columns`). Every field but the row's
    id, TIN, address year, address digest and statute is the batch's."""
    constants = {"batch_id": batch_id, "fields": list(DISCLOSED_FIELDS),
                 "legal_authority": LEGAL_AUTHORITY, "recipient": agency, "disclosed_at": at}
    for chunk in engine.stream_arrow(_disclosure_sql(engine, limit=limit, offset=offset),
                                     _STREAM_ROWS):
        col = {name: chunk.column(name).to_pylist() for name in chunk.schema.names}
        yield prepare_columns("disclosure", constants, {
            "request_row_id": [str(v) for v in col["request_row_id"]],
            "tin": [str(v) for v in col["tin"]],
            "address_tax_year": [int(v) for v in col["address_tax_year"]],
            "address_sha256": [address_sha256(a) for a in zip(
                *(col[k] for k in ("street", "unit", "city", "state", "zip")), strict=True)],
            "request_statute": col["statute"]})


def address_sha256(address: Sequence[Any]) -> str:
    """The ledger's digest of a disclosed address: SHA-256 of the canonical JSON list of
    its fields (street, unit, city, state, zip).

    >>> address_sha256(["1 Main St", None, "Town", "IL", "62701"])[:12]
    'd1c39ac2afb9'
    """
    text = "[" + ",".join("null" if v is None else encode_basestring(v) if isinstance(v, str)
                          else canonical_json(v) for v in address) + "]"
    return hashlib.sha256(text.encode()).hexdigest()


def _batch_record(*, batch: PublishBatch, engine: Engine, summary: dict[str, Any],
                  intake: IntakeLike, validation: ValidationLike, decision: PolicyDecision,
                  counts: tuple[int, int], times: tuple[datetime, datetime], operator: str,
                  origin: str, package: str,
                  release: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id, "agency": batch.requesting_agency,
        "requesting_official": batch.requesting_official,
        "official_title": batch.official_title, "certified": bool(batch.certified),
        "certification": batch.certification, "statutes": list(batch.authorised_statutes),
        "reason": batch.reason, "source_file": str(summary.get("request_file", "")),
        "source_sha256": intake.sha256, "rows_total": intake.row_count,
        "rows_valid": validation.valid_count, "rows_rejected": validation.rejected_count,
        "rows_disclosed": counts[0], "rows_unmatched": counts[1],
        "rejections_by_reason": _rejections_by_reason(engine),
        # the model and the learned estimates that answered the batch ride with the policy
        "policy": {**decision.as_summary(),
                   "model": {"model_id": summary.get("model_id"),
                             "estimates": summary.get("estimates")},
                   **({"release": dict(release)} if release else {})},
        "received_at": times[0], "finished_at": times[1], "operator": operator,
        "origin": origin, "package": package,
    }


def publish(*, ledger: Ledger, batch: PublishBatch, engine: Engine, final_dir: Path,
            summary: dict[str, Any],
            write_package: Callable[[Path, dict[str, Any]], dict[str, Any] | PendingPackage],
            intake: IntakeLike, validation: ValidationLike, policy_decision: PolicyDecision,
            operator: str, received_at: datetime, archive: Path, origin: str | None = None,
            checkpoint: Callable[[str], None] | None = None,
            anchors: Path | None = None, release: dict[str, Any] | None = None) -> Publication:
    """Write the package, record batch + disclosures in the ledger, then publish by rename.

    ``write_package(staging, summary)`` returns the package's summary, or a
    :class:`PendingPackage` that is finished inside the ledger transaction (after the
    disclosures are added, before the commit) and cancelled on any error. The batch's
    internal record goes to ``archive`` (:mod:`lastknown.disclose.record`).
    ``checkpoint(step)`` is called after each step in :data:`STEPS` (tests inject
    failures there). Returns the publication; its summary carries ``ledger_head``.
    ``anchors`` is the deployment's anchor file: the committed head is appended to it.
    ``release`` (who submitted, who approved: :func:`lastknown.workflow.release`) is
    recorded in the batch record's ``policy`` as ``release``.

    >>> publish(ledger=ledger, batch=batch, engine=engine, final_dir=Path("response"),
    ...         summary={}, write_package=lambda d, s: write_package(engine, d, summary=s),
    ...         intake=intake, validation=validation, policy_decision=decision,
    ...         operator="jdoe", received_at=received)  # doctest: +SKIP
    """
    step = checkpoint or (lambda _name: None)
    recovered = recover(ledger=ledger, final_dir=final_dir)
    if recovered is not None:
        _anchor_delivered(anchors, ledger, recovered)
        return recovered
    if final_dir.exists():
        raise LedgerError(f"{final_dir} already exists: a response package is never "
                          "overwritten; choose a new output folder")
    step("start")
    now = datetime.now(UTC)
    agency, origin = batch.requesting_agency, origin or default_origin()
    disclosed = int(engine.fetchall("SELECT count(*) FROM match_result WHERE outcome = 'M'")[0][0])
    unmatched = int(engine.fetchall("SELECT count(*) FROM match_result WHERE outcome <> 'M'")[0][0])
    recent = _recently_disclosed(engine, ledger, agency=agency,
                                 days=policy_decision.recent_disclosure_days, now=now)
    summary = {**summary, "legal_authority": LEGAL_AUTHORITY,
               "disclosed_fields": list(DISCLOSED_FIELDS),
               "recently_disclosed": {"days": policy_decision.recent_disclosure_days,
                                      "rows": len(recent), "request_row_ids": recent}}
    staging = staging_dir_for(final_dir)
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    summary_written = False
    pending: PendingPackage | None = None
    try:
        record_staging = begin_record(staging, archive=archive, batch_id=batch.batch_id)
        staged = write_package(staging, summary)
        write_record_tables(engine, record_staging)
        # while the spreadsheet child runs: the disclosure entries' typed rows and payloads
        # (they need no lock), so that the write lock is held only to chain and insert
        # them; beyond PREPARED_DISCLOSURES, under the lock, a chunk at a time
        ahead = min(disclosed, PREPARED_DISCLOSURES)
        entries = PreparedEntries(kind="disclosure", rows=[
            row for part in _disclosure_entries(engine, batch_id=batch.batch_id, agency=agency,
                                                at=now, limit=ahead) for row in part.rows])
        if isinstance(staged, dict):
            package_summary = dict(staged)
        else:  # the spreadsheet child finishes BEFORE the ledger's write lock is taken
            pending = staged
            package_summary = dict(pending.finish_summary())
        step("staged")
        record = _batch_record(batch=batch, engine=engine, summary=summary, intake=intake,
                               validation=validation, decision=policy_decision,
                               counts=(disclosed, unmatched), times=(received_at, now),
                               operator=operator, origin=origin, package=final_dir.name,
                               release=release)
        try:
            with ledger.transaction() as tx:
                recheck_in_transaction(tx.conn, policy_decision, batch, now=now)
                batch_entry = tx.add("batch", record)
                written = tx.add_prepared(entries)
                if disclosed > ahead:
                    for part in _disclosure_entries(engine, batch_id=batch.batch_id,
                                                    agency=agency, at=now, offset=ahead):
                        written += tx.add_prepared(part)
                if written != disclosed:
                    raise PipelineError(f"match_result changed while publishing: {disclosed} "
                                        f"matches counted, {written} recorded; nothing was "
                                        "committed")
                tx.audit(event_type="disclosure_recorded", success=True,
                         obj=f"batch {batch.batch_id}",
                         detail=f"{written} disclosures to {agency}",
                         user=operator, origin=origin, at=now)
                step("recorded")
                head = tx.head
                package_summary.update({"ledger_head": head_record(head),
                                        "ledger_batch_entry": batch_entry.seq})
                summary_written = True
                package_summary = seal(staging, record_staging, package_summary)
                step("summarised")
        except PolicyError as exc:  # rolled back; the refusal itself is recorded
            ledger.audit(event_type="batch_rejected", success=False,
                         obj=f"batch {batch.batch_id}",
                         detail="at commit: " + "; ".join(
                             line.strip().removeprefix("- ")
                             for line in str(exc).splitlines()[1:]),
                         user=operator, origin=origin)
            raise
    except BaseException:
        if pending is not None:
            pending.cancel()
        if not summary_written:  # the transaction cannot have committed: drop the staging
            discard_record(staging)
            shutil.rmtree(staging, ignore_errors=True)
        raise  # otherwise recover() decides from the ledger, on the next run
    step("committed")
    if anchors is not None:  # ANCHOR: the committed head, kept outside the database
        from lastknown.disclose.ledger.anchors import append_anchor

        append_anchor(anchors, ledger, head)
    deliver_record(staging)
    os.rename(staging, final_dir)
    fsync_dir(final_dir.parent)
    step("published")
    return Publication(final_dir=final_dir, summary=package_summary, head=head)
