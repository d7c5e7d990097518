"""A bounded load test of `lastknown serve` on loopback: N concurrent small submissions
while pages are loaded, then every batch must be held (nothing lost); prints the page
times (median, p95, max) and how long until every batch was held.

    python bench/bench_service.py --submissions 20 --page-loads 200

It runs `lastknown serve --demo` in a private temporary data folder (its synthetic master,
sample request and demo users; the embedded worker) on a free loopback port, and stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

PASSWORD = "demo-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed_in(base: str, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=120)
    reply = client.post("/api/login", json={"username": username, "password": PASSWORD})
    reply.raise_for_status()
    return client, str(reply.json()["csrf_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--page-loads", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lk-bench-service-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data"),
           "XDG_CONFIG_HOME": str(work / "config")}
    server = subprocess.Popen([sys.executable, "-m", "lastknown.cli", "serve", "--demo",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        sample = work / "data" / "lastknown" / "service-demo" / "sample"
        values = tomllib.loads((sample / "batch.toml").read_text(encoding="utf-8"))
        request = (sample / "request.csv").read_bytes()
        submitter, csrf = signed_in(base, "submitter")
        officer, _ = signed_in(base, "officer")
        ids = [f"LOAD-{i:03d}" for i in range(args.submissions)]

        def submit(batch_id: str) -> int:
            form = {"batch_id": batch_id, "requesting_official": values["requesting_official"],
                    "official_title": values["official_title"], "reason": values["reason"],
                    "statutes": values["authorised_statutes"],
                    "certification": values["certification"], "certified": "true"}
            reply = submitter.post("/api/batches", data=form, headers={"X-CSRF-Token": csrf},
                                   files={"file": ("request.csv", request, "text/csv")})
            return reply.status_code

        def page(i: int) -> float:
            client, path = ((submitter, "/batches") if i % 3 == 0 else
                            (officer, "/review") if i % 3 == 1 else
                            (submitter, f"/batches/{ids[i % len(ids)]}"))
            start = time.perf_counter()
            reply = client.get(path)
            assert reply.status_code in (200, 404), (path, reply.status_code)
            return time.perf_counter() - start

        started = time.perf_counter()
        with ThreadPoolExecutor(args.submissions + 4) as pool:
            sent = pool.map(submit, ids)
            times = list(pool.map(page, range(args.page_loads)))
            codes = list(sent)
        submitted = time.perf_counter() - started
        while True:
            states = {b["batch_id"]: b["status"] for b in submitter.get("/api/batches").json()}
            if all(states.get(i) not in (None, "queued", "running") for i in ids):
                break
            time.sleep(0.5)
        settled = time.perf_counter() - started
        held = sum(states.get(i) == "held" for i in ids)
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        print(f"submissions: {len(ids)} accepted {codes.count(202)}; held {held} "
              f"(nothing lost: {held == len(ids)})")
        print(f"page loads: {len(times)} during the submissions; median "
              f"{statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"max {times[-1] * 1000:.0f} ms")
        print(f"all submitted in {submitted:.1f} s; all held after {settled:.1f} s")
        if held != len(ids):
            sys.exit(1)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
