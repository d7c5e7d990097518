"""Benchmark: concurrent small submissions and page loads against a real server; prints a
Markdown table of page times and whether anything was lost.

    .venv/bin/python bench/bench_service.py --submissions 20 --rows 20

Starts ``lastknown serve --demo`` (Uvicorn on a free loopback port, SQLite, embedded
worker; bench/served.py), signs in the demo users over the JSON API, then at once:
``--submissions`` threads each POST one small request file (``--rows`` rows of the demo
request, its own batch id and official) while ``--readers`` threads load the pages
submitters, the officer and the auditor use, until every batch has left the queue.
Nothing may be lost: every submission must be accepted (202) and end held for review,
and every row it sent must be accounted for (matched + unmatched + rejected = sent).
Exit 1 otherwise. This is a measurement, not a test: run it by hand (README "Measured").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from served import client, request_chunks, serve_demo, settle, submit, unaccounted


@dataclass
class Timings:
    """Seconds per page label, shared by the reader threads."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.seconds[label].append(seconds)
            if problem:
                self.errors.append(f"{label}: {problem}")


Pages = list[tuple[str, httpx2.Client, Callable[[], str | None]]]


def read_pages(pages: Pages, timings: Timings, stop: threading.Event) -> None:
    """Load each page in turn until ``stop`` (a page whose path is None yet is skipped);
    time every load."""
    while not stop.is_set():
        for label, session, path in pages:
            target = path()
            if target is None:
                continue
            started = time.perf_counter()
            try:
                reply = session.get(target)
                problem = None if reply.status_code == 200 else f"status {reply.status_code}"
            except httpx2.HTTPError as error:
                problem = type(error).__name__
            timings.add(label, time.perf_counter() - started, problem)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``.

    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95)
    10
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def table(timings: Timings, submits: list[float]) -> str:
    lines = ["| page | loads | median ms | p95 ms | max ms |", "|---|---:|---:|---:|---:|"]
    rows = sorted(timings.seconds.items()) + [("POST /api/batches (submit)", submits)]
    for label, seconds in rows:
        lines.append(f"| {label} | {len(seconds)} | {statistics.median(seconds) * 1000:.0f} | "
                     f"{percentile(seconds, 0.95) * 1000:.0f} | {max(seconds) * 1000:.0f} |")
    every = [s for values in timings.seconds.values() for s in values]
    lines.append(f"| **all page loads** | {len(every)} | {statistics.median(every) * 1000:.0f}"
                 f" | **{percentile(every, 0.95) * 1000:.0f}** | {max(every) * 1000:.0f} |")
    return "\n".join(lines)


def run(folder: Path, submissions: int, rows: int, readers: int,
        demo_request: Path | None) -> int:
    with serve_demo(folder) as served:
        submitter, officer, auditor = (client(served, u) for u in
                                       ("submitter", "officer", "auditor"))
        request = demo_request or served.sample / "request.csv"
        bodies = request_chunks(request, submissions, rows)
        batch_ids = [f"BENCH-{i:03d}" for i in range(submissions)]
        timings, stop = Timings(), threading.Event()
        accepted: list[str] = []  # batch ids answered 202, in order
        pages: Pages = [
            ("GET / (submitter)", submitter, lambda: "/"),
            ("GET /batches (submitter)", submitter, lambda: "/batches"),
            ("GET /batches/{id} (submitter)", submitter,
             lambda: f"/batches/{accepted[0]}" if accepted else None),
            ("GET /review (officer)", officer, lambda: "/review"),
            ("GET /auditor/access-log (auditor)", auditor, lambda: "/auditor/access-log"),
        ]
        sessions = [client(served, "submitter") for _ in range(submissions)]
        started = time.perf_counter()
        with ThreadPoolExecutor(submissions + readers) as pool:
            reading = [pool.submit(read_pages, pages, timings, stop) for _ in range(readers)]
            sent = [pool.submit(submit, s, b, f"Agent {i}", body, accepted)
                    for i, (s, b, body) in enumerate(zip(sessions, batch_ids, bodies,
                                                         strict=True))]
            results = [f.result() for f in sent]
            views = settle(officer, batch_ids)
            settled = time.perf_counter() - started
            stop.set()
            for f in reading:
                f.result()
        for s in (*sessions, submitter, officer, auditor):
            s.close()
    lost = [f"{b}: submit answered {code}" for b, (_, code) in zip(batch_ids, results,
                                                                    strict=True) if code != 202]
    lost += unaccounted(views, rows)
    print(f"{submissions} submissions of {rows} rows with {readers} page readers: all "
          f"settled in {settled:.1f} s; {submissions - len(lost)} of {submissions} held "
          f"with every row accounted for; {len(timings.errors)} page errors\n")
    print(table(timings, [seconds for seconds, _ in results]))
    for problem in [*lost, *timings.errors[:20]]:
        print(f"LOST/ERROR: {problem}", file=sys.stderr)
    return 1 if lost or timings.errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20, help="rows per submission")
    parser.add_argument("--readers", type=int, default=4, help="page-loading threads")
    parser.add_argument("--request", type=Path, help="a request CSV [the demo's]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lastknown-bench-service-") as folder:
        return run(Path(folder), args.submissions, args.rows, args.readers, args.request)


if __name__ == "__main__":
    sys.exit(main())
