"""Prepare → review → release: a person other than the submitter approves every disclosure.

* :func:`prepare` — intake, policy gate, validation, matching; the response package is
  built and *held* in ``<archive>/held/<batch>/`` (:mod:`lastknown.disclose.held`).
  Nothing is recorded as disclosed (audit events ``batch_received``, ``batch_prepared``).
* :func:`review` — the officer's page (:mod:`lastknown.disclose.review`); never a TIN.
* :func:`release` — by an approver other than the submitter: the publish protocol
  (:mod:`lastknown.disclose.publish`) records batch and disclosures in one ledger
  transaction and delivers the package, exactly as ``process`` does.
* :func:`deny` — recorded in the ledger with its reason; the held package is deleted.

Each batch is worked on by one process at a time: prepare, release and deny hold the
batch's publish-journal lock (:func:`lastknown.disclose.publish.publish_run`), and the
ledger's batch-once rule refuses a second release. The held state follows the ledger:
a release or denial the ledger holds but ``state.json`` does not yet say (a crash in
between) is written into it the next time the batch is read (:func:`_reconcile`).

>>> state = prepare(Path("request.csv"), master=Path("index"), batch_path=Path("b.toml"),
...                 submitted_by="alice")  # doctest: +SKIP
>>> release(state.batch_id, approver="bob", out=Path("response"))  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lastknown.answer import RunStart, disclose, open_run, run_stages, same_person
from lastknown.config import Deployment, load_deployment
from lastknown.disclose import held, holding
from lastknown.disclose.held import BatchState
from lastknown.disclose.review import BatchReview
from lastknown.engines import make_engine
from lastknown.errors import InputError, NotFoundError, PolicyError
from lastknown.pipeline import (
    ProcessOptions,
    ProcessResult,
    journal_of,
    open_engine,
    resolve_deployment,
)
from lastknown.stages import Stages

if TYPE_CHECKING:
    from lastknown.disclose.ledger import Ledger

PreparedBatch = BatchState
PREPARE_STAGES = ["batch", "intake", "policy", "master", "validate", "match", "hold"]
__all__ = ["BatchReview", "BatchState", "PreparedBatch", "deny", "get_batch", "list_batches",
           "prepare", "release", "review"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _person(name: str, what: str) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise InputError(f"{what} is required: the name of the person (it is recorded)")
    return text


def prepare(request: Path, *, master: Path, batch_path: Path, submitted_by: str,
            options: ProcessOptions | None = None,
            on_stage: Callable[[str], None] | None = None) -> PreparedBatch:
    """Match a request and hold its package for review; nothing is disclosed.

    ``on_stage(name)`` is called as each of :data:`PREPARE_STAGES` starts. PolicyError
    (exit 3) when the batch id is already held, released or denied.
    """
    from lastknown.disclose.journal import ledger_identity
    from lastknown.disclose.publish import publish_run, staging_dir_for
    from lastknown.outdirs import fsync_dir

    submitted_by = _person(submitted_by, "submitted_by")
    opts = options or ProcessOptions()
    deployment = resolve_deployment(opts)
    opts = replace(opts, deployment=deployment, operator=opts.operator or submitted_by)
    stages = Stages(PREPARE_STAGES, show=opts.progress, on_start=on_stage)
    start: RunStart | None = None
    try:
        with stages.stage("batch"):
            start = open_run(batch_path, opts, single_operator=False)
            batch_id = start.batch.batch_id
            folder = held.held_dir(deployment.archive, batch_id)
        with publish_run(start.ledger, journal_of(deployment), batch_id=batch_id,
                         final_dir=folder, anchors=opts.anchors or deployment.anchors) as run, \
                open_engine(opts) as engine:
            if folder.exists():
                raise PolicyError(f"batch {batch_id} is already prepared ("
                                  f"{held.read_state(folder).status}): a batch is answered "
                                  "once; give a new request a new batch_id")
            prepared = run_stages(engine, stages, start, request=request, master=master,
                                  options=opts, scratch=run.scratch)
            with stages.stage("hold"):
                staging = staging_dir_for(folder)
                folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                prepared.summary["timings_seconds"] = dict(stages.timings)
                state = holding.hold(engine, staging, prepared, submitted_by=submitted_by,
                                     ledger=ledger_identity(start.ledger),
                                     records_table=prepared.records_table)
                os.rename(staging, folder)
                fsync_dir(folder.parent)
            start.ledger.audit(event_type="batch_prepared", success=True, obj=f"batch {batch_id}",
                               detail=f"{state.rows_total} rows held for review; "
                                      f"{state.rows_matched} would be disclosed",
                               user=submitted_by)
    finally:
        stages.close()
        if start is not None:
            start.ledger.close()
    return state


def _open(deployment: Deployment | None) -> tuple[Deployment, Ledger]:
    from lastknown.disclose.ledger import open_ledger

    deployment = deployment or load_deployment()
    return deployment, open_ledger(deployment.ledger)


def _folder(deployment: Deployment, batch_id: str) -> Path:
    folder = held.held_dir(deployment.archive, batch_id)
    if not (folder / held.STATE_JSON).is_file():
        raise NotFoundError(f"no held batch {batch_id!r} in {held.held_root(deployment.archive)}"
                            "; `lastknown batches` lists the prepared batches")
    return folder


def _others(deployment: Deployment, folder: Path) -> list[BatchState]:
    """The deployment's other prepared batches (for the review's same-file check)."""
    return [held.read_state(f) for f in held.all_held(deployment.archive) if f != folder]


def list_batches(deployment: Deployment | None = None, *,
                 status: str | None = None) -> list[BatchState]:
    """Every prepared batch of the deployment, oldest first; ``status`` filters."""
    if status is not None and status not in held.STATUSES:
        raise InputError(f"status {status!r} is not one of {', '.join(held.STATUSES)}")
    deployment = deployment or load_deployment()
    folders = held.all_held(deployment.archive)
    if not folders:
        return []
    ledger = _open(deployment)[1]
    try:
        states = [holding.reconcile(ledger, folder) for folder in folders]
    finally:
        ledger.close()
    return sorted((s for s in states if status is None or s.status == status),
                  key=lambda s: (s.submitted_at, s.batch_id))


def get_batch(batch_id: str, deployment: Deployment | None = None) -> BatchState:
    """One prepared batch's state; NotFoundError (exit 2) when there is none."""
    deployment = deployment or load_deployment()
    folder = _folder(deployment, batch_id)
    ledger = _open(deployment)[1]
    try:
        return holding.reconcile(ledger, folder)
    finally:
        ledger.close()


