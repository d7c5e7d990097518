"""``lastknown serve --demo`` as a real process on a free loopback port, in its own data
folder, and how to submit to it over the API: what the browser tests (tests/test_browser_*.py)
and bench_service.py run against.

Uvicorn serves the app as a user starts it: SQLite app database, ledger and embedded job
worker, the demo users and agencies seeded under ``<folder>/data`` (XDG_DATA_HOME).
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from lastknown.service.demo import DEMO_PASSWORD, DEMO_STATUTES

START_SECONDS = 120
SETTLE_SECONDS = 900
SETTLED = {"held", "failed", "released", "denied"}


class ServerFailed(RuntimeError):
    """The server exited or did not answer; the message ends with its log."""


@dataclass(frozen=True)
class Served:
    url: str
    data: Path  # XDG_DATA_HOME of the server
    log: Path

    @property
    def demo(self) -> Path:
        """The demo deployment's folder (``lastknown.service.demo.demo_folder``)."""
        return self.data / "lastknown" / "service-demo"

    @property
    def sample(self) -> Path:
        """The demo's sample request (``request.csv``, ``.xlsx``) and its ``batch.toml``."""
        return self.demo / "sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _log_tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"lastknown serve exited with {process.returncode}:\n"
                               f"{_log_tail(log)}")
        try:
            if httpx2.get(f"{url}/login", timeout=5).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)  # waiting for start-up
    raise ServerFailed(f"lastknown serve did not answer in {START_SECONDS} s:\n"
                       f"{_log_tail(log)}")


@contextmanager
def serve_demo(folder: Path) -> Iterator[Served]:
    """Start ``lastknown serve --demo`` with ``folder`` as its home; stop it on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    python_path = [str(Path(p).resolve()) for p in
                   filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "XDG_DATA_HOME": str(folder / "data"),
           "XDG_CONFIG_HOME": str(folder / "config"), "PYTHONPATH": os.pathsep.join(python_path)}
    env.pop("LASTKNOWN_CONFIG", None)
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from lastknown.cli import main; main()",
             "serve", "--demo", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Served(url=url, data=folder / "data", log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- talking to it -----------------------------------------------------------------

def client(served: Served, username: str) -> httpx2.Client:
    """A signed-in client for one demo user (its CSRF token sent with every change)."""
    session = httpx2.Client(base_url=served.url, timeout=120)
    reply = session.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    reply.raise_for_status()
    session.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return session


def request_chunks(demo_request: Path, count: int, rows: int) -> list[bytes]:
    """``count`` small CSV request files of ``rows`` rows each, cut from the demo request
    (rows reused when it is shorter; each file's row ids stay unique)."""
    with demo_request.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, source = list(reader.fieldnames or []), list(reader)
    chunks = []
    for i in range(count):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for j in range(rows):
            writer.writerow(source[(i * rows + j) % len(source)])
        chunks.append(out.getvalue().encode())
    return chunks


def submit(session: httpx2.Client, batch_id: str, official: str, body: bytes,
           accepted: list[str]) -> tuple[float, int]:
    """POST one request file; (seconds, status). Adds the batch id to ``accepted``."""
    started = time.perf_counter()
    reply = session.post("/api/batches", files={"file": (f"{batch_id}.csv", body, "text/csv")},
                         data={"batch_id": batch_id, "requesting_official": official,
                               "official_title": "Special Agent", "statutes": list(DEMO_STATUTES),
                               "reason": "bench_service: concurrent small submissions",
                               "certification": "Each row is the subject of an "
                                                "investigation (synthetic data).",
                               "certified": "true"})
    seconds = time.perf_counter() - started
    if reply.status_code == 202:
        accepted.append(batch_id)
    return seconds, reply.status_code


def settle(officer: httpx2.Client, batch_ids: list[str],
           seconds: float = SETTLE_SECONDS) -> dict[str, dict[str, Any]]:
    """Poll each batch (as the officer, who sees the counts) until none is queued or
    running, for at most ``seconds``; its last view."""
    deadline = time.monotonic() + seconds
    views: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for batch_id in batch_ids:
            if views.get(batch_id, {}).get("status") not in SETTLED:
                reply = officer.get(f"/api/batches/{batch_id}")
                views[batch_id] = reply.json() if reply.status_code == 200 else {
                    "status": f"HTTP {reply.status_code}"}
        if all(v.get("status") in SETTLED for v in views.values()):
            break
        time.sleep(0.5)  # polling, as a page does
    return views


def unaccounted(views: dict[str, dict[str, Any]], rows: int) -> list[str]:
    """What went missing: a batch not held, or whose rows do not add up to ``rows``
    (matched + unmatched + rejected = total = rows sent)."""
    problems = []
    for batch_id, view in views.items():
        counts = view.get("rows") or {}
        if view.get("status") != "held":
            problems.append(f"{batch_id}: ended {view.get('status')} {view.get('message') or ''}")
        elif counts.get("total") != rows or (counts.get("matched", 0) + counts.get(
                "unmatched", 0) + counts.get("rejected", 0)) != rows:
            problems.append(f"{batch_id}: rows {counts} for {rows} sent")
    return problems
