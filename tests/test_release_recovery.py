"""Crash recovery of `lastknown release`, through the real CLI in a child process killed at
every publish checkpoint: the batch is then either still held, nothing disclosed, and
releasable again; or committed, and delivered by the next `release` or `recover`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.config import load_deployment
from lastknown.disclose.held import held_dir
from lastknown.disclose.journal import record_paths
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.ledger.models import batches, disclosures
from lastknown.disclose.publish import STEPS, staging_dir_for
from lastknown.pipeline import ProcessOptions
from lastknown.workflow import get_batch, prepare
from test_recovery import run_cli
from test_workflow import BATCH, TODAY, Synth, make_synth

COMMITTED_FROM = STEPS.index("committed")
RELEASE = ["release", BATCH, "--approver", "Bob", "--out", "resp"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


def held_workspace(synth: Synth, tmp_path: Path) -> Path:
    """A deployment in ``tmp_path/w`` holding the synthetic batch, submitted by alice."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "lastknown.toml").write_text('ledger = "ledger.sqlite"\narchive = "archive"\n'
                                         'anchors = "anchors.jsonl"\n')
    shutil.copy(synth.folder / "request.csv", work / "request.csv")
    prepare(work / "request.csv", master=synth.index, batch_path=synth.folder / "batch.toml",
            submitted_by="alice", options=ProcessOptions(
                deployment=load_deployment(work / "lastknown.toml"), today=TODAY))
    return work


def assert_released_once(work: Path) -> None:
    deployment = load_deployment(work / "lastknown.toml")
    state = get_batch(BATCH, deployment)
    assert (state.status, state.decided_by) == ("released", "Bob")
    assert state.released_to == str(work / "resp")
    ledger = open_ledger(deployment.ledger)
    try:
        with ledger.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 1
            disclosed = conn.execute(
                sa.select(sa.func.count()).select_from(disclosures)).scalar_one()
            recorded = json.loads(conn.execute(sa.select(batches.c.policy)).scalar_one())
        assert recorded["release"]["approved_by"] == "Bob"
        assert ledger.verify(record=False).ok
    finally:
        ledger.close()
    with (work / "resp" / "matched.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == disclosed == state.rows_matched > 0
    assert not staging_dir_for(work / "resp").exists()
    journal = work / "archive" / "publishing"
    assert record_paths(journal) == [] and list(journal.iterdir()) == []
    assert not (held_dir(work / "archive", BATCH) / "package").exists()


def assert_still_held(work: Path) -> None:
    deployment = load_deployment(work / "lastknown.toml")
    assert get_batch(BATCH, deployment).status == "held"
    ledger = open_ledger(deployment.ledger)
    try:
        with ledger.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 0
            assert conn.execute(
                sa.select(sa.func.count()).select_from(disclosures)).scalar_one() == 0
    finally:
        ledger.close()
    assert not (work / "resp").exists()


@pytest.mark.parametrize("point", STEPS[:-1])
def test_release_killed_at_any_checkpoint_then_released_again_delivers_once(
        point: str, synth: Synth, tmp_path: Path) -> None:
    work = held_workspace(synth, tmp_path)
    killed = run_cli(RELEASE, cwd=work, env={"LK_KILL_AT": point}, driver=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    committed = STEPS.index(point) >= COMMITTED_FROM
    if not committed:  # nothing disclosed: a held batch, not even half-way
        assert get_batch(BATCH, load_deployment(work / "lastknown.toml")).status == "held"
    again = run_cli(RELEASE, cwd=work)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Recovered an interrupted run") == committed
    assert_released_once(work)


@pytest.mark.parametrize("point", ["staged", "summarised", "committed"])
def test_release_killed_then_recover_leaves_it_held_or_delivered(
        point: str, synth: Synth, tmp_path: Path) -> None:
    work = held_workspace(synth, tmp_path)
    killed = run_cli(RELEASE, cwd=work, env={"LK_KILL_AT": point}, driver=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    done = run_cli(["recover"], cwd=work)
    assert done.returncode == 0, done.stderr
    if STEPS.index(point) >= COMMITTED_FROM:
        assert done.stdout == f"batch {BATCH}: committed package delivered to {work / 'resp'}\n"
        assert_released_once(work)
        return
    assert done.stdout == (f"batch {BATCH}: uncommitted package removed (nothing was "
                           f"disclosed); {work / 'resp'} not created\n")
    assert_still_held(work)
    listed = run_cli(["batches", "--status", "held", "--json"], cwd=work)
    assert [b["batch_id"] for b in json.loads(listed.stdout)] == [BATCH]
    assert run_cli(RELEASE, cwd=work).returncode == 0
    assert_released_once(work)
