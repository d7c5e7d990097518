"""Answering a batch, in the steps ``process`` and the workflow share.

:func:`open_run` reads the batch, policy and settings and checks the ledger;
:func:`run_stages` runs intake, the policy gate, the master, validation and matching,
leaving the batch's tables in the engine (:class:`Prepared`); :func:`disclose` is the
release: the publish protocol (:mod:`lastknown.disclose.publish`) with who submitted
and who approved, then the learned estimates pooled. ``process`` runs all three in one
process; :mod:`lastknown.workflow` holds what :func:`run_stages` made for review and
runs :func:`disclose` from the held tables when another person approves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastknown import __version__, pipeline
from lastknown.engines.base import Engine
from lastknown.pipeline import ProcessOptions, resolve_deployment
from lastknown.stages import Stages

if TYPE_CHECKING:
    from lastknown.disclose.ledger import Ledger
    from lastknown.disclose.policy import Policy, PolicyDecision
    from lastknown.disclose.publish import IntakeLike, Publication, ValidationLike
    from lastknown.match.config import MatchConfig
    from lastknown.match.learn import LevelCounts
    from lastknown.request.batch import Batch


@dataclass(frozen=True, kw_only=True)
class RunStart:
    """A run's batch, policy, settings and ledger: read and checked before any row."""

    batch: Batch
    policy: Policy
    match_config: MatchConfig
    ledger: Ledger
    received: datetime


def open_run(batch_path: Path, opts: ProcessOptions, *, single_operator: bool) -> RunStart:
    """Read the batch, the policy and the settings; open and check the ledger.

    ``single_operator``: the run releases what it prepares (``process``), which the
    policy must allow (``single_operator_release``), else PolicyError (exit 3).
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.verify import quick_verify
    from lastknown.disclose.policy import load_policy, refuse_uncertified
    from lastknown.errors import PolicyError
    from lastknown.match.config import load_match_config
    from lastknown.request.batch import load_batch

    deployment = resolve_deployment(opts)
    received = datetime.now(UTC)
    batch = load_batch(batch_path)
    policy = load_policy(opts.policy)
    if single_operator and not policy.single_operator_release:
        raise PolicyError(f"the disclosure policy ({policy.source}) does not let one person "
                          "prepare and release a batch (single_operator_release = false): "
                          "run `lastknown process --hold ...`, then another person runs "
                          f"`lastknown release {batch.batch_id} --approver NAME --out DIR`")
    match_config = load_match_config(opts.match_config)
    ledger = open_ledger(deployment.ledger, create=True)
    # ANCHOR CHECK: never write to a ledger whose tail or anchors fail (exit 5)
    quick_verify(ledger, opts.anchors or deployment.anchors)
    refuse_uncertified(batch, ledger=ledger, user=opts.operator)  # before any row
    return RunStart(batch=batch, policy=policy, match_config=match_config, ledger=ledger,
                    received=received)


@dataclass(kw_only=True)
class Prepared:
    """What the stages up to matching produced: enough to publish (or hold) the batch."""

    batch: Batch
    decision: PolicyDecision
    intake: IntakeLike
    validation: ValidationLike
    summary: dict[str, Any]
    received: datetime
    #: What the batch taught about the requester's errors, pooled when it is released.
    learned: LevelCounts | None = None
    #: The index's table of master records (names for the review, masked when held).
    records_table: str | None = None


def run_stages(engine: Engine, stages: Stages, start: RunStart, *, request: Path, master: Path,
               options: ProcessOptions, scratch: Path) -> Prepared:
    """Intake, policy gate, master, validation, matching: the batch's tables in ``engine``."""
    from lastknown.disclose.policy import check_policy
    from lastknown.match.learn import EstimateStore
    from lastknown.match.run import Learning, match_requests
    from lastknown.request.intake import read_request
    from lastknown.request.validate import validate_request

    opts, batch = options, start.batch
    with stages.stage("intake"):
        intake = read_request(engine, request, encoding=opts.encoding, sheet=opts.sheet,
                              header_row=opts.header_row)
    with stages.stage("policy"):
        decision = check_policy(start.policy, batch, row_count=intake.row_count,
                                ledger=start.ledger, match_config=start.match_config,
                                user=opts.operator)
    with stages.stage("master"):
        index = pipeline._prepare_index(engine, master, scratch, opts.progress)
    with stages.stage("validate"):
        validation = validate_request(
            engine, batch, master_years=(index.year_min, index.year_max),
            today=opts.today or date.today(), years_on_file=index.tax_years,
        )
    with stages.stage("match"):
        learning = None
        if opts.learn:
            learning = Learning(batch_id=batch.batch_id,
                                pooled=EstimateStore(estimates_dir(opts)).load(
                                    batch.requesting_agency))
        matching = match_requests(engine, index=index, config=start.match_config,
                                  progress=opts.progress, learning=learning)
    summary: dict[str, Any] = {
        "lastknown_version": __version__,
        "batch_id": batch.batch_id,
        "requesting_agency": batch.requesting_agency,
        "request_file": request.name,
        "request_sha256": intake.sha256,
        "received_at": start.received.isoformat(timespec="seconds"),
        "engine": opts.engine,
        "model_id": matching.model_id,
        "estimates": matching.estimates,
        "thresholds": matching.thresholds,
        "match_settings": start.match_config.as_dict(),  # whole, for the internal record
        "warnings": [*intake.warnings, *matching.warnings],
        "match_timings_seconds": dict(matching.timings),
        "policy": decision.as_summary(),
        "validation": {"valid": validation.valid_count,
                       "rejected": validation.rejected_count,
                       "periods_partly_on_file": validation.periods_partly_on_file},
        "master_quarantined_rows": index.quarantined_rows,
    }
    learned = matching.learned.batch_counts if learning and matching.learned else None
    return Prepared(batch=batch, decision=decision, intake=intake, validation=validation,
                    summary=summary, received=start.received, learned=learned,
                    records_table=index.table("idx_record"))


