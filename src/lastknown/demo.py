"""`lastknown demo`: synthesise, process, evaluate, summarise — small and quick."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lastknown.config import Deployment, SparkSettings
from lastknown.evaluate import evaluate, format_report
from lastknown.outdirs import check_can_create
from lastknown.pipeline import ProcessOptions, process_request
from lastknown.synth import generate


def run_demo(*, persons: int = 20_000, requests: int = 2_000, seed: int = 2026,
             out: Path | None = None, progress: bool = False, engine: str = "duckdb",
             spark: SparkSettings | None = None) -> str:
    """Run the whole job on a synthetic population and return a readable report.

    ``engine`` runs it (index and matching) on DuckDB or Spark (``spark``: its settings,
    default ``local[2]``).

    >>> report = run_demo(persons=2_000, requests=200)  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory(prefix="lastknown-demo-") as tmp:
        if out is not None:
            check_can_create(out)
        root = out if out is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data = root / "synth"
        generate(persons=persons, requests=requests, seed=seed, out=data, progress=progress)
        response = root / "response"
        # the demo's disclosures are synthetic: they stay in its own folder, never in the
        # deployment's ledger or archive
        demo_deployment = Deployment(ledger=str(root / "ledger.sqlite"), archive=root / "archive",
                                     anchors=root / "anchors.jsonl", source="demo",
                                     spark=spark or SparkSettings())
        options = ProcessOptions(deployment=demo_deployment, progress=progress, engine=engine)
        result = process_request(data / "request.csv", master=data / "master",
                                 batch_path=data / "batch.toml", out=response, options=options)
        metrics = evaluate(response, data / "truth.csv", archive=root / "archive")
        lines = [
            f"lastknown demo: {persons:,} synthetic persons, {requests:,} request rows "
            f"(seed {seed})" + (f", on {engine}" if engine != "duckdb" else ""),
            result.describe(),
            format_report(metrics),
        ]
        if out is not None:
            lines.append(f"Files kept in {root}")
        return "\n".join(lines)
