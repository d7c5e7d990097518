"""Crash recovery through the real CLI: kill `process` at every checkpoint, then rerun it
(or run `lastknown recover`); the package is delivered once or not at all, the ledger
verifies, and no staging folder, scratch index or journal record survives."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.journal import record_path, record_paths
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.ledger.anchors import read_anchors
from lastknown.disclose.ledger.models import batches, disclosures
from lastknown.disclose.publish import STEPS, publish_run, recover_interrupted, staging_dir_for
from lastknown.disclose.receipt import receipt_head
from lastknown.errors import PolicyError

SRC = Path(__file__).resolve().parents[1] / "src"
COMMITTED_FROM = STEPS.index("committed")
#: Where the killed run dies: after the scratch index is built, then every publish step.
KILL_POINTS = ("indexed", *STEPS)

#: Runs the real CLI (``lastknown.cli.main``) with a checkpoint that kills the process
#: (``os._exit``, no clean-up) at ``LK_KILL_AT``, or waits at ``staged`` until
#: ``LK_BARRIER_N`` runs have staged (``LK_BARRIER_DIR``) so that they race to commit.
DRIVER = """
import os, sys, time
from pathlib import Path
import lastknown.disclose.publish as pub
import lastknown.pipeline as pipeline
from lastknown.cli import main

kill_at = os.environ.get("LK_KILL_AT", "")
barrier = os.environ.get("LK_BARRIER_DIR", "")

def checkpoint(name):
    if name == kill_at:
        os._exit(17)
    if barrier and name == "staged":
        Path(barrier, str(os.getpid())).touch()
        deadline = time.monotonic() + 240  # a loaded CI machine: well inside the 300 s
        while len(os.listdir(barrier)) < int(os.environ["LK_BARRIER_N"]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)

real_publish, real_prepare = pub.publish, pipeline._prepare_index
pub.publish = lambda **kw: real_publish(**kw, checkpoint=checkpoint)

def prepare(*args, **kwargs):
    index = real_prepare(*args, **kwargs)
    checkpoint("indexed")
    return index

