"""A prepared batch into the held store and back (:mod:`lastknown.disclose.held`), and its
state kept in step with the ledger.

:func:`hold` writes what :func:`lastknown.pipeline.run_stages` produced — the package,
the tables, the batch, the decision, the summary — into a staging folder;
:func:`prepared_from` rebuilds it for a release in another process, and
:func:`copy_package` hands the held package files to the publish protocol, checking each
file's SHA-256 against the one taken at prepare. :func:`reconcile` writes into
``state.json`` a release or a denial the ledger holds but the state does not yet say.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lastknown.answer import Prepared
from lastknown.disclose import held
from lastknown.disclose.cells import sha256_file
from lastknown.disclose.held import BatchState
from lastknown.disclose.ledger import Ledger
from lastknown.disclose.ledger.models import audit_events, batches
from lastknown.disclose.ledger.store import batch_rows_in
from lastknown.engines.base import Engine
from lastknown.errors import LedgerError, PipelineError


@dataclass(frozen=True, kw_only=True)
class HeldIntake:
    """The intake facts publish needs (``IntakeLike``)."""

    row_count: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class HeldValidation:
    """The validation facts publish needs (``ValidationLike``)."""

    valid_count: int
    rejected_count: int


def hold(engine: Engine, staging: Path, prepared: Prepared, *, submitted_by: str,
         ledger: str, records_table: str | None = None) -> BatchState:
    """Write a prepared batch into ``staging`` (created here); return its held state."""
    from lastknown.disclose.package import write_package
    from lastknown.disclose.review import NAMES_TABLE, names_sql

    shutil.rmtree(staging, ignore_errors=True)  # a killed prepare's; we hold the batch's lock
    staging.mkdir(mode=0o700)
    (staging / held.PACKAGE).mkdir()
    counts = write_package(engine, staging / held.PACKAGE, summary=prepared.summary)
    package = {k: v for k, v in counts.summary.items() if k not in prepared.summary}
    if records_table is not None and engine.table_exists("match_explanation"):
        engine.execute(f"CREATE OR REPLACE TABLE {NAMES_TABLE} AS {names_sql(records_table)}")
    held.save_tables(engine, staging)
    batch = prepared.batch
    held.write_prepared(staging, {
        "batch": asdict(batch), "decision": asdict(prepared.decision),
        "summary": prepared.summary, "package": package,
        "intake": {"row_count": prepared.intake.row_count, "sha256": prepared.intake.sha256},
        "validation": {"valid_count": prepared.validation.valid_count,
                       "rejected_count": prepared.validation.rejected_count},
        "received_at": prepared.received.isoformat(), "ledger": ledger,
        "learned": prepared.learned.as_json() if prepared.learned is not None else None,
    })
    state = BatchState(
        batch_id=batch.batch_id, status="held", requesting_agency=batch.requesting_agency,
        requesting_official=batch.requesting_official, submitted_by=submitted_by,
        submitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rows_total=counts.total, rows_matched=counts.matched, rows_unmatched=counts.unmatched,
        rows_rejected=counts.rejected, request_sha256=prepared.intake.sha256)
    held.write_state(staging, state)
    return state


def prepared_from(data: dict[str, Any]) -> Prepared:
    """The :class:`Prepared` a held batch was made from (its tables are loaded separately)."""
    from lastknown.disclose.policy import PolicyDecision
    from lastknown.match.learn import LevelCounts
    from lastknown.request.batch import Batch

    b, d = dict(data["batch"]), dict(data["decision"])
    b["authorised_statutes"] = tuple(b["authorised_statutes"])
    d["statutes_allowed"] = tuple(d["statutes_allowed"])
    d["disclosed_fields"] = tuple(d["disclosed_fields"])
    learned = data.get("learned")
    return Prepared(
        batch=Batch(**b), decision=PolicyDecision(**d), summary=dict(data["summary"]),
        intake=HeldIntake(**data["intake"]), validation=HeldValidation(**data["validation"]),
        received=datetime.fromisoformat(data["received_at"]),
        learned=LevelCounts(counts=learned["counts"], batches=learned["batches"])
        if learned else None)


def copy_package(folder: Path, package: dict[str, Any]
                 ) -> Callable[[Path, dict[str, Any]], dict[str, Any]]:
    """A ``write_package`` for publish: the held files, each checked against its digest."""
    def write(staging: Path, summary: dict[str, Any]) -> dict[str, Any]:
        for name, digest in package["files_sha256"].items():
            shutil.copyfile(folder / held.PACKAGE / name, staging / name)
            if sha256_file(staging / name) != digest:
                raise PipelineError(f"held file {name} of {folder.name} changed since it was "
                                    "prepared; nothing was disclosed — prepare the batch again")
        return {**summary, **package}
    return write


def check_ledger(data: dict[str, Any], ledger: Ledger) -> None:
    """LedgerError unless the release uses the ledger the batch was checked against."""
    from lastknown.disclose.journal import ledger_identity

    if data.get("ledger") != ledger_identity(ledger):
        raise LedgerError(f"the batch was prepared against ledger {data.get('ledger')}, not "
                          f"{ledger.display_url}: release it with that --ledger")


def reconcile(ledger: Ledger, folder: Path) -> BatchState:
    """The batch's state, with a release or denial the ledger holds written into it."""
    state = held.read_state(folder)
    if state.status != "held":
        return state
    with ledger.connect() as conn:
        recorded = batch_rows_in(conn, state.batch_id, batches.c.operator,
                                 batches.c.finished_at, batches.c.policy, batches.c.package)
        denied = conn.execute(sa.select(audit_events.c.user_name, audit_events.c.event_time,
                                        audit_events.c.detail).where(
            audit_events.c.event_type == "batch_denied",
            audit_events.c.object == f"batch {state.batch_id}")).first()
    if recorded:
        row = recorded[0]
        approval = json.loads(row.policy).get("release") or {}
        intent = held.read_release(folder) or {}
        out = intent.get("out")
        state = state.decided("released", by=str(approval.get("approved_by") or row.operator),
                              at=_iso(row.finished_at),
                              released_to=out if out and Path(out).name == row.package
                              else str(row.package))
    elif denied is not None:
        state = state.decided("denied", by=str(denied.user_name), at=_iso(denied.event_time),
                              deny_reason=str(denied.detail))
    else:
        return state
    held.write_state(folder, state)
    held.drop_data(folder)
    return state


def _iso(value: datetime) -> str:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="seconds")
