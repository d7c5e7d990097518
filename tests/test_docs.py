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


def _setting_names(cls: type) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("source")]


@pytest.mark.parametrize(("doc", "cls_path"), [
    ("docs/MATCHING.md", "lastknown.match.config.MatchConfig"),
    ("docs/LEDGER.md", "lastknown.disclose.policy.Policy"),
])
def test_every_setting_is_documented_with_its_default(doc: str, cls_path: str) -> None:
    import importlib

    module, _, name = cls_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    text = (ROOT / doc).read_text(encoding="utf-8")
    defaults = cls()
    for setting in _setting_names(cls):
        assert setting in text, f"setting `{setting}` of {name} is not documented in {doc}"
        value = getattr(defaults, setting)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows = [line for line in text.splitlines()
                    if line.startswith("|") and setting in line]
            assert rows, f"{doc} has no table row for `{setting}`"
            shown = {str(value), f"{value:,}", f"{value:g}"}
            assert any(s in rows[0] for s in shown), (
                f"{doc} shows `{setting}` without its default {value}: {rows[0]}")


def test_every_process_option_is_in_readme() -> None:
    process = cli.commands["process"]
    for param in process.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt != "--help":
                assert opt in README, f"`lastknown process {opt}` is not in README.md"