pipeline._prepare_index = prepare
sys.argv = ["lastknown", *sys.argv[1:]]
main()
"""


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
            driver: bool = False) -> subprocess.CompletedProcess[str]:
    """``lastknown ARGS`` in a subprocess (through DRIVER when ``driver``), TMPDIR private."""
    config = {"LASTKNOWN_CONFIG": str(cwd / "lastknown.toml")} if (
        cwd / "lastknown.toml").exists() else {}
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(cwd / "tmp"), **config,
                **(env or {})}
    (cwd / "tmp").mkdir(exist_ok=True)
    command = ([sys.executable, "-c", DRIVER] if driver
               else [sys.executable, "-m", "lastknown.cli"])
    return subprocess.run([*command, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-person master and a 7-row request (made once for the module)."""
    folder = tmp_path_factory.mktemp("synth")
    done = run_cli(["synth", "--persons", "200", "--requests", "7", "--seed", "3",
                    "--out", "s"], cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "s"


def workspace(synthetic: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic files, ready for `process`, and a deployment whose
    archive (publish journal, internal records, learned estimates) is that folder."""
    shutil.copytree(synthetic, tmp_path / "w")
    (tmp_path / "w" / "lastknown.toml").write_text('archive = "."\nanchors = "anchors.jsonl"\n')
    return tmp_path / "w"


PROCESS = ["process", "request.csv", "--master", "master", "--batch", "batch.toml",
           "--out", "resp", "--ledger", "ledger.sqlite"]


def batch_id_of(work: Path, batch: str = "batch.toml") -> str:
    line = next(x for x in (work / batch).read_text().splitlines() if x.startswith("batch_id"))
    return line.split("=", 1)[1].strip().strip('"')


def assert_settled(work: Path, *, delivered: bool) -> None:
    """Delivered once (or not at all), its head anchored once, the ledger verifies, nothing
    left behind."""
    anchors = work / "anchors.jsonl"
    heads = [(a.sequence, a.hash) for a in read_anchors(anchors)] if anchors.exists() else []
    assert heads == ([receipt_head(work / "resp")] if delivered else [])
    ledger = open_ledger(work / "ledger.sqlite")
    try:
        with ledger.connect() as conn:
            recorded = conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one()
            disclosed = conn.execute(
                sa.select(sa.func.count()).select_from(disclosures)).scalar_one()
        assert recorded == (1 if delivered else 0)
        assert (work / "resp").is_dir() == delivered
        if delivered:
            with (work / "resp" / "matched.csv").open(encoding="utf-8") as handle:
                assert len(list(csv.DictReader(handle))) == disclosed > 0
        else:
            assert disclosed == 0
        assert ledger.verify(record=False).ok
    finally:
        ledger.close()
    assert not staging_dir_for(work / "resp").exists()
    journal = work / "publishing"
    assert record_paths(journal) == []
    assert sorted(p.name for p in journal.iterdir()) == []  # no scratch index either
    assert [p.name for p in (work / "tmp").iterdir()] == []  # nothing in TMPDIR
    assert not list(work.rglob(".lastknown-xlsx-*"))


@pytest.mark.parametrize("point", KILL_POINTS[:-1])
def test_process_killed_at_any_checkpoint_then_rerun_delivers_once(
        point: str, synthetic: Path, tmp_path: Path) -> None:
    work = workspace(synthetic, tmp_path)
    killed = run_cli(PROCESS, cwd=work, env={"LK_KILL_AT": point}, driver=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    assert record_paths(work / "publishing"), "the killed run left its journal record"
    again = run_cli(PROCESS, cwd=work)
    assert again.returncode == 0, again.stderr
    was_committed = KILL_POINTS.index(point) - 1 >= COMMITTED_FROM
    assert again.stdout.startswith("Recovered an interrupted run") == was_committed
    assert_settled(work, delivered=True)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_process_killed_at_any_checkpoint_then_recover_settles_it(
        point: str, synthetic: Path, tmp_path: Path) -> None:
    work = workspace(synthetic, tmp_path)
    killed = run_cli(PROCESS, cwd=work, env={"LK_KILL_AT": point}, driver=True)
    assert killed.returncode == 17, killed.stderr[-2000:]
    done = run_cli(["recover", "--ledger", "ledger.sqlite"], cwd=work)
    assert done.returncode == 0, done.stderr
    was_committed = KILL_POINTS.index(point) - 1 >= COMMITTED_FROM
    batch = batch_id_of(work)
    expected = (f"batch {batch}: committed package delivered to {work / 'resp'}"
                if was_committed else
                f"batch {batch}: uncommitted package removed (nothing was disclosed); "
                f"{work / 'resp'} not created" if point not in ("indexed", "start") else
                f"batch {batch}: working files removed ({work / 'resp'})")
    assert done.stdout.splitlines() == [expected]
    assert_settled(work, delivered=was_committed)
    if point == "committed":
        assert run_cli(["recover", "--ledger", "ledger.sqlite"], cwd=work).stdout == (
            "Nothing to recover.\n")


def test_a_run_that_finished_leaves_nothing_behind(synthetic: Path, tmp_path: Path) -> None:
    work = workspace(synthetic, tmp_path)
    done = run_cli(PROCESS, cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Response package written to resp")
    assert_settled(work, delivered=True)


def test_the_same_batch_from_another_folder_is_refused(synthetic: Path, tmp_path: Path) -> None:
    work = workspace(synthetic, tmp_path)
    assert run_cli(PROCESS, cwd=work).returncode == 0
    other = work / "elsewhere"
    other.mkdir()
    batch = (work / "batch.toml").read_text()
    (other / "batch.toml").write_text(batch.replace(batch_id_of(work),
                                                    batch_id_of(work).lower()))
    again = run_cli(["process", str(work / "request.csv"), "--master", str(work / "master"),
                     "--batch", "batch.toml", "--out", "resp", "--ledger",
                     str(work / "ledger.sqlite")], cwd=other)
    assert again.returncode == 3, again.stderr
    assert "already in the ledger" in again.stderr and "Traceback" not in again.stderr
    assert not (other / "resp").exists()


def test_a_live_run_of_the_same_batch_is_refused_and_left_alone(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite", create=True)
    journal = tmp_path / "publishing"
    with publish_run(ledger, journal, batch_id="B-7", final_dir=tmp_path / "r1") as run:
        assert run.scratch.is_dir() and run.previous is None
        with pytest.raises(PolicyError, match="being answered by another run"), \
                publish_run(ledger, journal, batch_id="b-7", final_dir=tmp_path / "r2"):
            pass
        in_progress = recover_interrupted(ledger, journal)
        assert [(r.batch_id, r.outcome) for r in in_progress] == [("B-7", "in progress")]
        assert run.scratch.is_dir() and record_path(journal, "B-7").exists()
    assert record_paths(journal) == [] and list(journal.iterdir()) == []
    ledger.close()


def _pg_schema() -> tuple[str, str]:
    from test_ledger_fixtures import PG_URL, pg_problem

    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    schema = f"lk_test_{os.urandom(6).hex()}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return schema, f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_two_batches_racing_over_the_official_cap_commit_one(
        backend: str, synthetic: Path, tmp_path: Path) -> None:
    from test_ledger_fixtures import PG_URL

    work = workspace(synthetic, tmp_path)
    schema, url = _pg_schema() if backend == "postgres" else ("", "ledger.sqlite")
    (work / "policy.toml").write_text("max_rows_per_official_per_period = 12\n")
    text = (work / "batch.toml").read_text()
    approval = ('\n[overrides]\nreason = "cap under test"\napproved_by = "Counsel"\n'
                '[overrides.policy]\nmax_rows_per_official_per_period = 12\n')
    for name in ("a", "b"):
        (work / f"batch-{name}.toml").write_text(
            text.replace(batch_id_of(work), f"CAP-{name.upper()}") + approval)
    env = {"LK_BARRIER_DIR": str(work / "barrier"), "LK_BARRIER_N": "2",
           "XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work / "config")}
    (work / "barrier").mkdir()
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(work / "tmp"),
                "LASTKNOWN_CONFIG": str(work / "lastknown.toml"), **env}
    (work / "tmp").mkdir()
    racers = [subprocess.Popen(
        [sys.executable, "-c", DRIVER, "process", "request.csv", "--master", "master",
         "--batch", f"batch-{name}.toml", "--out", f"resp-{name}", "--ledger", url,
         "--policy", "policy.toml"], cwd=work, env=full_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    try:
        results = [(r.communicate(timeout=300)[1], r.returncode)[::-1] for r in racers]
        assert len(list((work / "barrier").iterdir())) == 2, results  # both passed the early check
        assert sorted(code for code, _ in results) == [0, 3], results
        loser = next(err for code, err in results if code == 3)
        assert "at commit the disclosure policy refuses it" in loser
        assert "Traceback" not in loser
        assert [(work / f"resp-{n}").is_dir() for n in "ab"].count(True) == 1
        journal = work / "publishing"  # the deployment's archive is the workspace
        assert journal.is_dir() and list(journal.iterdir()) == []  # the loser cleaned up too
        assert not list(work.glob(".resp-*.staging")) and list((work / "tmp").iterdir()) == []
        connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
        ledger = open_ledger(PG_URL if schema else work / url, connect_args=connect_args)
        try:
            with ledger.connect() as conn:
                rows = conn.execute(sa.select(sa.func.sum(batches.c.rows_total))).scalar_one()
            assert rows == 7  # nothing over the cap of 12
            assert ledger.verify(record=False).ok
        finally:
            ledger.close()
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
        if schema:
            admin = sa.create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
