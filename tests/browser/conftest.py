"""The real service in a real browser: ``lastknown serve --demo`` started as a process
(Uvicorn on a free loopback port, the demo seed in a temporary data folder, SQLite and
the embedded worker) and Debian's Chromium driven by Playwright's sync API.

There is no skip: without Chromium these tests fail and say how to install it
(``make test`` does, through tools/ensure_chromium.sh). Playwright's own browser
download is never used. Waits are Playwright's auto-waiting ``expect`` (30 s on this
loaded machine), never sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browsing import CHROMIUM, CHROMIUM_ARGS, ROOT, WAIT_MS
from playwright.sync_api import Browser, Page, sync_playwright


@dataclass(frozen=True)
class Server:
    url: str
    data: Path  # the XDG data folder: the demo deployment is under lastknown/service-demo
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"lastknown serve exited with {process.returncode}:\n"
                        f"{log.read_text(encoding='utf-8')[-3000:]}")
        try:
            if httpx.get(f"{url}/login", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling for start-up, not an assertion
    pytest.fail(f"lastknown serve did not answer in 120 s:\n"
                f"{log.read_text(encoding='utf-8')[-3000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`lastknown serve --demo` as a user starts it, in its own data folder."""
    home = tmp_path_factory.mktemp("served")
    port = _free_port()
    python_path = [str(Path(p).resolve()) for p in
                   filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": os.pathsep.join(python_path)}
    env.pop("LASTKNOWN_CONFIG", None)
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from lastknown.cli import main; main()",
             "serve", "--demo", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Server(url=url, data=home / "data", log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
                    "`make test` installs it (tools/ensure_chromium.sh); or, as root, "
                    "`apt-get install -y chromium`.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, server: Server) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a page in a fresh browser profile (own cookies), as a second person
    at another desk; all are closed after the test."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(base_url=server.url, viewport={"width": 1100,
                                                                     "height": 720})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: a temp folder, or docs/screenshots when
    ``LASTKNOWN_SCREENSHOTS=1`` (to refresh the committed ones)."""
    if os.environ.get("LASTKNOWN_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return tmp_path_factory.mktemp("screenshots")
