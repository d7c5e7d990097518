"""`process`: the whole job, end to end, as one library call.

    batch metadata ─▶ intake ─▶ policy gate ─▶ validation ─▶ matching
        ─▶ response package (staged) ─▶ ledger commit ─▶ package published by rename

Every stage leaves its tables in one engine (see docs/INTERNALS.md); Python
only sees counts. The ledger and the package are written in one protocol
(``disclose.publish``) so that a crash never leaves a disclosure unrecorded or
a recorded disclosure unpublished. The stages and the release are shared with the
two-person path, prepare → review → release (:mod:`lastknown.answer`,
:mod:`lastknown.workflow`).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from lastknown.config import Deployment, SparkSettings, load_deployment
from lastknown.engines import make_engine
from lastknown.engines.base import Engine
from lastknown.errors import InputError
from lastknown.outdirs import check_can_create
from lastknown.stages import Stages

STAGES = ["batch", "intake", "policy", "master", "validate", "match", "publish"]


@dataclass(frozen=True, kw_only=True)
class ProcessOptions:
    """How to run `process`; every field has a sensible default."""

    engine: str = "duckdb"
    #: ``--engine spark``: the Spark master URL, over the deployment's ``[spark]`` master
    #: (default ``local[N]``).
    spark_master: str | None = None
    #: Where the ledger, the archive and the anchors live (``load_deployment()`` if None).
    deployment: Deployment | None = None
    #: An explicit ledger (path or URL) that overrides the deployment's.
    ledger: str | None = None
    #: An archive (internal records, publish journal, learned estimates) that overrides the
    #: deployment's.
    archive: Path | None = None
    encoding: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    match_config: Path | None = None
    policy: Path | None = None
    today: date | None = None
    operator: str | None = None
    progress: bool = False
    threads: int | None = None
    memory_limit: str | None = None
    #: An anchor file that overrides the deployment's (``Deployment.anchors``): checked
    #: before writing, appended after the commit.
    anchors: Path | None = None
    #: Learn the requester's error rates from the batch (``match/learn.py``).
    learn: bool = True
    #: Folder of the per-agency learned estimates, pooled across batches; None: the
    #: deployment's ``<archive>/estimates``.
    estimates: Path | None = None


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """The engine a process runs its jobs on: ``lastknown worker --engine …``
    (``--spark-master``, ``--threads``, ``--memory-limit``), as `process` takes them.

    ``spark``: the ``[spark]`` settings of the worker's deployment with ``--spark-master``
    over them (a job's own deployment names its ledger and archive, not a cluster).
    """

    engine: str = "duckdb"
    spark: SparkSettings | None = None
    threads: int | None = None
    memory_limit: str | None = None

    def options(self, deployment: Deployment, **fields: Any) -> ProcessOptions:
        """:class:`ProcessOptions` on this engine for ``deployment`` (its ``[spark]``
        settings replaced by :attr:`spark` when given)."""
        if self.spark is not None:
            deployment = replace(deployment, spark=self.spark)
        return ProcessOptions(engine=self.engine, deployment=deployment, threads=self.threads,
                              memory_limit=self.memory_limit, **fields)


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
    #: True when this run only delivered a package an interrupted run had committed.
    recovered: bool = False

    @classmethod
    def of_publication(cls, out: Path, summary: dict[str, Any], *,
                       record: Path) -> ProcessResult:
        """The result of a run that published ``out`` with this final ``summary``."""
        return cls(out=out, rows_total=int(summary["rows_total"]),
                   rows_matched=int(summary["rows_matched"]),
                   rows_unmatched=int(summary["rows_unmatched"]),
                   rows_rejected=int(summary["rows_rejected"]), record=record, summary=summary)

    def describe(self) -> str:
        head = self.summary.get("ledger_head") or {}
        if isinstance(head, str):
            head = {"hash": head}
        if self.recovered:
            return (f"Recovered an interrupted run: the response package of batch "
                    f"{self.summary.get('batch_id', '?')}, committed to the ledger before the "
                    f"interruption, is now at {self.out}. Ledger head {head.get('hash', '?')}")
        return (
            f"Response package written to {self.out}: {self.rows_total:,} rows — "
            f"{self.rows_matched:,} matched, {self.rows_unmatched:,} unmatched, "
            f"{self.rows_rejected:,} rejected. Ledger head {head.get('hash', '?')}"
            + (f"\nInternal record (not for the requester): {self.record}" if self.record else "")
        )


def is_index(path: Path) -> bool:
    """True when ``path`` is an index folder made by `lastknown master index`."""
    from lastknown.match.index import is_index_dir

    return is_index_dir(path)


def open_engine(options: ProcessOptions) -> Engine:
    """The engine a run uses: ``options.engine`` bounded by its threads and memory, and on
    Spark the deployment's ``[spark]`` settings with ``spark_master`` over them."""
    settings = options.deployment.spark if options.deployment is not None else None
    if options.spark_master:
        settings = (settings or SparkSettings()).with_master(options.spark_master)
    return make_engine(options.engine, threads=options.threads,
                       memory_limit=options.memory_limit, spark=settings)


def build_master_index(master: Path, *, out: Path, progress: bool = False,
                       threads: int | None = None, memory_limit: str | None = None,
                       on_report: Callable[[Any], None] | None = None,
                       engine: str = "duckdb", spark: SparkSettings | None = None) -> Any:
    """Validate a raw master and build its matching index + model at ``out``.

    ``threads`` and ``memory_limit`` (e.g. ``"6GB"``) bound the engine; DuckDB
    otherwise uses every core and about 80 % of RAM. ``engine`` ``"spark"`` (with the
    ``[spark]`` settings ``spark``) writes the index as Parquet tables, which either
    engine reads. ``on_report`` receives the
    master's :class:`~lastknown.master.MasterReport` (rows quarantined, examples)
    before the build starts.
    """
    from lastknown.master import load_master
    from lastknown.match.index import build_index

    check_can_create(out)
    with make_engine(engine, threads=threads, memory_limit=memory_limit,
                     spark=spark) as running:
        report = load_master(running, master)
        if on_report is not None:
            on_report(report)
        return build_index(running, master_table="master", out=out, progress=progress)


def _prepare_index(engine: Engine, master: Path, workdir: Path, progress: bool) -> Any:
    from lastknown.master import load_master
    from lastknown.match.index import build_index, open_index

    if is_index(master):
        return open_index(engine, master)
    load_master(engine, master)
    return build_index(engine, master_table="master", out=workdir / "index", progress=progress)


def resolve_deployment(options: ProcessOptions) -> Deployment:
    """The deployment a run uses: the options' (or the configured one), ``ledger`` and
    ``archive`` overriding.

    >>> d = Deployment(ledger="/srv/l.sqlite", archive=Path("/srv/a"), anchors=Path("/srv/n"),
    ...                source="default")
    >>> resolve_deployment(ProcessOptions(deployment=d, ledger="/tmp/x.sqlite")).ledger
    '/tmp/x.sqlite'
    """
    deployment = options.deployment or load_deployment()
    if options.archive is not None:
        deployment = replace(deployment, archive=options.archive)
    return deployment.with_ledger(options.ledger) if options.ledger else deployment


def process_request(request: Path, *, master: Path, batch_path: Path, out: Path,
                    options: ProcessOptions | None = None) -> ProcessResult:
    """Answer one request file end to end and return what went where.

    The single-operator path: :func:`lastknown.answer.run_stages` (what
    ``workflow.prepare`` holds for review) then :func:`lastknown.answer.disclose` (what
    ``workflow.release`` does), in one run, with the operator as submitter and approver
    — only where the policy's ``single_operator_release`` allows it (else PolicyError,
    exit 3).

    >>> result = process_request(Path("request.csv"), master=Path("master"),
    ...                          batch_path=Path("batch.toml"), out=Path("response"))
    ... # doctest: +SKIP
    """
    from lastknown.answer import disclose, estimates_dir, open_run, run_stages
    from lastknown.disclose.package import BACKGROUND_XLSX_ROWS, stage_package
    from lastknown.disclose.publish import publish_run
    from lastknown.disclose.record import record_dir_for

    opts = options or ProcessOptions()
    deployment = resolve_deployment(opts)
    opts = replace(opts, deployment=deployment)  # later stages read opts.deployment
    check_can_create(out)
    stages = Stages(STAGES, show=opts.progress)
    operator = opts.operator or getpass.getuser()
    try:
        with stages.stage("batch"):
            start = open_run(batch_path, opts, single_operator=True)
        anchors = opts.anchors or deployment.anchors
        with publish_run(start.ledger, journal_of(deployment), batch_id=start.batch.batch_id,
                         final_dir=out, anchors=anchors) as run, open_engine(opts) as engine:
            # an interrupted run of this batch was settled first; its package, if committed,
            # is delivered now and this run stops there
            if run.previous is not None and run.previous.publication is not None:
                return _recovered_result(run.previous.final_dir,
                                         run.previous.publication.summary)
            if out.exists():
                raise InputError(f"output folder {out} already exists: choose a new --out "
                                 "folder (a response package is never overwritten)")
            _refuse_held(deployment, start.batch.batch_id)
            prepared = run_stages(engine, stages, start, request=request, master=master,
                                  options=opts, scratch=run.scratch)
            with stages.stage("publish"):
                prepared.summary["timings_seconds"] = dict(stages.timings)
                published = disclose(
                    start.ledger, engine, prepared, out=out, approver=operator,
                    submitted_by=operator, archive=deployment.archive,
                    anchors=anchors, estimates=estimates_dir(opts),
                    write_package=lambda staging, s: stage_package(
                        engine, staging, summary=s, background_xlsx_from=BACKGROUND_XLSX_ROWS))
    finally:
        stages.close()
    return ProcessResult.of_publication(
        out, published.summary,
        record=record_dir_for(deployment.archive.resolve(), start.batch.batch_id))


def _refuse_held(deployment: Deployment, batch_id: str) -> None:
    """PolicyError when the batch was prepared for review: its release is the officer's."""
    from lastknown.disclose.held import held_dir
    from lastknown.errors import PolicyError

    if held_dir(deployment.archive, batch_id).exists():
        raise PolicyError(f"batch {batch_id} was prepared with --hold and waits for review: "
                          f"`lastknown release {batch_id} --approver NAME --out DIR` or "
                          f"`lastknown deny {batch_id} ...` decides it (see `lastknown "
                          "batches`)")


def journal_of(deployment: Deployment) -> Path:
    """The deployment's publish journal (in its archive), which ``process`` and the
    workflow's prepare, release and deny register their runs in."""
    from lastknown.disclose.journal import journal_dir

    return journal_dir(deployment.ledger, archive=deployment.archive)


def _recovered_result(out: Path, summary: dict[str, Any]) -> ProcessResult:
    def count(key: str) -> int:
        return int(summary.get(key, 0) or 0)

    return ProcessResult(out=out, rows_total=count("rows_total"),
                         rows_matched=count("rows_matched"),
                         rows_unmatched=count("rows_unmatched"),
                         rows_rejected=count("rows_rejected"), summary=summary, recovered=True)
