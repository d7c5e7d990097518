"""The deployment's ledger is a setting: found by --config-file, LASTKNOWN_CONFIG or the user
config dir, printed by every command that uses it, never created by a reader, never the
working directory's; batch ids compare case-insensitively; settings that change who gets
disclosed need a recorded approval and are recorded whole."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from conftest import World
from lastknown.cli import cli
from lastknown.config import load_deployment
from lastknown.disclose.ledger import open_ledger
from lastknown.errors import ConfigError, LedgerError
from test_ledger_fixtures import PG_URL, pg_problem

TODAY = "2026-11-01"
NOT_FOUND = ("check --ledger or the deployment config (a ledger is created only by "
             "`lastknown process`)")


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- the configuration file --------------------------------------------------------------


def test_the_config_file_wins_and_resolves_paths_beside_itself(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "lastknown.toml"
    config.parent.mkdir()
    config.write_text('ledger = "db/l.sqlite"\narchive = "/srv/archive"\n', encoding="utf-8")
    named = tmp_path / "named.toml"
    named.write_text('ledger = "postgresql+psycopg://lk:secret@db/ledger"\n', encoding="utf-8")
    env = {"LASTKNOWN_CONFIG": str(config)}
    from_env = load_deployment(None, env=env, user_config_dir=tmp_path / "none",
                               user_data_dir=tmp_path / "data")
    assert (from_env.ledger, from_env.archive, from_env.anchors) == (
        str(config.parent / "db" / "l.sqlite"), Path("/srv/archive"),
        tmp_path / "data" / "anchors.jsonl")
    assert from_env.describe() == (f"Ledger: {config.parent}/db/l.sqlite "
                                   f"[from LASTKNOWN_CONFIG ({config})]")
    from_flag = load_deployment(named, env=env, user_config_dir=tmp_path / "none",
                                user_data_dir=tmp_path / "data")
    assert from_flag.describe() == ("Ledger: postgresql+psycopg://lk:***@db/ledger "
                                    f"[from --config-file ({named})]")


def test_the_user_config_dir_then_the_user_data_dir(tmp_path: Path) -> None:
    user_config = tmp_path / "cfg"
    user_config.mkdir()
    default = load_deployment(None, env={}, user_config_dir=user_config,
                              user_data_dir=tmp_path / "data")
    assert default.describe() == f"Ledger: {tmp_path}/data/ledger.sqlite [from default]"
    (user_config / "lastknown.toml").write_text('ledger = "/srv/l.sqlite"\n', encoding="utf-8")
    found = load_deployment(None, env={}, user_config_dir=user_config,
                            user_data_dir=tmp_path / "data")
    assert found.describe() == ("Ledger: /srv/l.sqlite "
                                f"[from user config ({user_config}/lastknown.toml)]")


@pytest.mark.parametrize(("text", "message"), [
    ('ledgr = "x"\n', "unknown key `ledgr`; known keys: ledger, archive, anchors"),
    ("ledger = 3\n", "`ledger` must be a non-empty string, got 3"),
    ("ledger = \n", "cannot read deployment config"),
])
def test_a_bad_config_file_is_a_config_error(text: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "lastknown.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_deployment(config, env={})


# -- readers never create a ledger --------------------------------------------------------


@pytest.mark.parametrize("command", [("ledger", "verify"), ("ledger", "report", "--year", "2026"),
                                     ("ledger", "taxpayer", "123456789")])
def test_a_reader_never_creates_a_ledger_or_its_folder(command: tuple[str, ...],
                                                        tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "l.sqlite"
    result = run(*command, "--ledger", missing)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == (f"Ledger: {missing} [from --ledger]\n"
                             f"Error: no ledger at {missing}; {NOT_FOUND}\n")
    assert not (tmp_path / "nonexistent").exists()


def test_without_any_config_the_user_default_is_named_and_not_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = run("ledger", "verify")
    default = tmp_path / "data" / "lastknown" / "ledger.sqlite"
    assert result.exit_code == 4
    assert result.stderr == (f"Ledger: {default} [from default]\n"
                             f"Error: no ledger at {default}; {NOT_FOUND}\n")
    assert not (tmp_path / "data").exists()


def test_a_named_config_file_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    result = run("--config-file", tmp_path / "no.toml", "ledger", "verify")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: deployment config {tmp_path / 'no.toml'} (from "
                             "--config-file) does not exist; create it or unset --config-file\n")


def test_an_empty_postgres_database_is_not_a_ledger_for_a_reader() -> None:
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    schema = "lk_test_empty_reader"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        with pytest.raises(LedgerError, match="no ledger at .*the database has no ledger tables"):
            open_ledger(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        with admin.connect() as conn:
            assert not sa.inspect(conn).get_table_names(schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- process with a deployment --------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             small_world: World) -> dict[str, Path]:
    """A small synthetic request answered once through a deployment config file."""
    root = tmp_path_factory.mktemp("deploy")
    data, index = small_world.data, small_world.index
    config = root / "etc" / "lastknown.toml"
    config.parent.mkdir()
    config.write_text('ledger = "../ledger/l.sqlite"\n', encoding="utf-8")
    first = run("--config-file", config, "process", data / "request.csv", "--master", index,
                "--batch", data / "batch.toml", "--out", root / "r1", "--today", TODAY)
    assert first.exit_code == 0, first.output
    return {"root": root, "data": data, "index": index, "config": config,
            "ledger": config.parent / ".." / "ledger" / "l.sqlite",
            "first_err": Path(first.stderr)}


def _process(deployed: dict[str, Path], out: str, *extra: str | Path,
             batch: Path | None = None) -> Result:
    data = deployed["data"]
    return run("--config-file", deployed["config"], "process", data / "request.csv",
               "--master", deployed["index"], "--batch", batch or data / "batch.toml",
               "--out", deployed["root"] / out, "--today", TODAY, *extra)


def _batch(deployed: dict[str, Path], name: str, batch_id: str) -> Path:
    """A copy of the synthetic batch file under another batch id."""
    text = (deployed["data"] / "batch.toml").read_text(encoding="utf-8")
    old = f'batch_id = "{_batch_id(deployed)}"'
    assert old in text
    path = deployed["root"] / name
    path.write_text(text.replace(old, f'batch_id = "{batch_id}"'), encoding="utf-8")
    return path


def _batch_id(deployed: dict[str, Path]) -> str:
    with (deployed["data"] / "batch.toml").open("rb") as handle:
        return str(tomllib.load(handle)["batch_id"])  # e.g. 2026-S0005


def test_process_names_the_configured_ledger(deployed: dict[str, Path]) -> None:
    assert str(deployed["first_err"]) == (
        f"Ledger: {deployed['ledger']} [from --config-file ({deployed['config']})]\n")
    assert deployed["ledger"].is_file()


def test_the_same_batch_from_another_folder_is_refused(deployed: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    again = _process(deployed, "r2")
    assert again.exit_code == 3
    assert "is already in the ledger: a batch is answered once" in again.stderr
    assert not (deployed["root"] / "r2").exists()
    assert list(tmp_path.iterdir()) == []  # nothing appears in the working directory


def test_batch_ids_compare_case_insensitively(deployed: dict[str, Path]) -> None:
    lowered = _batch_id(deployed).lower()
    again = _process(deployed, "r3", batch=_batch(deployed, "lower.toml", lowered))
    assert again.exit_code == 3
    assert f"batch_id '{lowered}' is already in the ledger" in again.stderr


def test_a_statute_keeps_its_legal_spelling_in_the_ledger(deployed: dict[str, Path]) -> None:
    raw = sqlite3.connect(deployed["ledger"])
    statutes = raw.execute("SELECT DISTINCT request_statute FROM ledger_disclosures").fetchall()
    (recorded,) = raw.execute("SELECT statutes FROM ledger_batches").fetchone()
    raw.close()
    assert statutes == [("8 U.S.C. 1253(a)(1)",)]  # every row spelling, in the batch's form
    assert json.loads(recorded) == ["8 U.S.C. 1253(a)(1)"]


def test_a_non_default_matching_setting_needs_an_approval_and_is_recorded_whole(
        deployed: dict[str, Path]) -> None:
    match = deployed["root"] / "match.toml"
    match.write_text("match_threshold = 0.995\n", encoding="utf-8")
    batch_id = _batch_id(deployed) + "-B"
    new_id = _batch(deployed, "b2.toml", batch_id)
    refused = _process(deployed, "r4", "--config", match, batch=new_id)
    assert refused.exit_code == 3
    assert refused.stderr.splitlines()[1:] == [
        f"Error: batch {batch_id} waits: the disclosure policy refuses it:",
        "  - matching setting match_threshold = 0.995 (default 0.99) changes who gets "
        "disclosed and is not approved: add to the batch file [overrides.match] "
        'match_threshold = 0.995, with reason = "..." and approved_by = "..." under '
        "[overrides] (recorded in the ledger)",
        '  - a batch override needs a reason: add reason = "..." under [overrides]',
        '  - a batch override needs an approver: add approved_by = "name, title" under '
        "[overrides]"]
    approved = deployed["root"] / "b3.toml"
    approved.write_text(new_id.read_text(encoding="utf-8") + (
        '\n[overrides]\nreason = "Many shared surnames in this batch"\n'
        'approved_by = "Jane Roe, Chief Counsel"\n[overrides.match]\nmatch_threshold = 0.995\n'),
        encoding="utf-8")
    done = _process(deployed, "r4", "--config", match, batch=approved)
    assert done.exit_code == 0, done.output
    raw = sqlite3.connect(deployed["ledger"])
    (policy,) = raw.execute("SELECT policy FROM ledger_batches WHERE batch_id = ?",
                            (batch_id,)).fetchone()
    raw.close()
    recorded = json.loads(policy)
    assert recorded["override_approved_by"] == "Jane Roe, Chief Counsel"
    assert recorded["settings"]["changed"] == {"match": {"match_threshold": 0.995}}
    in_force = recorded["settings"]["in_force"]
    assert in_force["match"]["match_threshold"] == 0.995
    assert in_force["match"]["min_name_weight"] == 6.0  # whole, defaults included
    assert in_force["policy"]["max_rows_per_batch"] == 10_000


def test_an_approval_of_settings_not_in_use_is_refused(deployed: dict[str, Path]) -> None:
    stale = deployed["root"] / "stale.toml"
    text = _batch(deployed, "b5.toml", _batch_id(deployed) + "-C").read_text(encoding="utf-8")
    stale.write_text(text + ('\n[overrides]\nreason = "r"\napproved_by = "a"\n'
                             "[overrides.policy]\nperiod_days = 30\n"), encoding="utf-8")
    refused = _process(deployed, "r5", batch=stale)
    assert refused.exit_code == 3
    assert refused.stderr.splitlines()[2] == (
        "  - [overrides.policy] approves period_days = 30, but the run uses 365 (the "
        "default): give the approved --policy file or remove the line")
