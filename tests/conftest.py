"""Shared test setup: no test reads or writes the real user's lastknown folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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
