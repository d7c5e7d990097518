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
from pathlib import Path

import pytest

from lastknown.engines import DuckDBEngine

TESTS_DIR = Path(__file__).parent


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
