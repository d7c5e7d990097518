"""Shared test setup.

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


def child_env() -> dict[str, str]:
    """The environment for a child ``python`` that imports lastknown and test helpers."""
    paths = [str(TESTS_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    """A fresh in-memory DuckDB engine, closed after the test."""
    with DuckDBEngine() as engine:
        yield engine  # type: ignore[misc]