def estimates_dir(opts: ProcessOptions) -> Path:
    """The folder of the per-agency learned estimates."""
    from lastknown.match.learn import ESTIMATES_FOLDER

    return opts.estimates or resolve_deployment(opts).archive / ESTIMATES_FOLDER


def same_person(a: str, b: str) -> bool:
    """Names compared case- and spacing-insensitively.

    >>> same_person(" Alice  Smith", "alice smith")
    True
    """
    from lastknown.request.batch import name_key

    return name_key(a) == name_key(b)


def disclose(ledger: Ledger, engine: Engine, prepared: Prepared, *, out: Path, approver: str,
             submitted_by: str, archive: Path, anchors: Path | None, estimates: Path,
             write_package: Callable[[Path, dict[str, Any]], Any]) -> Publication:
    """The release itself (``workflow.release`` and ``process``): the publish protocol with
    who submitted and who approved in the batch record (its ``policy.release``), then the
    learned estimates pooled. ``engine`` holds the batch's tables."""
    from lastknown.disclose.publish import publish
    from lastknown.match.learn import EstimateStore

    approval = {"submitted_by": submitted_by, "approved_by": approver,
                "single_operator": same_person(submitted_by, approver)}
    published = publish(ledger=ledger, batch=prepared.batch, engine=engine, final_dir=out,
                        summary=prepared.summary, write_package=write_package,
                        intake=prepared.intake, validation=prepared.validation,
                        policy_decision=prepared.decision, operator=approver,
                        received_at=prepared.received, archive=archive, anchors=anchors,
                        release=approval)
    if prepared.learned is not None:
        store = EstimateStore(estimates)
        agency = prepared.batch.requesting_agency
        store.save(agency, store.load(agency).add(prepared.learned))
    return published
