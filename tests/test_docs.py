"""Docs that fail when they drift: every command is in README and shows an example."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from lastknown.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "lastknown") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
        else:
            found.append((path, command))
    return found


COMMANDS = _commands(cli)


def test_there_are_commands() -> None:
    assert {"lastknown process", "lastknown synth", "lastknown demo"} <= {p for p, _ in COMMANDS}


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_an_example(path: str, command: click.Command) -> None:
    assert command.help and "Example:" in command.help, f"`{path}` help lacks an Example:"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_is_in_readme(path: str, command: click.Command) -> None:
    parent, _, leaf = path.rpartition(" ")
    short = parent.split(" ")[-1]
    assert path in README or (short != "lastknown" and f"lastknown {short} " in README
                               and leaf in README), f"`{path}` is not documented in README.md"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.startswith(("#", "set "))]
    assert commands == ["make test"]
    assert "make test" in README
