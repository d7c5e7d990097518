"""Cost curve: index and process times over persons × requests, fitted and projected.

    # the default grid: persons 1M, 3M, 10M × requests 100k, 1M (DuckDB)
    python bench/bench_scale.py --work /tmp/lk/scale --threads 2 --memory-limit 5GB
    # some points only
    python bench/bench_scale.py --persons 1000000 --persons 3000000 --requests 100000 \\
        --requests 1000000 --work /tmp/lk/scale --threads 2 --memory-limit 5GB
    # one point on a dataset and index that already exist (e.g. bench_match's 10M run)
    python bench/bench_scale.py --data /tmp/lk/10m/synth-10000000-5 \\
        --index /tmp/lk/10m/synth-10000000-5/index --requests 1000000 --threads 2 \\
        --memory-limit 5GB --out bench/results/scale-10m.json
    # merge result files into one table, fit and projection (docs: --write-docs)
    python bench/bench_scale.py --merge bench/results/scale-*.json --markdown

Data: ``--work/synth-<persons>-<seed>`` exactly as ``bench_match.py`` makes it (so an
existing dataset and its ``index/`` are reused, not rebuilt). A dataset is synthesised
with as many request rows as the largest ``--requests`` asked for (1M by default); a
smaller request count is a sample of that file: ``<data>/requests-<n>/`` holds the ``n``
rows whose ``sha256(request_row_id)`` sort first (in the file's order), their truth rows,
the same ``batch.toml`` and a link to the same ``master/``. The rows keep the file's mix
of outcomes only in expectation, and at 1M persons × 1M requests synth runs out of fresh
persons and requests some of them twice (``synth/requests.py``): cost per row, not
accuracy, is what this script is for.

Each measurement runs in its own child process whose working directory is fresh
(``--work/runs/<point>-<what>-<time>``), so DuckDB's spill directory (``.tmp`` of an
in-memory database) is the child's own; the parent samples its size every 0.5 s and
records the maximum (``spill_gib``), and reaps the child with ``wait4`` for its CPU
seconds and peak RSS. Per point:

* ``index`` (once per persons, cached next to the index as ``index-build.json``): wall
  and CPU seconds, peak RSS, spill, and the build's own step timings;
* ``process``: ``bench_match.run_lastknown`` — ``process_request`` end to end, the
  pipeline's stage timings and match timings, CPU until evaluation starts, peak RSS
  before evaluation;
* ``exact``: ``bench_match.crude_exact_lookup`` on the same rows, in the same run — the
  ratio's denominator.

Each stage's wall seconds are fitted as ``t = a · persons^b · requests^c`` by least
squares on the logarithms (index steps: ``a · persons^b``) and projected to
7.3M requests × 30M persons. ``--engine spark`` runs Spark local[2] (1M / 100k by
default); its CPU and memory count the JVM and Python workers it starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_match import _cpu as _own_cpu
from bench_match import _peak_rss_gib as _own_peak_rss_gib


def _descendants() -> list[int]:
    """Live processes below this one (Spark's JVM and its Python workers)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [os.getpid()]
    while frontier:
        kids = [pid for pid, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def _descendants_cpu() -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in _descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def _cpu() -> float:
    """CPU seconds of this process, its reaped children and its live descendants (a Spark
    run's JVM and Python workers live until the process ends)."""
    return _own_cpu() + _descendants_cpu()


def _descendants_gib(field: str) -> float:
    """The sum of a ``/proc/PID/status`` memory field (``VmHWM``, ``VmRSS``) over the live
    descendants, in GiB."""
    total = 0.0
    for pid in _descendants():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) / 2**20
    return total


class TreePeak:
    """The largest memory the descendants held together, sampled every ``every`` seconds
    while the measurement runs: a Spark run's JVM may have ended (and not yet been waited
    for) when the measurement is read, so its own peak is gone by then."""

    def __init__(self, every: float = 0.5) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, _descendants_gib("VmRSS"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def _peak_rss_gib(tree: TreePeak | None = None) -> float:
    """This process's peak RSS plus its descendants' (Spark's JVM): the live ones', the
    largest ended child's, or ``tree``'s sampled peak, whichever is largest."""
    live = _descendants_gib("VmHWM")
    ended = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    sampled = tree.stop() if tree is not None else 0.0
    return _own_peak_rss_gib() + max(live, ended, sampled)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PERSONS = (1_000_000, 3_000_000, 10_000_000)
REQUESTS = (100_000, 1_000_000)
#: The run the curve is for: a national request against a large return file.
TARGET = {"persons": 30_000_000, "requests": 7_300_000}
#: Under this many projected minutes the target run is worth doing on this machine.
RUN_IT_MINUTES = 90.0
#: The issue's goal (not a bar) for the target run's process on this machine.
GOAL_MINUTES = 15.0
RESULTS_VERSION = 1
#: Where the docs' generated block lives (README.md and docs/SCALE.md).
BEGIN, END = "<!-- bench_scale:begin -->", "<!-- bench_scale:end -->"
DOCS = (ROOT / "README.md", ROOT / "docs" / "SCALE.md")
RESULTS_GLOB = "scale*.json"
RESULTS_DIR = HERE / "results"


# --- fitting (pure; tests/test_bench_scale.py) ------------------------------------------

@dataclass(frozen=True)
class Fit:
    """``seconds = coefficient · persons^persons_exp · requests^requests_exp``.

    An exponent is None when the points do not vary that variable (it cannot be fitted);
    ``predict`` then gives None unless the target has the same value.
    """

    coefficient: float
    persons_exp: float | None
    requests_exp: float | None
    points: int
    #: root mean square of the log residuals (0 for an exact power law)
    rms_log_residual: float
    #: the values a missing exponent was held at (prediction only there)
    held: tuple[tuple[str, float], ...] = ()

    def predict(self, persons: float, requests: float) -> float | None:
        value = math.log(self.coefficient)
        for name, exp, x in (("persons", self.persons_exp, persons),
                             ("requests", self.requests_exp, requests)):
            if exp is None:
                if dict(self.held).get(name) != x:
                    return None
                continue
            value += exp * math.log(x)
        return math.exp(value)


#: Times below this are fitted as this (a stage that took "0 s" has no logarithm).
FLOOR_SECONDS = 0.01


def fit_power_law(points: list[tuple[float, float, float]]) -> Fit:
    """Least squares of ``log t = log a + b log persons + c log requests``.

    ``points`` are ``(persons, requests, seconds)``. A variable with one distinct value is
    left out of the fit (its exponent None).

    >>> f = fit_power_law([(1e6, 1e5, 2.0), (4e6, 1e5, 8.0), (1e6, 4e5, 4.0)])
    >>> round(f.persons_exp, 6), round(f.requests_exp, 6)
    (1.0, 0.5)
    """
    if not points:
        raise ValueError("no points to fit")
    p = np.array([x[0] for x in points], dtype=float)
    r = np.array([x[1] for x in points], dtype=float)
    t = np.maximum(np.array([x[2] for x in points], dtype=float), FLOOR_SECONDS)
    columns, names, held = [np.ones(len(points))], [], []
    for name, values in (("persons", p), ("requests", r)):
        if len(set(values.tolist())) > 1:
            columns.append(np.log(values))
            names.append(name)
        else:
            held.append((name, float(values[0])))
    if len(points) < len(columns):
        raise ValueError(f"{len(points)} points cannot fit {len(columns)} parameters")
    design = np.column_stack(columns)
    y = np.log(t)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    exps = dict(zip(names, coef[1:].tolist(), strict=True))
    return Fit(coefficient=float(math.exp(coef[0])), persons_exp=exps.get("persons"),
               requests_exp=exps.get("requests"), points=len(points),
               rms_log_residual=float(np.sqrt(np.mean(residual ** 2))), held=tuple(held))


def _process_stages(process: dict[str, Any]) -> dict[str, float]:
    """Top-level stages of one process run: the pipeline's stages, and the rest of the
    wall time (publishing: package, ledger, record; the pipeline snapshots its timings
    as publishing starts) as ``publish+rest``. They add up to the wall seconds."""
    stages = {k: float(v) for k, v in (process.get("stage_timings") or {}).items()}
    stages["publish+rest"] = max(float(process["seconds"]) - sum(stages.values()), 0.0)
    return stages


def _index_stages(build: dict[str, Any]) -> dict[str, float]:
    """An index build's logged steps (0.1 s resolution) and the rest of its wall time
    (reading and checking the master, writing the manifest and quarantine) as
    ``load+rest``. They add up to the wall seconds."""
    steps = {k: float(v) for k, v in (build.get("steps") or {}).items()}
    steps["load+rest"] = max(float(build["seconds"]) - sum(steps.values()), 0.0)
    return steps


def _index_stages_cpu(build: dict[str, Any]) -> dict[str, float] | None:
    """The same in CPU seconds (None when the build did not record them)."""
    if not build.get("steps_cpu"):
        return None
    steps = {k: float(v) for k, v in build["steps_cpu"].items()}
    steps["load+rest"] = max(float(build["cpu"]) - sum(steps.values()), 0.0)
    return steps


def _process_stages_cpu(process: dict[str, Any]) -> dict[str, float] | None:
    """A process run's CPU seconds per pipeline stage (``publish`` included) and the rest
    until evaluation (start-up; the spreadsheet child, counted once it is waited for) as
    ``rest``. None when the run did not record them."""
    if not process.get("stage_cpu"):
        return None
    stages = {k: float(v) for k, v in process["stage_cpu"].items()}
    stages["rest"] = max(float(process["cpu"]) - sum(stages.values()), 0.0)
    return stages


#: The fitted groups: (key, label, how a point gives that group's stages, by requests?)
GROUPS: tuple[tuple[str, str, Any, bool], ...] = (
    ("process", "process wall: {}", lambda x: _process_stages(x["process"]), True),
    ("process_cpu", "process CPU: {}", lambda x: _process_stages_cpu(x["process"]), True),
    ("match", "match wall: {}", lambda x: x["process"].get("match_timings"), True),
    ("index", "index wall: {}", lambda x: _index_stages(x["index"]), False),
    ("index_cpu", "index CPU: {}", lambda x: _index_stages_cpu(x["index"]), False),
)


def fit_all(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-stage fits of the process (persons, requests; wall and CPU), of its match
    timings, of its totals and the exact lookup's, and of the index steps (persons)."""
    done = [x for x in points if x.get("process")]
    builds = [{"persons": p, "requests": 1.0, "index": b}
              for p, b in _index_builds(points).items()]
    fits: dict[str, dict[str, Fit]] = {"total": {}}

    def add(group: str, name: str, rows: list[tuple[float, float, float]]) -> None:
        try:
            fits.setdefault(group, {})[name] = fit_power_law(rows)
        except ValueError:  # no points, or fewer than the fit has parameters
            pass

    for group, _, stages_of, per_request in GROUPS:
        fits.setdefault(group, {})
        rows = [(x, st) for x in (done if per_request else builds)
                if (st := stages_of(x)) is not None]
        names: list[str] = []
        for _, st in rows:
            names += [n for n in st if n not in names]
        for name in names:
            add(group, name, [(x["persons"], x["requests"], float(st[name]))
                              for x, st in rows if name in st])
    add("total", "process wall", [(x["persons"], x["requests"], x["process"]["seconds"])
                                  for x in done])
    add("total", "process CPU", [(x["persons"], x["requests"], x["process"]["cpu"])
                                 for x in done if x["process"].get("cpu") is not None])
    add("total", "exact wall", [(x["persons"], x["requests"], x["exact"]["seconds"])
                                for x in points if x.get("exact")])
    add("total", "exact CPU", [(x["persons"], x["requests"], x["exact"]["cpu"])
                               for x in points if (x.get("exact") or {}).get("cpu")])
    add("total", "index wall", [(b["persons"], 1.0, b["index"]["seconds"]) for b in builds])
    add("total", "index CPU", [(b["persons"], 1.0, b["index"]["cpu"]) for b in builds
                               if b["index"].get("cpu") is not None])
    return fits


def _index_builds(points: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """One measured index build per persons count (the last one given)."""
    builds: dict[int, dict[str, Any]] = {}
    for x in points:
        if x.get("index"):
            builds[int(x["persons"])] = x["index"]
    return builds


def _sum(values: dict[str, float | None]) -> float | None:
    """The sum when every stage could be projected, else None."""
    if not values or any(v is None for v in values.values()):
        return None
    return sum(v for v in values.values() if v is not None)


def project(fits: dict[str, dict[str, Fit]], persons: float = TARGET["persons"],
            requests: float = TARGET["requests"]) -> dict[str, Any]:
    """The fits evaluated at one point: the process as the sum of its stage fits (wall and
    CPU; and, as a check, the fits of its totals), the index build (persons only), the
    exact lookup."""
    total = fits["total"]
    by_group = {group: {n: f.predict(persons, requests if per_request else 1.0)
                        for n, f in fits.get(group, {}).items()}
                for group, _, _, per_request in GROUPS}

    def at(name: str, req: float = requests) -> float | None:
        return total[name].predict(persons, req) if name in total else None

    return {
        "persons": persons, "requests": requests,
        "process_seconds": _sum(by_group["process"]),
        "process_cpu_seconds": _sum(by_group["process_cpu"]),
        "process_seconds_total_fit": at("process wall"),
        "process_cpu_seconds_total_fit": at("process CPU"),
        "index_seconds": at("index wall", 1.0), "index_cpu_seconds": at("index CPU", 1.0),
        "exact_seconds": at("exact wall"), "exact_cpu_seconds": at("exact CPU"),
        "stages": by_group["process"], "stages_cpu": by_group["process_cpu"],
        "match": by_group["match"], "index_steps": by_group["index"],
        "index_steps_cpu": by_group["index_cpu"],
    }


# --- results: merge, render --------------------------------------------------------------

def merge(files: list[Path]) -> dict[str, Any]:
    """One results document from several; a later file's point (same persons, requests
    and engine) replaces an earlier one's; runs' notes are kept in order."""
    points: dict[tuple[int, int, str], dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    for path in files:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("version") != RESULTS_VERSION:
            raise SystemExit(f"{path}: not a bench_scale results file (version "
                             f"{doc.get('version')!r}, expected {RESULTS_VERSION})")
        runs.append(doc.get("run", {}))
        for x in doc["points"]:
            points[(int(x["persons"]), int(x["requests"]), x.get("engine", "duckdb"))] = x
    return {"version": RESULTS_VERSION, "runs": runs,
            "points": [points[k] for k in sorted(points, key=lambda k: (k[2], k[0], k[1]))]}


def _n(value: float) -> str:
    """1000000 → 1M, 100000 → 100k, 7300000 → 7.3M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _g(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _e(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_markdown(doc: dict[str, Any]) -> str:
    """The measured table, the fits and the projection, as Markdown (what the docs hold
    between BEGIN and END)."""
    points = doc["points"]
    lines = ["| engine | persons | requests | index s | index CPU s | index GiB "
             "| index spill GiB | process s | process CPU s | process GiB | spill GiB "
             "| exact s | exact CPU s | ratio | CPU ratio | match s | candidates s | scoring s "
             "| decision s | publish+rest s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
             "|---:|---:|---:|---:|---:|"]
    for x in points:
        ix, pr, ex = x.get("index") or {}, x.get("process") or {}, x.get("exact") or {}
        mt, st = pr.get("match_timings") or {}, _process_stages(pr) if pr else {}
        ratio = pr["seconds"] / ex["seconds"] if pr and ex else None
        cpu_ratio = (pr["cpu"] / ex["cpu"] if pr.get("cpu") and ex.get("cpu") else None)
        lines.append(
            f"| {x.get('engine', 'duckdb')} | {_n(x['persons'])} | {_n(x['requests'])} "
            f"| {_s(ix.get('seconds'))} | {_s(ix.get('cpu'))} | {_g(ix.get('peak_rss_gib'))} "
            f"| {_g(ix.get('spill_gib'))} | {_s(pr.get('seconds'))} | {_s(pr.get('cpu'))} "
            f"| {_g(pr.get('peak_rss_gib_before_evaluate'))} | {_g(pr.get('spill_gib'))} "
            f"| {_s(ex.get('seconds'))} | {_s(ex.get('cpu'))} | {_s(ratio)} | {_s(cpu_ratio)} "
            f"| {_s(st.get('match'))} | {_s(mt.get('candidate_search'))} "
            f"| {_s(mt.get('scoring'))} | {_s(mt.get('decision'))} "
            f"| {_s(st.get('publish+rest'))} |")
    out = ["\n".join(lines), ""]
    for run in doc.get("runs", []):
        if run:
            out.append(f"- run of {run.get('date', '?')} ({run.get('engine', 'duckdb')}, "
                       f"threads {run.get('threads') or 'all'}, memory_limit "
                       f"{run.get('memory_limit') or 'default'}): {run.get('note', '')}".rstrip())
    out.append("")
    duck = [x for x in points if x.get("engine", "duckdb") == "duckdb"]
    measured = [x for x in duck if is_target(x)]
    duck = [x for x in duck if not is_target(x)]  # the fit predicts the target, never sees it
    if len(duck) < 2:
        out.append("(fewer than two DuckDB points: no fit)")
        return "\n".join(out) + "\n"
    fits = fit_all(duck)
    target = project(fits)
    out += [f"Fit `seconds = a · persons^b · requests^c` (least squares on logarithms, "
            f"{len(duck)} DuckDB points{', not the target run' if measured else ''}) and "
            f"its value at {_n(TARGET['requests'])} requests × "
            f"{_n(TARGET['persons'])} persons:", "",
            "| stage | a | b (persons) | c (requests) | rms log residual "
            f"| projected s at {_n(TARGET['requests'])} × {_n(TARGET['persons'])} |",
            "|---|---:|---:|---:|---:|---:|"]
    groups = [("total", "{}", None, True), *GROUPS]
    for group, label, _, per_request in groups:
        for name, f in fits.get(group, {}).items():
            index_like = not per_request or name.startswith("index")
            value = f.predict(TARGET["persons"], 1.0 if index_like else TARGET["requests"])
            out.append(f"| {label.format(name)} | {f.coefficient:.3g} | {_e(f.persons_exp)} "
                       f"| {_e(f.requests_exp)} | {f.rms_log_residual:.3f} | {_s(value)} |")
    out.append("")

    def minutes(value: float | None) -> str:
        return "–" if value is None else f"{value / 60:,.1f} min"

    wall, cpu = target["process_seconds"], target["process_cpu_seconds"]
    out.append(
        f"Projection for {_n(TARGET['requests'])} requests × {_n(TARGET['persons'])} persons: "
        f"process {minutes(wall)} wall as the sum of the stage fits "
        f"({minutes(target['process_seconds_total_fit'])} from the fit of the total), "
        f"{minutes(cpu)} CPU as the sum of the stage CPU fits "
        f"({minutes(target['process_cpu_seconds_total_fit'])} from the total); index build "
        f"{minutes(target['index_seconds'])} wall, {minutes(target['index_cpu_seconds'])} "
        f"CPU; exact lookup {minutes(target['exact_seconds'])} wall.")
    out.append("")
    if measured:
        out += [_measured_at_target(measured[-1], target, minutes), ""]
    threads = max([int(r.get("threads") or 0) for r in doc.get("runs", []) if r] or [0]) or 2
    cpu = cpu if cpu is not None else target["process_cpu_seconds_total_fit"]
    if measured:
        took = (measured[-1].get("process") or {}).get("seconds")
        out.append(f"Verdict: the run was done on this machine; its process took "
                   f"{minutes(took)} of wall time (goal: {GOAL_MINUTES:g} minutes).")
    elif wall is None:
        out.append("Verdict: no projection from these points (a stage's growth with persons "
                   "or requests was never varied).")
    elif wall / 60 < RUN_IT_MINUTES:
        out.append(f"Verdict: the projected process is under {RUN_IT_MINUTES:g} minutes: "
                   "the run should be done on this machine.")
    elif cpu is not None and cpu / threads / 60 < RUN_IT_MINUTES:
        out.append(f"Verdict: the projected process is over {RUN_IT_MINUTES:g} minutes of wall "
                   f"time as measured, but its CPU ({minutes(cpu)}) spread over {threads} "
                   f"threads is {minutes(cpu / threads)}: on an idle machine the run may be "
                   f"under {RUN_IT_MINUTES:g} minutes; measure the largest point again on an "
                   "idle machine before deciding.")
    else:
        out.append(f"Verdict: the projected process is over {RUN_IT_MINUTES:g} minutes, in "
                   "wall time and in CPU per thread: the run is not worth doing on this "
                   "machine as it is.")
    return "\n".join(out) + "\n"


def is_target(point: dict[str, Any]) -> bool:
    """The point is the run the projection is for (:data:`TARGET`): synth may write a few
    request rows fewer than asked, so within 1 % of its requests."""
    return (int(point["persons"]) == TARGET["persons"]
            and abs(int(point["requests"]) - TARGET["requests"]) <= TARGET["requests"] / 100)


def _measured_at_target(x: dict[str, Any], target: dict[str, Any], minutes: Any) -> str:
    """The target run beside what the fit of the other points projected for it."""
    ix, pr, ex = x.get("index") or {}, x.get("process") or {}, x.get("exact") or {}

    def both(got: float | None, want: float | None) -> str:
        ratio = f", {got / want:.2f}× the projection" if got and want else ""
        return f"{minutes(got)} (projected {minutes(want)}{ratio})"

    return (f"Measured at {_n(x['requests'])} requests × {_n(x['persons'])} persons: process "
            f"{both(pr.get('seconds'), target['process_seconds'])} wall, "
            f"{both(pr.get('cpu'), target['process_cpu_seconds'])} CPU, peak RSS "
            f"{_g(pr.get('peak_rss_gib_before_evaluate'))} GiB, spill "
            f"{_g(pr.get('spill_gib'))} GiB; index build "
            f"{both(ix.get('seconds'), target['index_seconds'])} wall, "
            f"{both(ix.get('cpu'), target['index_cpu_seconds'])} CPU, peak RSS "
            f"{_g(ix.get('peak_rss_gib'))} GiB, spill {_g(ix.get('spill_gib'))} GiB; exact "
            f"lookup {both(ex.get('seconds'), target['exact_seconds'])} wall.")


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between BEGIN and END replaced by ``block``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} block")
    return text[:start + len(BEGIN)] + "\n" + block + text[end:]


def block_of(text: str) -> str:
    """What lies between BEGIN and END (the generated part of a doc)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} block")
    return text[start + len(BEGIN) + 1:end]


def committed_results() -> dict[str, Any]:
    return merge(sorted(RESULTS_DIR.glob(RESULTS_GLOB)))


# --- data ---------------------------------------------------------------------------------

def _request_rows(path: Path) -> int:
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def sample_ids(ids: list[str], n: int) -> set[str]:
    """The ``n`` ids whose SHA-256 sorts first: a fixed sample, the same on every run.

    >>> sorted(sample_ids(["a", "b", "c"], 2))
    ['a', 'c']
    """
    return set(sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())[:n])


def _records(fh: Any) -> Any:
    """The raw text of each CSV record (a quoted field may hold newlines: a record ends
    where its count of double quotes is even)."""
    buffer = ""
    for line in fh:
        buffer += line
        if buffer.count('"') % 2 == 0:
            yield buffer
            buffer = ""
    if buffer:
        yield buffer


def _filter_csv(src: Path, dst: Path, keep: set[str]) -> int:
    """Copy the header and the records whose first field (``request_row_id``) is in
    ``keep``, byte for byte (so ``""`` stays an empty string and empty stays NULL)."""
    with src.open(encoding="utf-8", newline="") as fh, dst.open(
            "w", encoding="utf-8", newline="") as out:
        records = _records(fh)
        header = next(records)
        if not header.startswith("request_row_id,"):
            raise SystemExit(f"{src}: request_row_id is not its first column")
        out.write(header)
        kept = 0
        for record in records:
            if record.split(",", 1)[0].strip('"') in keep:
                out.write(record)
                kept += 1
    return kept


def requests_dir(data: Path, n: int) -> Path:
    """``data`` itself when its request file has ``n`` rows, else ``data/requests-<n>``
    (a fixed sample of ``n`` rows with their truth rows, made once)."""
    import csv

    total = _request_rows(data / "request.csv")
    if n == total:
        return data
    if n > total:  # synth ran short of fresh persons (e.g. 1M requests of 1M persons)
        say(f"{data} has {total:,} request rows, fewer than --requests {n:,}: measuring "
            f"all {total:,} (the point is recorded with that count)")
        return data
    sub = data / f"requests-{n}"
    if (sub / "truth.csv").exists():
        return sub
    tmp = data / f".requests-{n}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    with (data / "request.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        at = next(reader).index("request_row_id")
        ids = [row[at] for row in reader]
    keep = sample_ids(ids, n)
    _filter_csv(data / "request.csv", tmp / "request.csv", keep)
    _filter_csv(data / "truth.csv", tmp / "truth.csv", keep)
    shutil.copy(data / "batch.toml", tmp / "batch.toml")
    (tmp / "master").symlink_to(Path("..") / "master")
    tmp.rename(sub)
    return sub


def persons_of(data: Path) -> int | None:
    """The persons count in a bench_match dataset's name (``synth-<persons>-<seed>``)."""
    m = re.fullmatch(r"synth-(\d+)-\d+", data.name)
    return int(m.group(1)) if m else None


# --- measuring ----------------------------------------------------------------------------

class _IndexSteps(logging.Handler):
    """Keeps the index build's "index step NAME: S s" log lines, and the process's CPU
    seconds (all its threads) between one such line and the one before (the steps run
    one after another, so that is the step's CPU)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.mark = time.process_time()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("building the match index"):
            self.mark = time.process_time()
        m = re.fullmatch(r"index step (\S+): ([0-9.]+) s", message)
        if m:
            name, now = m.group(1).removeprefix("lkidx."), time.process_time()
            self.steps[name] = self.steps.get(name, 0.0) + float(m.group(2))
            self.cpu[name] = self.cpu.get(name, 0.0) + now - self.mark
            self.mark = now


def _time_stages_cpu() -> dict[str, float]:
    """Make the pipeline's ``Stages.stage`` also record each stage's CPU seconds (this
    process, all threads) into the returned dict — including ``publish``, whose wall time
    the summary cannot hold (it is written as publishing starts)."""
    from contextlib import contextmanager

    from lastknown import stages as st

    cpu: dict[str, float] = {}
    original = st.Stages.stage

    @contextmanager
    def stage(self: Any, name: str) -> Any:
        start = time.process_time()
        try:
            with original(self, name):
                yield
        finally:
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - start

    st.Stages.stage = stage  # type: ignore[method-assign]
    return cpu


def check_engine(name: str) -> None:
    """Exit with a plain message when ``name`` cannot start here (Spark without the
    ``spark`` extra or Java), before any dataset is made."""
    if name == "duckdb":
        return
    from lastknown.engines import make_engine
    from lastknown.errors import LastknownError

    try:
        with make_engine(name, threads=2):
            pass
    except LastknownError as exc:
        raise SystemExit(f"--engine {name} cannot start here: {exc}") from exc


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints ``RESULT {json}``."""
    limits = {"threads": args.threads, "memory_limit": args.memory_limit}
    data, index, start_cpu = Path(args.data), Path(args.index), _cpu()
    tree = TreePeak()
    out: dict[str, Any] = {}
    answered: dict[str, float] = {}
    if args.child == "index":
        from lastknown.pipeline import build_master_index

        steps = _IndexSteps()
        log = logging.getLogger("lastknown.match")
        log.addHandler(steps)
        log.setLevel(logging.INFO)
        engine = {} if args.engine == "duckdb" else {"engine": args.engine}
        start = time.perf_counter()
        info = build_master_index(data / "master", out=index, **limits, **engine)
        out = {"seconds": time.perf_counter() - start, "steps": steps.steps,
               "steps_cpu": steps.cpu,
               "return_rows": info.return_rows, "record_count": info.record_count}
    elif args.child == "process":
        import bench_match

        import lastknown.evaluate as ev

        evaluate = ev.evaluate

        def timed_evaluate(*a: Any, **k: Any) -> Any:
            answered["cpu"] = _cpu() - start_cpu  # answering ends where scoring begins
            # ... and so does its memory, the engine's JVM included (bench_match reads
            # only its own process's)
            answered["peak"] = _own_peak_rss_gib() + max(_descendants_gib("VmHWM"),
                                                         tree.peak)
            return evaluate(*a, **k)

        ev.evaluate = timed_evaluate  # type: ignore[assignment]
        stage_cpu = _time_stages_cpu()
        out = bench_match.run_lastknown(data, index, Path.cwd(), limits, engine=args.engine)
        out["stage_cpu"] = stage_cpu
        out.pop("metrics", None)
        if "peak" in answered:
            out["peak_rss_gib_before_evaluate"] = max(
                float(out.get("peak_rss_gib_before_evaluate") or 0), answered["peak"])
    else:
        import bench_match

        score_hits = bench_match._score_hits

        def timed_score(*a: Any, **k: Any) -> Any:
            answered["cpu"] = _cpu() - start_cpu  # the lookup ends where scoring begins
            return score_hits(*a, **k)

        bench_match._score_hits = timed_score  # type: ignore[assignment]
        out = bench_match.crude_exact_lookup(data, limits)
    out["cpu"] = answered.get("cpu", _cpu() - start_cpu)
    out["peak_rss_gib"] = _peak_rss_gib(tree)
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")


def _tree_bytes(path: Path) -> int:
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_bytes(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


def measure(what: str, args: argparse.Namespace, *, data: Path, index: Path,
            tag: str) -> dict[str, Any]:
    """Run one child in a fresh working directory; sample its spill directory."""
    cwd = args.work / "runs" / f"{tag}-{what}-{time.strftime('%Y%m%d-%H%M%S')}"
    cwd.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", what, "--data", str(data), "--index",
           str(index), "--engine", args.engine]
    for flag, value in (("--threads", args.threads), ("--memory-limit", (
            args.index_memory_limit or args.memory_limit) if what == "index"
            else args.memory_limit)):
        if value:
            cmd += [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    spill = cwd / ".tmp"
    peak_spill, load = 0, os.getloadavg()[0]
    started = time.perf_counter()
    with (cwd / "stdout").open("w") as so, (cwd / "stderr").open("w") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=cwd, env=env)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_spill = max(peak_spill, _tree_bytes(spill))
            time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [ln for ln in (cwd / "stdout").read_text().splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{tag} {what} failed (exit {proc.returncode}); its stderr:\n"
                         + (cwd / "stderr").read_text()[-3000:])
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    result.update({
        "spill_gib": peak_spill / 2**30, "child_wall_seconds": wall,
        "child_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "child_peak_rss_gib": usage.ru_maxrss / 2**20,
        "load_average_1m": [round(load, 2), round(os.getloadavg()[0], 2)], "dir": str(cwd)})
    shutil.rmtree(spill, ignore_errors=True)
    return result


def _synthesise(args: argparse.Namespace, persons: int, requests: int) -> None:
    cmd = [sys.executable, str(HERE / "bench_match.py"), "--synth", "--persons", str(persons),
           "--requests", str(requests), "--seed", str(args.seed), "--work", str(args.work)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(cmd, check=True, env=env)


def run_point(args: argparse.Namespace, *, data: Path, index: Path, persons: int,
              requests: int) -> dict[str, Any]:
    """Index (measured once per dataset), then process and exact on ``requests`` rows."""
    import bench_match

    tag = f"{persons}-{requests}-{args.engine}"
    cache = index.parent / f"{index.name}-build.json"
    built: dict[str, Any] | None = None
    if args.data and (index / "index.json").exists() and not _index_current(index):
        raise SystemExit(f"{index} was built by another lastknown version (index_version): "
                         "build it again, or give a new --index folder to build one there")
    if args.engine == "duckdb" and not bench_match.index_is_current(index):
        cache.unlink(missing_ok=True)  # bench_match's own layout: an old index is rebuilt
    if not (index / "index.json").exists():
        say(f"{tag}: building the index at {index}")
        built = measure("index", args, data=data, index=index, tag=f"{persons}-{args.engine}")
        cache.write_text(json.dumps(built, indent=2), encoding="utf-8")
    elif cache.exists():
        built = json.loads(cache.read_text(encoding="utf-8"))
    rows_dir = requests_dir(data, requests)
    requests = _request_rows(rows_dir / "request.csv")
    tag = f"{persons}-{requests}-{args.engine}"
    say(f"{tag}: process")
    process = measure("process", args, data=rows_dir, index=index, tag=tag)
    say(f"{tag}: process {process['seconds']:.1f} s; exact lookup")
    exact = measure("exact", args, data=rows_dir, index=index, tag=tag)
    say(f"{tag}: exact {exact['seconds']:.1f} s")
    return {"engine": args.engine, "persons": persons, "requests": requests,
            "data": str(data), "index_dir": str(index),
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "index": built, "process": process, "exact": exact}


def _index_current(index: Path) -> bool:
    """The index at ``index`` is this lastknown's (never removes anything)."""
    from lastknown.match.index import INDEX_VERSION, MANIFEST

    try:
        manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(manifest.get("index_version") == INDEX_VERSION)


def say(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def describe_index(index: Path, *, sample: int = 200_000, block_limit: int = 2000,
                   growth: tuple[float, ...] = ()) -> dict[str, Any]:
    """Rows and bytes per row of each index table (from a sample), and the sizes of the
    blocking keys per rule (``idx_block_size``): what docs/SCALE.md sizes Spark from.

    ``text_bytes`` is the row's content (strings and list elements at their UTF-8 length,
    numbers at their width); ``unsafe_row_bytes`` is Spark's in-memory and shuffle row
    before compression (8 bytes of null bits per 64 columns, 8 per column, variable data
    rounded up to 8, lists with an 8-byte header and 8 bytes per element offset).
    """
    import duckdb

    con = duckdb.connect(str(index / "index.duckdb"), read_only=True)
    tables: dict[str, Any] = {}
    widths = {"BIGINT": 8, "DOUBLE": 8, "INTEGER": 4, "DATE": 4, "BOOLEAN": 1}
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                "ORDER BY 1").fetchall():
        rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        cols = con.execute(f"DESCRIBE {table}").fetchall()
        text, unsafe = [], []
        for name, kind, *_ in cols:
            if kind == "VARCHAR":
                text.append(f"coalesce(strlen({name}), 0)")
                unsafe.append(f"8 + 8 * ceil(coalesce(strlen({name}), 0) / 8)")
            elif kind.endswith("[]"):
                elems = f"coalesce(list_sum(list_transform({name}, lambda x: strlen(x))), 0)"
                n = f"coalesce(len({name}), 0)"
                text.append(elems)
                unsafe.append(f"8 + 16 + 8 * {n} + 8 * ceil({elems} / 8)")
            else:
                text.append(str(widths.get(kind, 8)))
                unsafe.append("8")
        nulls = 8 * -(-len(cols) // 64)
        got = con.execute(
            f"SELECT avg({' + '.join(text)}), avg({nulls} + {' + '.join(unsafe)}) "
            f"FROM (SELECT * FROM {table} USING SAMPLE reservoir({sample} ROWS) "
            "REPEATABLE (1))").fetchall()[0]
        tables[table] = {"rows": rows, "columns": len(cols),
                         "text_bytes": round(float(got[0] or 0), 1),
                         "unsafe_row_bytes": round(float(got[1] or 0), 1)}
    blocks = {}
    for rule, keys, records, biggest, p50, p99, p999, sq, over, over_records in con.execute(f"""
            SELECT rule, count(*), sum(n), max(n), quantile_disc(n, 0.5),
                   quantile_disc(n, 0.99), quantile_disc(n, 0.999), sum(n * n),
                   count_if(n > {block_limit}), sum(n) FILTER (WHERE n > {block_limit})
            FROM idx_block_size GROUP BY rule ORDER BY rule""").fetchall():
        blocks[rule] = {"keys": keys, "records": int(records), "max": biggest, "p50": p50,
                        "p99": p99, "p999": p999,
                        "size_biased_mean": round(float(sq) / float(records), 1),
                        "keys_over_limit": over, "records_in_keys_over_limit":
                            int(over_records or 0)}
    # If every key grew by the same factor (a bigger population drawn from the same names
    # and streets), which share of a rule's record keys would pass block_limit and be
    # skipped: what the same blocking keys would lose at 10M, 30M and 200M persons.
    for factor in growth:
        for rule, share in con.execute(f"""
                SELECT rule, sum(n) FILTER (WHERE n * {factor} > {block_limit}) / sum(n)
                FROM idx_block_size GROUP BY rule""").fetchall():
            blocks[rule].setdefault("share_of_record_keys_over_limit_if_grown", {})[
                f"{factor:g}x"] = round(float(share or 0.0), 4)
    top = con.execute("SELECT rule, n FROM idx_block_size ORDER BY n DESC LIMIT 10").fetchall()
    manifest = json.loads((index / "index.json").read_text(encoding="utf-8"))
    return {"index": str(index), "return_rows": manifest.get("return_rows"),
            "record_count": manifest.get("record_count"), "tin_count": manifest.get("tin_count"),
            "file_bytes": (index / "index.duckdb").stat().st_size, "tables": tables,
            "blocks": blocks, "largest_blocks": [{"rule": r, "n": n} for r, n in top]}


def write_docs(doc: dict[str, Any]) -> None:
    block = render_markdown(doc)
    for path in DOCS:
        path.write_text(replace_block(path.read_text(encoding="utf-8"), block), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, action="append",
                        help=f"persons (repeat; default {', '.join(map(_n, PERSONS))}; "
                        "Spark: 1M)")
    parser.add_argument("--requests", type=int, action="append",
                        help=f"request rows (repeat; default {', '.join(map(_n, REQUESTS))}; "
                        "Spark: 100k)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-scale"))
    parser.add_argument("--data", type=Path, help="one existing dataset (bench_match layout)")
    parser.add_argument("--index", type=Path, help="its existing index (with --data)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 5GB")
    parser.add_argument("--index-memory-limit", help="... of index builds (default: same)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--note", default="", help="said with the results (e.g. machine busy)")
    parser.add_argument("--out", type=Path, help="results JSON (default: --work/scale-<time>.json)")
    parser.add_argument("--merge", type=Path, nargs="+", help="results files to merge and show")
    parser.add_argument("--markdown", action="store_true", help="print only the generated "
                        "Markdown (table, fit, projection)")
    parser.add_argument("--write-docs", action="store_true", help="with --merge: rewrite the "
                        "generated block of README.md and docs/SCALE.md")
    parser.add_argument("--describe-index", type=Path, metavar="DIR", help="print the "
                        "index's table sizes and blocking-key sizes as JSON (for sizing)")
    parser.add_argument("--describe-index-persons", type=int, help="persons of that index "
                        "(when its folder's parent is not named synth-<persons>-<seed>)")
    parser.add_argument("--child", choices=("index", "process", "exact"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.describe_index:
        persons = persons_of(args.describe_index.parent) or args.describe_index_persons
        growth = tuple(t / persons for t in (10e6, TARGET["persons"], 200e6)) if persons else ()
        sys.stdout.write(json.dumps(describe_index(args.describe_index, growth=growth),
                                    indent=2) + "\n")
        return
    if args.merge:
        doc = merge(args.merge)
        if args.write_docs:
            write_docs(doc)
        sys.stdout.write(render_markdown(doc) if args.markdown
                         else json.dumps(doc, indent=2) + "\n")
        return
    check_engine(args.engine)
    spark = args.engine == "spark"
    args.work = args.work.absolute()
    args.work.mkdir(parents=True, exist_ok=True)
    requests = sorted(args.requests or ([100_000] if spark else list(REQUESTS)))
    suffix = "" if args.engine == "duckdb" else f"-{args.engine}"
    if args.data:
        data = args.data.absolute()
        persons = persons_of(data) if not args.persons else args.persons[0]
        if persons is None:
            raise SystemExit("--data is not named synth-<persons>-<seed>: give --persons")
        targets = [(data, (args.index or data / f"index{suffix}").absolute(), persons)]
    else:
        targets = [(args.work / f"synth-{p}-{args.seed}",
                    args.work / f"synth-{p}-{args.seed}" / f"index{suffix}", p)
                   for p in sorted(args.persons or ([1_000_000] if spark else list(PERSONS)))]
    started = dt.datetime.now(dt.UTC)
    out_path = args.out or args.work / f"scale-{started.strftime('%Y%m%d-%H%M%S')}.json"
    doc: dict[str, Any] = {"version": RESULTS_VERSION, "run": {
        "date": started.strftime("%Y-%m-%d"), "command": "bench_scale.py " + " ".join(
            a for a in sys.argv[1:]), "threads": args.threads,
        "memory_limit": args.memory_limit, "engine": args.engine, "cores": os.cpu_count(),
        "note": args.note}, "points": []}
    for data, index, persons in targets:
        if not (data / "truth.csv").exists():
            if args.data:
                raise SystemExit(f"{data} holds no dataset (no truth.csv)")
            say(f"synthesising {persons:,} persons, {max(requests):,} requests")
            _synthesise(args, persons, max(requests))
        for n in requests:
            doc["points"].append(run_point(args, data=data, index=index, persons=persons,
                                           requests=n))
            out_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # after each point
    sys.stdout.write(render_markdown(doc))
    say(f"results: {out_path}")


if __name__ == "__main__":
    main()