def review(batch_id: str, deployment: Deployment | None = None, *,
           sample: int = 20) -> BatchReview:
    """The officer's page for a batch: live for a held one, as decided for the others."""
    from lastknown.disclose.review import build_review

    deployment = deployment or load_deployment()
    folder = _folder(deployment, batch_id)
    ledger = _open(deployment)[1]
    try:
        state = holding.reconcile(ledger, folder)
        if state.status != "held":
            kept = held.read_review(folder)
            if kept is None:
                raise NotFoundError(f"batch {state.batch_id} is {state.status} and its review "
                                    "was not kept (settled by recovery); its internal record "
                                    "is in the archive")
            return BatchReview.from_dict({**kept, "batch": state.as_dict()})
        with make_engine() as engine:
            held.load_tables(engine, folder)
            return build_review(engine, ledger, state=state, prepared=held.read_prepared(folder),
                                others=_others(deployment, folder), sample=sample)
    finally:
        ledger.close()


def release(batch_id: str, *, approver: str, out: Path, deployment: Deployment | None = None,
            anchors: Path | None = None) -> ProcessResult:
    """Approve a held batch: record its disclosures and deliver its package at ``out``.

    PolicyError (exit 3) unless the batch is held and ``approver`` is not its submitter
    (``process`` under ``single_operator_release`` goes through :func:`disclose` itself).
    """
    from lastknown.disclose.ledger.verify import quick_verify
    from lastknown.disclose.publish import publish_run
    from lastknown.disclose.record import record_dir_for
    from lastknown.disclose.review import build_review
    from lastknown.match.learn import ESTIMATES_FOLDER
    from lastknown.outdirs import check_can_create
    from lastknown.pipeline import _recovered_result

    approver = _person(approver, "approver")
    deployment, ledger = _open(deployment)
    try:
        folder = _folder(deployment, batch_id)
        check_can_create(out)
        state = holding.reconcile(ledger, folder)
        if same_person(approver, state.submitted_by):
            ledger.audit(event_type="batch_release_refused", success=False,
                         obj=f"batch {state.batch_id}", user=approver,
                         detail="the approver is the submitter; another person must approve")
            raise PolicyError(f"batch {state.batch_id} was submitted by {state.submitted_by}: "
                              "another person must approve its release (the refusal is "
                              "recorded in the ledger)")
        anchors = anchors or deployment.anchors
        quick_verify(ledger, anchors)
        with publish_run(ledger, journal_of(deployment), batch_id=state.batch_id,
                         final_dir=out, anchors=anchors) as run:
            if run.previous is not None and run.previous.publication is not None:
                holding.reconcile(ledger, folder)  # a killed release, delivered just now
                return _recovered_result(run.previous.final_dir,
                                         run.previous.publication.summary)
            state = held.require_held(holding.reconcile(ledger, folder), "released")
            if out.exists():
                raise InputError(f"output folder {out} already exists: choose a new --out "
                                 "folder (a response package is never overwritten)")
            data = held.read_prepared(folder)
            holding.check_ledger(data, ledger)
            held.write_release(folder, {"approver": approver, "out": str(out.absolute()),
                                        "started_at": _now()})
            with make_engine() as engine:
                held.load_tables(engine, folder)
                kept = build_review(engine, ledger, state=state, prepared=data,
                                    others=_others(deployment, folder))
                published = disclose(
                    ledger, engine, holding.prepared_from(data), out=out, approver=approver,
                    submitted_by=state.submitted_by, archive=deployment.archive,
                    anchors=anchors, estimates=deployment.archive / ESTIMATES_FOLDER,
                    write_package=holding.copy_package(folder, data["package"]))
            held.write_review(folder, kept.as_dict())
            held.write_state(folder, state.decided("released", by=approver, at=_now(),
                                                   released_to=str(out.absolute())))
            held.drop_data(folder)
    finally:
        ledger.close()
    return ProcessResult.of_publication(
        out, published.summary,
        record=record_dir_for(deployment.archive.resolve(), state.batch_id))


