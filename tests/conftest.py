"""Shared test setup: no test reads or writes the real user's lastknown folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user config/data dirs (platformdirs, XDG) at a temporary folder."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.delenv("LASTKNOWN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home
