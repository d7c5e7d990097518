"""`process`: the whole job, end to end, as one library call.

    batch metadata ─▶ intake ─▶ policy gate ─▶ validation ─▶ matching
        ─▶ response package (staged) ─▶ ledger commit ─▶ package published by rename

Every stage leaves its tables in one engine (see docs/INTERNALS.md); Python
only sees counts. The ledger and the package are written in one protocol
(``disclose.publish``) so that a crash never leaves a disclosure unrecorded or
a recorded disclosure unpublished.
"""

from __future__ import annotations

import getpass
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lastknown import __version__
from lastknown.engines import make_engine
from lastknown.engines.base import Engine
from lastknown.errors import InputError
from lastknown.stages import Stages

STAGES = ["batch", "intake", "policy", "master", "validate", "match", "publish"]


@dataclass(frozen=True, kw_only=True)
class ProcessOptions:
    """How to run `process`; every field has a sensible default."""

    engine: str = "duckdb"
    ledger: str | None = None
    #: The deployment's archive of internal records; None: the deployment's (lastknown.toml).
    archive: Path | None = None
    encoding: str | None = None
    sheet: str | None = None
    match_config: Path | None = None
    policy: Path | None = None
    today: date | None = None
    operator: str | None = None
    progress: bool = False
    threads: int | None = None
    memory_limit: str | None = None
    #: The deployment's anchor file (``Deployment.anchors``): checked before writing,
    #: appended after the commit. None: only the ledger's tail is checked.
    anchors: Path | None = None
    #: Learn the requester's error rates from the batch (``match/learn.py``).
    learn: bool = True
    #: Folder of the per-agency learned estimates (pooled across batches); None keeps
    #: what a batch teaches to that batch alone.
    estimates: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    """What `process` did: where the package is and how many rows went where."""

    out: Path
    rows_total: int
    rows_matched: int
    rows_unmatched: int
    rows_rejected: int
    #: The batch's internal record (outcome codes, candidates ...): never sent.
    record: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        head = self.summary.get("ledger_head") or {}
        return (
            f"Response package written to {self.out}: {self.rows_total:,} rows — "
            f"{self.rows_matched:,} matched, {self.rows_unmatched:,} unmatched, "
            f"{self.rows_rejected:,} rejected. Ledger head {head.get('hash', '?')}"
            + (f"\nInternal record (not for the requester): {self.record}" if self.record else "")
        )


def _archive(opts: ProcessOptions) -> Path:
    """Where the internal record goes: the option, else the deployment's archive."""
    if opts.archive is not None:
        return opts.archive
    deployment = getattr(opts, "deployment", None)  # ProcessOptions.deployment (cfg), if set
    if deployment is not None:
        return Path(deployment.archive)
    from lastknown.config import load_deployment

    return load_deployment(None).archive


def is_index(path: Path) -> bool:
    """True when ``path`` is an index folder made by `lastknown master index`."""
    from lastknown.match.index import is_index_dir

    return is_index_dir(path)


def build_master_index(master: Path, *, out: Path, progress: bool = False,
                       threads: int | None = None, memory_limit: str | None = None) -> Any:
    """Validate a raw master and build its matching index + model at ``out``.

    ``threads`` and ``memory_limit`` (e.g. ``"6GB"``) bound the engine; DuckDB
    otherwise uses every core and about 80 % of RAM.
    """
    from lastknown.master import load_master
    from lastknown.match.index import build_index

    with make_engine(threads=threads, memory_limit=memory_limit) as engine:
        load_master(engine, master)
        return build_index(engine, master_table="master", out=out, progress=progress)


def _prepare_index(engine: Engine, master: Path, workdir: Path, progress: bool) -> Any:
    from lastknown.master import load_master
    from lastknown.match.index import build_index, open_index

    if is_index(master):
        return open_index(engine, master)
    load_master(engine, master)
    return build_index(engine, master_table="master", out=workdir / "index", progress=progress)


