"""``lastknown serve --demo`` as a real process on a free loopback port, in its own data
folder: what the browser tests (tests/browser/) and bench_service.py run against.

Uvicorn serves the app as a user starts it: SQLite app database, ledger and embedded job
worker, the demo users and agencies seeded under ``<folder>/data`` (XDG_DATA_HOME).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 120


class ServerFailed(RuntimeError):
    """The server exited or did not answer; the message ends with its log."""


@dataclass(frozen=True)
class Served:
    url: str
    data: Path  # XDG_DATA_HOME of the server: the demo deployment is under lastknown/
    log: Path


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
            if httpx.get(f"{url}/login", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
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
