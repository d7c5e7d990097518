"""Speed of two (or more) source trees on one dataset, interleaved, against the exact lookup.

    python bench/ab_speed.py --tree before=/path/to/0ab7a6c --tree after=. \\
        --persons 2000000 --requests 200000 --seed 3 --work /tmp/lk/2m --threads 2 --rounds 3

A tree is a checkout of this repository (its ``src`` and ``bench/bench_match.py`` are
used, so an old commit is measured with its own code). The dataset is
``--work/synth-<persons>-<seed>`` as ``bench_match.py`` makes it (run that first). Each
tree gets its own index (``--work/index-<name>``, built once by that tree, timed; index
formats differ between commits). Then, ``--rounds`` times, for each tree in turn: the
tree's ``run_lastknown`` (process_request end to end) and ``crude_exact_lookup`` from its
``bench_match.py``, each in its own process. So a slow spell of a shared machine falls on
both trees alike, and each round's ratio divides by the exact lookup of the same moment.

Besides wall seconds it records CPU seconds (the process's threads and the children it
waited for — the spreadsheet writer — until evaluation starts), which a busy machine
disturbs far less than wall time. Prints one Markdown row per run and a median row per
tree. Each run's package, record and ledger stay in ``--work/runs/<tree>-<round>``
(compare them with ``bench/same_outputs.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


# bench_match has the same two helpers, but importing it here would load *this* tree's
# bench_match, and a child then measuring an older tree would get it from the module cache
# instead of its own (child() imports the tree's bench_match by path).
def _cpu() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(args: argparse.Namespace) -> None:
    """One measurement in this process, with the tree's code on the path."""
    limits = {"threads": args.threads, "memory_limit": args.memory_limit}
    data, index = args.work / f"synth-{args.persons}-{args.seed}", Path(args.index or ".")
    start_cpu, out, answered = _cpu(), {}, {}
    if args.child == "index":
        from lastknown.pipeline import build_master_index

        start = time.perf_counter()
        build_master_index(data / "master", out=index, **limits)
        out = {"seconds": time.perf_counter() - start}
    else:
        sys.path.insert(0, str(Path(args.tree[-1]) / "bench"))
        import bench_match  # the tree's own

        if args.child == "lastknown":
            import lastknown.evaluate as ev

            evaluate = ev.evaluate

            def timed_evaluate(*a: Any, **k: Any) -> Any:
                answered["cpu"] = _cpu() - start_cpu  # answering ends where scoring begins
                return evaluate(*a, **k)

            ev.evaluate = timed_evaluate
            run = Path(args.run)
            run.mkdir(parents=True)
            out = bench_match.run_lastknown(data, index, run, limits)
        else:
            out = bench_match.crude_exact_lookup(data, limits)
    out["cpu"] = answered.get("cpu", _cpu() - start_cpu)
    out["peak_rss_gib"] = _peak_rss_gib()
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")


def _measure(args: argparse.Namespace, tree: Path, what: str, **extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", what, "--tree", str(tree),
           "--persons", str(args.persons), "--seed", str(args.seed), "--work", str(args.work),
           "--threads", str(args.threads)]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    for key, value in extra.items():
        cmd += [f"--{key}", value]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=args.work, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{tree} {what} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tree", action="append", default=[],
                        help="NAME=PATH of a checkout (give two or more)")
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20_000, help="(names the dataset only)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", help="DuckDB memory_limit of every run, e.g. 5GB")
    parser.add_argument("--index-memory-limit", help="... of the index builds (default: same)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=("index", "lastknown", "exact"), help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work = args.work.absolute()
    if args.child:
        child(args)
        return
    trees = {name: Path(path).absolute() for name, path in (t.split("=", 1) for t in args.tree)}
    if not (args.work / f"synth-{args.persons}-{args.seed}" / "truth.csv").exists():
        raise SystemExit("no dataset: run bench/bench_match.py with the same --persons, "
                         "--requests, --seed and --work first")
    out = sys.stdout
    for name, tree in trees.items():
        index = args.work / f"index-{name}"
        if not index.exists():
            limit = args.index_memory_limit or args.memory_limit
            saved, args.memory_limit = args.memory_limit, limit
            built = _measure(args, tree, "index", index=str(index))
            args.memory_limit = saved
            out.write(f"index {name}: {built['seconds']:.1f} s, CPU {built['cpu']:.1f} s, "
                      f"peak RSS {built['peak_rss_gib']:.2f} GiB\n")
    out.write("| run | lastknown s | CPU s | peak RSS GiB | exact s | exact CPU s | ratio "
              "| CPU ratio | precision | recall |\n|---|---|---|---|---|---|---|---|---|---|\n")
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    for round_ in range(1, args.rounds + 1):
        for name, tree in trees.items():
            lk = _measure(args, tree, "lastknown", index=str(args.work / f"index-{name}"),
                          run=str(args.work / "runs" / f"{name}-{round_}-{time.time_ns()}"))
            ex = _measure(args, tree, "exact")
            ratio, cpu_ratio = lk["seconds"] / ex["seconds"], lk["cpu"] / ex["cpu"]
            rows[name].append((ratio, cpu_ratio, lk["cpu"]))
            out.write(f"| {name} {round_} | {lk['seconds']:.1f} | {lk['cpu']:.1f} "
                      f"| {lk['peak_rss_gib']:.2f} | {ex['seconds']:.2f} | {ex['cpu']:.2f} "
                      f"| {ratio:.1f} | {cpu_ratio:.1f} | {lk['precision']:.4f} "
                      f"| {lk['recall']:.4f} |\n")
            out.flush()
    for name, got in rows.items():
        if not got:  # --rounds 0: the index builds only
            continue
        ratio, cpu_ratio, cpu = (statistics.median(x) for x in zip(*got, strict=True))
        out.write(f"median {name}: ratio {ratio:.1f}, CPU ratio {cpu_ratio:.1f}, "
                  f"lastknown CPU {cpu:.1f} s\n")


if __name__ == "__main__":
    main()