def process_request(request: Path, *, master: Path, batch_path: Path, out: Path,
                    options: ProcessOptions | None = None) -> ProcessResult:
    """Answer one request file end to end and return what went where.

    >>> result = process_request(Path("request.csv"), master=Path("master"),
    ...                          batch_path=Path("batch.toml"), out=Path("response"))
    ... # doctest: +SKIP
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.verify import quick_verify
    from lastknown.disclose.package import BACKGROUND_XLSX_ROWS, stage_package
    from lastknown.disclose.policy import check_policy, load_policy
    from lastknown.disclose.publish import publish
    from lastknown.disclose.record import record_dir_for
    from lastknown.match.config import load_match_config
    from lastknown.match.learn import EstimateStore, LevelCounts
    from lastknown.match.run import Learning, match_requests
    from lastknown.request.batch import load_batch
    from lastknown.request.intake import read_request
    from lastknown.request.validate import validate_request

    opts = options or ProcessOptions()
    if out.exists():
        raise InputError(f"output folder {out} already exists: choose a new --out folder "
                         "(a response package is never overwritten)")
    today = opts.today or date.today()
    received = datetime.now(UTC)
    archive = _archive(opts)
    stages = Stages(STAGES, show=opts.progress)
    try:
        with stages.stage("batch"):
            batch = load_batch(batch_path)
            policy = load_policy(opts.policy)
            match_config = load_match_config(opts.match_config)
            ledger = open_ledger(opts.ledger)
            # ANCHOR CHECK: never write to a ledger whose tail or anchors fail (exit 5)
            quick_verify(ledger, opts.anchors)
        with tempfile.TemporaryDirectory(prefix="lastknown-") as tmp, make_engine(
            opts.engine, threads=opts.threads, memory_limit=opts.memory_limit
        ) as engine:
            with stages.stage("intake"):
                intake = read_request(engine, request, encoding=opts.encoding, sheet=opts.sheet)
            with stages.stage("policy"):
                decision = check_policy(policy, batch, row_count=intake.row_count,
                                        ledger=ledger)
            with stages.stage("master"):
                index = _prepare_index(engine, master, Path(tmp), opts.progress)
            with stages.stage("validate"):
                validation = validate_request(
                    engine, batch, master_years=(index.year_min, index.year_max), today=today
                )
            with stages.stage("match"):
                store = EstimateStore(opts.estimates) if opts.estimates else None
                learning = None
                if opts.learn:
                    pooled = store.load(batch.requesting_agency) if store else LevelCounts()
                    learning = Learning(batch_id=batch.batch_id, pooled=pooled)
                matching = match_requests(engine, index=index, config=match_config,
                                          progress=opts.progress, learning=learning)
            summary: dict[str, Any] = {
                "lastknown_version": __version__,
                "batch_id": batch.batch_id,
                "requesting_agency": batch.requesting_agency,
                "request_file": request.name,
                "request_sha256": intake.sha256,
                "received_at": received.isoformat(timespec="seconds"),
                "engine": opts.engine,
                "model_id": matching.model_id,
                "estimates": matching.estimates,
                "thresholds": matching.thresholds,
                "match_settings": match_config.as_dict(),  # whole, for the internal record
                "warnings": list(matching.warnings),
                "match_timings_seconds": dict(matching.timings),
                "policy": decision.as_summary(),
                "validation": {"valid": validation.valid_count,
                               "rejected": validation.rejected_count},
            }
            with stages.stage("publish"):
                summary["timings_seconds"] = dict(stages.timings)
                published = publish(
                    ledger=ledger,
                    batch=batch,
                    engine=engine,
                    final_dir=out,
                    summary=summary,
                    write_package=lambda staging, s: stage_package(
                        engine, staging, summary=s, background_xlsx_from=BACKGROUND_XLSX_ROWS
                    ),
                    intake=intake,
                    validation=validation,
                    policy_decision=decision,
                    operator=opts.operator or getpass.getuser(),
                    received_at=received,
                    archive=archive,
                    anchors=opts.anchors,
                )
            if store is not None and learning is not None and matching.learned is not None:
                store.save(batch.requesting_agency,
                           learning.pooled.add(matching.learned.batch_counts))
    finally:
        stages.close()
    final = published.summary
    return ProcessResult(
        out=out,
        rows_total=int(final["rows_total"]),
        rows_matched=int(final["rows_matched"]),
        rows_unmatched=int(final["rows_unmatched"]),
        rows_rejected=int(final["rows_rejected"]),
        record=record_dir_for(archive.resolve(), batch.batch_id),
        summary=final,
    )
