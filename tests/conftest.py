"""Shared test setup.

No test reads or writes the real user's lastknown folders (:func:`_private_user_dirs`).

pytest (``rootdir`` import mode "prepend") puts this folder on ``sys.path``, so test
modules import the shared helper modules directly (``from test_ledger_fixtures import
...``) and no test touches ``sys.path`` itself. A test that starts a Python child process
gives it :data:`TESTS_DIR` on ``PYTHONPATH`` (:func:`child_env`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lastknown.engines import DuckDBEngine

TESTS_DIR = Path(__file__).parent
#: The browser tests' fixtures (server, browser, page, new_page, shots): tests/browsing.py.
pytest_plugins = ["browsing"]


@pytest.fixture(autouse=True, scope="session")
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the user config/data dirs (platformdirs, XDG) at a temporary folder.

    Session-wide, so module fixtures that run `process` are covered too.
    """
    home = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("LASTKNOWN_CONFIG", raising=False)
        patch.setenv("XDG_CONFIG_HOME", str(home / "config"))
        patch.setenv("XDG_DATA_HOME", str(home / "data"))
        yield home


@pytest.fixture(autouse=True)
def _private_user_dirs_per_test(tmp_path_factory: pytest.TempPathFactory,
                                monkeypatch: pytest.MonkeyPatch) -> Path:
    """And a fresh pair for every test: a deployment's archive answers a batch id once
    (and pools learned estimates), so tests that run the same synthetic batch must not
    share one. Module fixtures keep the session's pair (and a module may name its own
    deployment with ``LASTKNOWN_CONFIG``, which is left as it is)."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home


def child_env() -> dict[str, str]:
    """The environment for a child ``python`` that imports lastknown and test helpers."""
    paths = [str(TESTS_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    """A fresh in-memory DuckDB engine, closed after the test."""
    with DuckDBEngine() as engine:
        yield engine  # type: ignore[misc]


@dataclass(frozen=True, kw_only=True)
class World:
    """A synthetic population (``lastknown synth`` output) and its master index, built once
    per test session and shared by every module that asks for it: READ ONLY — a test that
    changes a file copies the folder first (``shutil.copytree(world.data, ...)``)."""

    #: master/, request.csv, request.xlsx, batch.toml, truth.csv, and index/.
    data: Path
    #: The matching index of ``data / "master"`` (``data / "index"``).
    index: Path
    #: The batch id in ``data / "batch.toml"``.
    batch_id: str


def _world(factory: pytest.TempPathFactory, *, persons: int, requests: int,
           seed: int) -> World:
    from lastknown.pipeline import build_master_index
    from lastknown.request.batch import load_batch
    from lastknown.synth import generate

    data = factory.mktemp(f"world-{persons}-{seed}") / "s"
    generate(persons=persons, requests=requests, seed=seed, out=data)
    build_master_index(data / "master", out=data / "index", threads=2, memory_limit="2GB")
    return World(data=data, index=data / "index",
                 batch_id=load_batch(data / "batch.toml").batch_id)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """1,000 persons, 150 request rows (seed 5), indexed: for tests of the command line,
    the deployment, the ledger's anchors and the benchmark sets."""
    return _world(tmp_path_factory, persons=1_000, requests=150, seed=5)


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """4,000 persons, 500 request rows (seed 11), indexed: enough rows of every outcome for
    tests of learning, leaks and one-year masters."""
    return _world(tmp_path_factory, persons=4_000, requests=500, seed=11)
