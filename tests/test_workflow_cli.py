"""`process --hold`, `batches`, `review`, `release`, `deny`: exactly what a person sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lastknown.cli import cli
from lastknown.config import load_deployment
from lastknown.workflow import get_batch
from test_workflow import BATCH, Synth, make_synth


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lastknown.toml"
    path.write_text('ledger = "l.sqlite"\narchive = "archive"\nanchors = "anchors.jsonl"\n')
    return path


def using(config: Path) -> str:
    return f"Ledger: {config.parent / 'l.sqlite'} [from --config-file ({config})]\n"


def hold(synth: Synth, config: Path, batch: Path | None = None) -> Result:
    return run("--config-file", config, "process", synth.folder / "request.csv", "--master",
               synth.index, "--batch", batch or synth.folder / "batch.toml", "--hold",
               "--submitted-by", "alice", "--today", "2026-11-01")


def test_hold_list_review_and_release_say_exactly_what_happened(
        synth: Synth, config: Path, tmp_path: Path) -> None:
    held = hold(synth, config)
    assert held.exit_code == 0, held.output
    state = get_batch(BATCH, load_deployment(config))
    assert held.stderr == using(config)
    assert held.stdout == (
        f"Batch {BATCH} held for review: 40 rows — {state.rows_matched} matched, "
        f"{state.rows_unmatched} unmatched, {state.rows_rejected} rejected. Nothing is "
        "disclosed until another person approves it.\n"
        f"Next: lastknown review {BATCH}, then lastknown release {BATCH} --approver NAME "
        f"--out DIR (or lastknown deny {BATCH} --officer NAME --reason TEXT)\n")

    listed = run("--config-file", config, "batches")
    assert (listed.exit_code, listed.stderr) == (0, using(config))
    assert listed.stdout == (f"{BATCH}  held  40 rows ({state.rows_matched} matched)  "
                             f"submitted by alice at {state.submitted_at}\n")
    as_json = run("--config-file", config, "batches", "--status", "held", "--json")
    assert json.loads(as_json.stdout) == [state.as_dict()]
    assert run("--config-file", config, "batches", "--status", "denied").stdout == (
        "No prepared batches.\n")

    page = run("--config-file", config, "review", BATCH.lower())
    assert (page.exit_code, page.stderr) == (0, using(config))
    lines = page.stdout.splitlines()
    assert lines[0] == f"Batch {BATCH}: held — submitted by alice at {state.submitted_at}"
    assert lines[6].startswith(f"Outcomes: M {state.rows_matched} · N ")
    assert lines[6].endswith(f" · rejected {state.rows_rejected}")
    assert lines[12] == (f"Sample of {min(20, state.rows_matched)} matched row(s) (sha256 of "
                         f"the batch id '{BATCH.lower()}'):")
    reviewed = run("--config-file", config, "review", BATCH, "--json", "--sample", "5")
    assert len(json.loads(reviewed.stdout)["sample"]) == 5
    assert not [t for t in synth.tins if t in page.stdout + reviewed.stdout]

    refused = run("--config-file", config, "release", BATCH, "--approver", "Alice",
                  "--out", tmp_path / "resp")
    assert refused.exit_code == 3
    assert refused.stderr == using(config) + (
        f"Error: batch {BATCH} was submitted by alice: another person must approve its "
        "release (the refusal is recorded in the ledger)\n")

    out = tmp_path / "resp"
    released = run("--config-file", config, "release", BATCH, "--approver", "Bob",
                   "--out", out)
    assert released.exit_code == 0, released.output
    receipt = json.loads((out / "receipt.json").read_text(encoding="utf-8"))
    assert released.stdout == (
        f"Response package written to {out}: 40 rows — {state.rows_matched} matched, "
        f"{state.rows_unmatched} unmatched, {state.rows_rejected} rejected. Ledger head "
        f"{receipt['ledger_head']['hash']}\n"
        f"Internal record (not for the requester): {tmp_path / 'archive' / '2026-s0003'}\n")
    again = run("--config-file", config, "release", BATCH, "--approver", "Bob",
                "--out", tmp_path / "resp2")
    assert again.exit_code == 3
    assert again.stderr.startswith(using(config) + f"Error: batch {BATCH} was released by "
                                   "Bob on ")


def test_deny_says_nothing_was_disclosed(synth: Synth, config: Path,
                                         tmp_path: Path) -> None:
    assert hold(synth, config).exit_code == 0
    missing = run("--config-file", config, "deny", BATCH, "--officer", "Carol")
    assert missing.exit_code == 2 and "Missing option '--reason'" in missing.stderr
    denied = run("--config-file", config, "deny", BATCH, "--officer", "Carol", "--reason",
                 "the statute does not cover these rows")
    assert (denied.exit_code, denied.stderr) == (0, using(config))
    assert denied.stdout == (f"Batch {BATCH} denied by Carol: the statute does not cover these "
                             "rows. Nothing was disclosed; the held package is deleted.\n")
    blocked = run("--config-file", config, "release", BATCH, "--approver", "Bob",
                  "--out", tmp_path / "resp")
    assert blocked.exit_code == 3 and not (tmp_path / "resp").exists()
    assert f"batch {BATCH} was denied by Carol on " in blocked.stderr


def test_usage_and_lookup_errors(synth: Synth, config: Path,
                                 tmp_path: Path) -> None:
    both = run("--config-file", config, "process", synth.folder / "request.csv", "--master",
               synth.index, "--batch", synth.folder / "batch.toml", "--hold", "--out",
               tmp_path / "resp")
    assert both.exit_code == 2
    assert "give --out DIR (prepare and release now) or --hold" in both.stderr
    unknown = run("--config-file", config, "review", "NOPE")
    assert unknown.exit_code == 2
    assert unknown.stderr == using(config) + (
        f"Error: no held batch 'NOPE' in {tmp_path / 'archive' / 'held'}; `lastknown batches` "
        "lists the prepared batches\n")


def test_process_where_the_policy_wants_two_people_exits_3(
        synth: Synth, config: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("single_operator_release = false\n")
    result = run("--config-file", config, "process", synth.folder / "request.csv", "--master",
                 synth.index, "--batch", synth.folder / "batch.toml", "--out",
                 tmp_path / "resp", "--policy", policy)
    assert result.exit_code == 3
    assert result.stderr == using(config) + (
        f"Error: the disclosure policy ({policy}) does not let one person prepare and release "
        "a batch (single_operator_release = false): run `lastknown process --hold ...`, then "
        f"another person runs `lastknown release {BATCH} --approver NAME --out DIR`\n")
    assert not (tmp_path / "resp").exists()
