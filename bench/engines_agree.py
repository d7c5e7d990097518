"""Do DuckDB and Spark answer the demo's batch alike, row for row? (issue 14's bar)

    python bench/engines_agree.py --work /tmp/lk-agree              # lastknown demo's data
    python bench/engines_agree.py --work /tmp/lk-agree --index shared

The data are ``lastknown demo``'s (20,000 persons, 2,000 request rows, seed 2026; change
them with ``--persons``, ``--requests``, ``--seed``), synthesised once into ``--work``.
Then ``process`` runs on each engine, each in its own child process (Spark ``local[2]``
unless ``--spark-master``):

* ``--index each`` (default, as ``lastknown demo --engine E`` runs): each engine builds
  its own index and model from the master (both draw the same training samples, so they
  train one model: ``match/index.py`` ``sample_sql``, ``match/model.py``
  ``u_sample_steps``);
* ``--index shared``: the index is built once on Spark (Parquet, which both read) and
  both engines match against it.

Compared, per request row: the outcome, candidates, reasons, address year and every
disclosed field of the package (matched, unmatched, rejected: every column), exactly,
and the match probability to ``--tolerance`` (1e-9); per scored candidate
(explanation.csv, keyed by request row and TIN rank): the TIN, record id and every flag
exactly and every weight and probability to the tolerance; the ledger's disclosures
(everything but the time). Prints one line per table and a verdict; exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENGINES = ("duckdb", "spark")
#: Columns compared to the tolerance; every other column exactly.
NUMERIC = {"match_probability", "match_weight", "name_weight"}
#: Each table's key: the columns that name one row.
KEYS = {"outcomes.csv": ("source_row",), "explanation.csv": ("source_row", "tin_rank"),
        "matched.csv": ("request_row_id",), "unmatched.csv": ("request_row_id",),
        "rejected.csv": ("source_row",)}
LEDGER_SQL = ("SELECT request_row_id, tin, address_tax_year, address_sha256, request_statute, "
              "recipient FROM ledger_disclosures")


def _numeric(column: str) -> bool:
    return column in NUMERIC or column.startswith("mw_")


def _rows(path: Path, key: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    keyed = {tuple(r[k] for k in key): r for r in rows}
    if len(keyed) != len(rows):
        raise SystemExit(f"{path}: {key} does not name one row")
    return keyed


def compare_table(a: Path, b: Path, key: tuple[str, ...], tolerance: float) -> dict[str, Any]:
    """Rows of two runs' CSV side by side: how many differ, in which columns, and the
    largest numeric difference."""
    ra, rb = _rows(a, key), _rows(b, key)
    differ: dict[str, int] = {}
    largest = 0.0
    first: str | None = None
    for k in ra.keys() & rb.keys():
        for column, va in ra[k].items():
            vb = rb[k].get(column)
            if _numeric(column) and va and vb:
                gap = abs(float(va) - float(vb))
                largest = max(largest, gap)
                same = math.isclose(float(va), float(vb), rel_tol=tolerance,
                                    abs_tol=tolerance)
            else:
                same = va == vb
            if not same:
                differ[column] = differ.get(column, 0) + 1
                first = first or f"{'/'.join(k)} {column}: {va!r} vs {vb!r}"
    return {"rows": (len(ra), len(rb)), "only_a": len(ra.keys() - rb.keys()),
            "only_b": len(rb.keys() - ra.keys()), "differ": differ, "largest_gap": largest,
            "first": first}


def _ledger(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return sorted(con.execute(LEDGER_SQL).fetchall())


def compare_runs(a: Path, b: Path, tolerance: float) -> tuple[bool, list[str]]:
    """Every table of two runs (folders made by :func:`run_one`); (all agree, lines)."""
    lines, agree = [], True
    record_a, record_b = (_record(x) for x in (a, b))
    for name, key in KEYS.items():
        in_record = name in ("outcomes.csv", "explanation.csv")
        fa = (record_a if in_record else a / "response") / name
        fb = (record_b if in_record else b / "response") / name
        got = compare_table(fa, fb, key, tolerance)
        ok = not got["differ"] and not got["only_a"] and not got["only_b"]
        agree &= ok
        lines.append(f"{'same' if ok else 'DIFFERENT'}: {name}: rows {got['rows'][0]} / "
                     f"{got['rows'][1]}, largest numeric gap {got['largest_gap']:.3g}"
                     + ("" if ok else f"; differing columns {got['differ']}, only in one "
                        f"run {got['only_a']} / {got['only_b']}; first: {got['first']}"))
    la, lb = _ledger(a / "ledger.sqlite"), _ledger(b / "ledger.sqlite")
    agree &= la == lb
    lines.append(f"{'same' if la == lb else 'DIFFERENT'}: ledger disclosures: {len(la)} / "
                 f"{len(lb)}")
    return agree, lines


def _record(run: Path) -> Path:
    found = sorted((run / "archive").glob("*/outcomes.csv"))
    if len(found) != 1:
        raise SystemExit(f"{run}: expected one internal record, found {found}")
    return found[0].parent


def run_one(engine: str, data: Path, master: Path, out: Path, spark_master: str | None) -> None:
    """One ``process`` of the demo's request on ``engine`` into ``out`` (its own ledger and
    archive, as the demo keeps them)."""
    from bench_match import benchmark_batch

    from lastknown.config import Deployment, SparkSettings
    from lastknown.pipeline import ProcessOptions, process_request

    out.mkdir(parents=True)
    batch, policy = benchmark_batch(data, out, approver="engines_agree.py")
    deployment = Deployment(ledger=str(out / "ledger.sqlite"), archive=out / "archive",
                            anchors=out / "anchors.jsonl", source="engines_agree",
                            spark=SparkSettings(master=spark_master,
                                                checkpoint_dir=out / "checkpoints"))
    process_request(data / "request.csv", master=master, batch_path=batch,
                    out=out / "response",
                    options=ProcessOptions(engine=engine, deployment=deployment, policy=policy))


def _child(args: list[str], what: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], check=False)
    if done.returncode:
        raise SystemExit(f"{what} failed (exit {done.returncode})")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-engines-agree"))
    parser.add_argument("--index", choices=("each", "shared"), default="each")
    parser.add_argument("--tolerance", type=float, default=1e-9,
                        help="numeric tolerance of weights and probabilities [1e-9]")
    parser.add_argument("--spark-master", default=None)
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--build-index", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.work / f"synth-{args.persons}-{args.seed}-{args.requests}"
    runs = args.work / f"runs-{args.index}"
    index = args.work / f"index-spark-{args.persons}-{args.seed}"
    spark_master = args.spark_master or "local[2]"
    if args.build_index:
        from lastknown.config import SparkSettings
        from lastknown.pipeline import build_master_index

        build_master_index(data / "master", out=index, engine="spark",
                           spark=SparkSettings(master=spark_master,
                                               checkpoint_dir=args.work / "checkpoints"))
        return 0
    if args.one:
        run_one(args.one, data, index if args.index == "shared" else data / "master",
                runs / args.one, spark_master)
        return 0
    if not (data / "request.csv").exists():
        from lastknown.synth import generate

        generate(persons=args.persons, requests=args.requests, seed=args.seed, out=data)
    if runs.exists():
        raise SystemExit(f"{runs} exists: remove it (or give another --work)")
    common = ["--persons", str(args.persons), "--requests", str(args.requests), "--seed",
              str(args.seed), "--work", str(args.work), "--index", args.index,
              "--spark-master", spark_master]
    seconds: dict[str, float] = {}
    if args.index == "shared" and not (index / "index.json").exists():
        seconds["index (spark)"] = _child([*common, "--build-index"], "the Spark index")
    for engine in ENGINES:
        seconds[engine] = _child([*common, "--one", engine], f"process on {engine}")
    agree, lines = compare_runs(runs / "duckdb", runs / "spark", args.tolerance)
    print(f"demo data: {args.persons:,} persons, {args.requests:,} request rows, seed "
          f"{args.seed}; index: {args.index}; spark {spark_master}; tolerance {args.tolerance:g}")
    print("seconds: " + json.dumps({k: round(v, 1) for k, v in seconds.items()}))
    print("\n".join(lines))
    print("VERDICT: " + ("every row agrees" if agree else "the engines DIFFER"))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