def deny(batch_id: str, *, officer: str, reason: str,
         deployment: Deployment | None = None) -> BatchState:
    """Refuse a held batch: recorded in the ledger with the reason; its package is deleted."""
    from lastknown.disclose.publish import publish_run
    from lastknown.disclose.review import build_review

    officer = _person(officer, "officer")
    reason = held.check_reason(reason)
    deployment, ledger = _open(deployment)
    try:
        folder = _folder(deployment, batch_id)
        state = holding.reconcile(ledger, folder)
        with publish_run(ledger, journal_of(deployment), batch_id=state.batch_id,
                         final_dir=folder, anchors=deployment.anchors):
            state = held.require_held(holding.reconcile(ledger, folder), "denied")
            with make_engine() as engine:
                held.load_tables(engine, folder)
                kept = build_review(engine, ledger, state=state,
                                    prepared=held.read_prepared(folder),
                                    others=_others(deployment, folder))
            ledger.audit(event_type="batch_denied", success=True, obj=f"batch {state.batch_id}",
                         detail=reason, user=officer)
            held.write_review(folder, kept.as_dict())
            state = state.decided("denied", by=officer, at=_now(), deny_reason=reason)
            held.write_state(folder, state)
            held.drop_data(folder)
    finally:
        ledger.close()
    return state


def default_user() -> str:
    """Who runs this process (the default submitter on the command line)."""
    return getpass.getuser()

