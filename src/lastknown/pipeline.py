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
from collections.abc import Callable
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
    encoding: str | None = None
    sheet: str | None = None
    match_config: Path | None = None
    policy: Path | None = None
    today: date | None = None
    operator: str | None = None
    progress: bool = False
    threads: int | None = None
    memory_limit: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    """What `process` did: where the package is and how many rows went where."""

    out: Path
    rows_total: int
    rows_matched: int
    rows_unmatched: int
    rows_rejected: int
    summary: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"Response package written to {self.out}: {self.rows_total:,} rows — "
            f"{self.rows_matched:,} matched, {self.rows_unmatched:,} unmatched, "
            f"{self.rows_rejected:,} rejected. Ledger head {self.summary.get('ledger_head', '?')}"
        )


def is_index(path: Path) -> bool:
    """True when ``path`` is an index folder made by `lastknown master index`."""
    from lastknown.match.index import is_index_dir

    return is_index_dir(path)


def build_master_index(master: Path, *, out: Path, progress: bool = False,
                       threads: int | None = None, memory_limit: str | None = None,
                       on_report: Callable[[Any], None] | None = None) -> Any:
    """Validate a raw master and build its matching index + model at ``out``.

    ``threads`` and ``memory_limit`` (e.g. ``"6GB"``) bound the engine; DuckDB
    otherwise uses every core and about 80 % of RAM. ``on_report`` receives the
    master's :class:`~lastknown.master.MasterReport` (rows quarantined, examples)
    before the build starts.
    """
    from lastknown.master import load_master
    from lastknown.match.index import build_index

    with make_engine(threads=threads, memory_limit=memory_limit) as engine:
        report = load_master(engine, master)
        if on_report is not None:
            on_report(report)
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
    from lastknown.disclose.package import BACKGROUND_XLSX_ROWS, stage_package
    from lastknown.disclose.policy import check_policy, load_policy
    from lastknown.disclose.publish import publish
    from lastknown.match.config import load_match_config
    from lastknown.match.run import match_requests
    from lastknown.request.batch import load_batch
    from lastknown.request.intake import read_request
    from lastknown.request.validate import validate_request

    opts = options or ProcessOptions()
    if out.exists():
        raise InputError(f"output folder {out} already exists: choose a new --out folder "
                         "(a response package is never overwritten)")
    today = opts.today or date.today()
    received = datetime.now(UTC)
    stages = Stages(STAGES, show=opts.progress)
    try:
        with stages.stage("batch"):
            batch = load_batch(batch_path)
            policy = load_policy(opts.policy)
            match_config = load_match_config(opts.match_config)
            ledger = open_ledger(opts.ledger)
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
                    engine, batch, master_years=(index.year_min, index.year_max), today=today,
                    years_on_file=index.tax_years,
                )
            with stages.stage("match"):
                matching = match_requests(engine, index=index, config=match_config,
                                          progress=opts.progress)
            summary: dict[str, Any] = {
                "lastknown_version": __version__,
                "batch_id": batch.batch_id,
                "requesting_agency": batch.requesting_agency,
                "request_file": request.name,
                "request_sha256": intake.sha256,
                "received_at": received.isoformat(timespec="seconds"),
                "engine": opts.engine,
                "model_id": matching.model_id,
                "thresholds": matching.thresholds,
                "warnings": list(matching.warnings),
                "match_timings_seconds": dict(matching.timings),
                "policy": decision.as_summary(),
                "validation": {"valid": validation.valid_count,
                               "rejected": validation.rejected_count,
                               "periods_partly_on_file": validation.periods_partly_on_file},
                "master_quarantined_rows": index.quarantined_rows,
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
                )
    finally:
        stages.close()
    final = published.summary
    return ProcessResult(
        out=out,
        rows_total=int(final["rows_total"]),
        rows_matched=int(final["rows_matched"]),
        rows_unmatched=int(final["rows_unmatched"]),
        rows_rejected=int(final["rows_rejected"]),
        summary=final,
    )
