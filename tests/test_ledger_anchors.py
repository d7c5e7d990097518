"""Ledger heads kept outside the database: the anchor file, receipts, `ledger verify
--anchor`, `process` refusing a tampered ledger, and the PostgreSQL application role."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from conftest import World
from lastknown.cli import cli
from lastknown.disclose.ledger import EntryRef, open_ledger
from lastknown.disclose.ledger.anchors import (
    anchor_from_receipt,
    anchor_once,
    append_anchor,
    head_record,
    ledger_id,
    read_anchors,
)
from lastknown.disclose.ledger.grants import grant_append_only
from lastknown.disclose.ledger.verify import verify_anchored
from lastknown.errors import ConfigError, InputError, LedgerError, LedgerTamperedError
from lastknown.pipeline import ProcessOptions, process_request
from test_ledger_fixtures import PG_URL, ledger_at, pg_problem

TODAY = "2026-11-01"
H1, H2 = "1" * 64, "2" * 64


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def using(ledger: Path) -> str:
    """The line every command that uses the ledger prints first on stderr."""
    return f"Ledger: {ledger} [from --ledger]\n"


# -- the anchor file and receipts --------------------------------------------------------


def test_append_anchor_writes_one_json_line_per_head_and_reads_back(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "l.sqlite", create=True)
    path = tmp_path / "deploy" / "anchors.jsonl"
    append_anchor(path, ledger, EntryRef(seq=3, hash=H1))
    append_anchor(path, ledger, EntryRef(seq=9, hash=H2))
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert sorted(first) == ["hash", "ledger", "sequence", "time"]
    assert (first["sequence"], first["hash"], first["ledger"]) == (3, H1, ledger_id(ledger))
    assert [(a.sequence, a.hash, a.source) for a in read_anchors(path)] == [
        (3, H1, "anchors.jsonl line 1"), (9, H2, "anchors.jsonl line 2")]
    ledger.close()


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_head_starts_a_new_line(
        tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "l.sqlite", create=True)
    path = tmp_path / "anchors.jsonl"
    append_anchor(path, ledger, EntryRef(seq=3, hash=H1))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"hash":"22')  # the process died mid-write
    assert [a.sequence for a in read_anchors(path)] == [3]
    append_anchor(path, ledger, EntryRef(seq=9, hash=H2))
    with pytest.raises(InputError, match=r"anchors.jsonl line 2: is not JSON"):
        read_anchors(path)  # a bad line in the middle is no longer a torn write
    ledger.close()


def test_an_anchor_file_that_cannot_be_written_is_a_ledger_error_naming_it(
        tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "l.sqlite", create=True)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(LedgerError, match=rf"anchor file {blocker}/anchors.jsonl: could not "
                                          r"append the ledger head #4: .*the batch is recorded"):
        append_anchor(blocker / "anchors.jsonl", ledger, EntryRef(seq=4, hash=H1))
    ledger.close()


def test_a_receipt_and_an_old_summary_both_carry_an_anchor(tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"batch_id": "B", "ledger_head": head_record(
        EntryRef(seq=12, hash=H1))}), encoding="utf-8")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"ledger_head": H2, "ledger_seq": 40}, indent=2),
                       encoding="utf-8")
    assert [(a.sequence, a.hash, a.source, a.ledger) for a in read_anchors(receipt)] == [
        (12, H1, "receipt.json", None)]
    assert [(a.sequence, a.hash) for a in read_anchors(summary)] == [(40, H2)]


@pytest.mark.parametrize(("data", "problem"), [
    ({"ledger_head": "xyz", "ledger_seq": 4}, "64 lowercase hex digits"),
    ({"ledger_head": H1}, "must be a positive whole number, got None"),
    ({"ledger_head": {"sequence": "7", "hash": H1}}, "got '7'"),
    ({"ledger_head": None}, "has no `ledger_head`"),
])
def test_a_bad_receipt_head_is_an_input_error_naming_the_file(data: dict[str, object],
                                                              problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        anchor_from_receipt(data, "receipt.json")
    assert str(caught.value).startswith("receipt.json: ")


def test_an_anchor_file_of_another_ledger_is_refused_not_passed(tmp_path: Path) -> None:
    mine = open_ledger(tmp_path / "mine.sqlite", create=True)
    other = open_ledger(tmp_path / "other.sqlite", create=True)
    path = tmp_path / "anchors.jsonl"
    append_anchor(path, other, EntryRef(seq=1, hash=H1))
    with pytest.raises(InputError, match=r"holds 1 anchor\(s\), all for another ledger"):
        verify_anchored(mine, [path], record=False)
    with pytest.raises(InputError, match="does not exist"):
        verify_anchored(mine, [tmp_path / "nowhere.jsonl"], record=False)
    mine.close()
    other.close()


def test_anchor_once_adds_a_head_only_when_this_ledger_lacks_it(tmp_path: Path) -> None:
    mine = open_ledger(tmp_path / "mine.sqlite", create=True)
    other = open_ledger(tmp_path / "other.sqlite", create=True)
    path = tmp_path / "anchors.jsonl"
    append_anchor(path, other, EntryRef(seq=3, hash=H1))  # the same head, another ledger
    assert anchor_once(path, mine, EntryRef(seq=3, hash=H1)) is not None
    assert anchor_once(path, mine, EntryRef(seq=3, hash=H1)) is None
    assert anchor_once(path, mine, EntryRef(seq=3, hash=H2)) is not None  # differs: kept
    with path.open("a", encoding="utf-8") as handle:
        handle.write("not json\n")  # unreadable: the head is still written down
    assert anchor_once(path, mine, EntryRef(seq=4, hash=H1)) is not None
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()
             if x.startswith("{")]
    assert [(x["ledger"], x["sequence"], x["hash"]) for x in lines] == [
        (ledger_id(other), 3, H1), (ledger_id(mine), 3, H1), (ledger_id(mine), 3, H2),
        (ledger_id(mine), 4, H1)]
    mine.close()
    other.close()


# -- the command line and process --------------------------------------------------------


@pytest.fixture(scope="module")
def world(small_world: World) -> dict[str, Path]:
    """A small population, indexed (the session's, read only)."""
    return {"data": small_world.data, "index": small_world.index}


def _process(world: dict[str, Path], tmp_path: Path, ledger: Path, anchors: Path,
             batch_id: str, out: str) -> Path:
    batch = tmp_path / f"{batch_id}.toml"
    text = (world["data"] / "batch.toml").read_text(encoding="utf-8")
    batch.write_text(text.replace('batch_id = "2026-S0005"', f'batch_id = "{batch_id}"'),
                     encoding="utf-8")
    process_request(world["data"] / "request.csv", master=world["index"], batch_path=batch,
                    out=tmp_path / out, options=ProcessOptions(
                        ledger=str(ledger), anchors=anchors, archive=tmp_path / "archive",
                        today=date.fromisoformat(TODAY)))
    return tmp_path / out


def _truncate(path: Path, keep: int) -> None:
    raw = sqlite3.connect(path)
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f"DROP TRIGGER {name}")
    for table in ("ledger_disclosures", "ledger_batches", "ledger_audit_events"):
        raw.execute(f"DELETE FROM {table} WHERE entry_seq > ?", [keep])
    raw.execute("DELETE FROM ledger_entries WHERE seq > ?", [keep])
    raw.commit()
    raw.close()


def _head(path: Path) -> int:
    raw = sqlite3.connect(path)
    (seq,) = raw.execute("SELECT coalesce(max(seq), 0) FROM ledger_entries").fetchone()
    raw.close()
    return int(seq)


def test_process_anchors_its_head_and_verify_checks_file_and_receipt(
        world: dict[str, Path], tmp_path: Path) -> None:
    ledger, anchors = tmp_path / "l.sqlite", tmp_path / "anchors.jsonl"
    out = _process(world, tmp_path, ledger, anchors, "A-1", "r1")
    carried = json.loads((out / "receipt.json").read_text(encoding="utf-8"))["ledger_head"]
    [anchor] = read_anchors(anchors)
    assert (anchor.sequence, anchor.hash) == (carried["sequence"], carried["hash"])
    result = run("ledger", "verify", "--ledger", ledger, "--anchor", anchors,
                 "--anchor", out / "receipt.json")
    assert result.exit_code == 0, result.output
    head = _head(ledger) - 1  # verify records itself as one more entry
    assert result.stdout.startswith(f"Ledger {'sqlite:///' + str(ledger)} verified: "
                                    f"{head:,} entries, head #{head} ")
    assert result.stdout.endswith("; 2 anchor(s) matched\n")


def test_verify_with_anchors_catches_a_cut_tail_and_process_refuses_it(
        world: dict[str, Path], tmp_path: Path) -> None:
    ledger, anchors = tmp_path / "l.sqlite", tmp_path / "anchors.jsonl"
    first = _process(world, tmp_path, ledger, anchors, "A-1", "r1")
    _process(world, tmp_path, ledger, anchors, "A-2", "r2")
    kept = json.loads((first / "receipt.json").read_text(encoding="utf-8"))["ledger_head"][
        "sequence"]
    _truncate(ledger, kept)  # the second batch's disclosures vanish, triggers and all
    assert run("ledger", "verify", "--ledger", ledger).exit_code == 0  # chain alone: fine
    result = run("ledger", "verify", "--ledger", ledger, "--anchor", anchors)
    assert result.exit_code == 5
    assert result.stderr.startswith(using(ledger) + "Error: ledger ")
    assert (f"first bad entry #{read_anchors(anchors)[1].sequence}: entry "
            f"#{read_anchors(anchors)[1].sequence} anchored in anchors.jsonl line 2 is "
            "missing") in result.stderr
    before = _head(ledger)
    with pytest.raises(LedgerTamperedError, match="fails the check before writing"):
        _process(world, tmp_path, ledger, anchors, "A-3", "r3")
    assert _head(ledger) == before  # nothing appended
    assert not (tmp_path / "r3").exists()
    assert len(read_anchors(anchors)) == 2


def test_process_on_a_ledger_with_an_edited_tail_exits_5_and_appends_nothing(
        world: dict[str, Path], tmp_path: Path) -> None:
    ledger, anchors = tmp_path / "l.sqlite", tmp_path / "anchors.jsonl"
    _process(world, tmp_path, ledger, anchors, "A-1", "r1")
    raw = sqlite3.connect(ledger)
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f"DROP TRIGGER {name}")
    raw.execute("UPDATE ledger_disclosures SET recipient = 'Someone Else' "
                "WHERE entry_seq = (SELECT max(entry_seq) FROM ledger_disclosures)")
    (seq,) = raw.execute("SELECT max(entry_seq) FROM ledger_disclosures").fetchone()
    raw.commit()
    raw.close()
    before = _head(ledger)
    batch = tmp_path / "b.toml"
    batch.write_text((world["data"] / "batch.toml").read_text(encoding="utf-8").replace(
        "2026-S0005", "A-9"), encoding="utf-8")
    result = run("process", world["data"] / "request.csv", "--master", world["index"],
                 "--batch", batch, "--out", tmp_path / "r9", "--ledger", ledger,
                 "--today", TODAY)
    assert result.exit_code == 5
    assert result.stderr.startswith(using(ledger) + f"Error: ledger sqlite:///{ledger} fails "
                                    "the check "
                                    f"before writing, so nothing was written to it: first "
                                    f"bad entry #{seq}: ledger_disclosures row for entry "
                                    f"#{seq} differs from the hashed entry")
    assert _head(ledger) == before
    assert not (tmp_path / "r9").exists()


def _deployment_with_anchors(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A ledger with one entry, a lastknown.toml naming it and an anchor file (not yet
    written): (config, ledger, anchors)."""
    ledger, anchors = tmp_path / "l.sqlite", tmp_path / "deploy" / "anchors.jsonl"
    opened = open_ledger(ledger, create=True)
    opened.audit(event_type="report_run", success=True, obj="report")
    opened.close()
    config = tmp_path / "lastknown.toml"
    config.write_text(f'ledger = "{ledger}"\nanchors = "deploy/anchors.jsonl"\n'
                      'archive = "archive"\n', encoding="utf-8")
    return config, ledger, anchors


def _verified(ledger: Path, anchors_matched: int) -> str:
    """The line `ledger verify` ends with (read before it records itself)."""
    raw = sqlite3.connect(ledger)
    seq, digest = raw.execute("SELECT seq, hash FROM ledger_entries ORDER BY seq DESC "
                              "LIMIT 1").fetchone()
    raw.close()
    return (f"Ledger sqlite:///{ledger} verified: {seq:,} entries, head #{seq} {digest}; "
            f"{anchors_matched} anchor(s) matched\n")


def test_verify_without_anchor_checks_the_deployments_anchor_file_and_says_so(
        tmp_path: Path) -> None:
    config, ledger, anchors = _deployment_with_anchors(tmp_path)
    expected = _verified(ledger, 0)
    result = run("--config-file", config, "ledger", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"No anchor file at {anchors}: verifying the chain alone\n"
                             + expected)

    opened = open_ledger(ledger)
    append_anchor(anchors, opened, opened.head())
    opened.close()
    expected = _verified(ledger, 1)
    result = run("--config-file", config, "ledger", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Anchor file {anchors}: 1 anchor(s) of this ledger\n" + expected

    expected = _verified(ledger, 1)  # --anchor: that file only, as before
    result = run("--config-file", config, "ledger", "verify", "--anchor", anchors)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected


def test_verify_without_anchor_catches_a_cut_tail_through_the_deployments_file(
        tmp_path: Path) -> None:
    config, ledger, anchors = _deployment_with_anchors(tmp_path)
    opened = open_ledger(ledger)
    head = opened.audit(event_type="report_run", success=True, obj="report")
    append_anchor(anchors, opened, head)
    opened.close()
    _truncate(ledger, head.seq - 1)  # the anchored entry is cut off
    result = run("--config-file", config, "ledger", "verify")
    assert result.exit_code == 5
    assert result.stdout == f"Anchor file {anchors}: 1 anchor(s) of this ledger\n"
    assert (f"first bad entry #{head.seq}: entry #{head.seq} anchored in anchors.jsonl line 1 "
            "is missing") in result.stderr


def test_verify_without_anchor_says_the_deployments_file_is_of_another_ledger(
        tmp_path: Path) -> None:
    config, ledger, anchors = _deployment_with_anchors(tmp_path)
    other = open_ledger(tmp_path / "other.sqlite", create=True)
    append_anchor(anchors, other, EntryRef(seq=1, hash=H1))
    other.close()
    expected = _verified(ledger, 0)
    result = run("--config-file", config, "ledger", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"Anchor file {anchors} holds no anchors of this ledger (1 of "
                             "another ledger): verifying the chain alone\n" + expected)


def test_verify_with_an_unreadable_anchor_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "anchors.jsonl"
    bad.write_text("not json\n{}\n", encoding="utf-8")
    open_ledger(tmp_path / "l.sqlite", create=True).close()
    result = run("ledger", "verify", "--ledger", tmp_path / "l.sqlite", "--anchor", bad)
    assert result.exit_code == 2
    assert result.stderr.startswith(using(tmp_path / "l.sqlite") + (
        "Error: anchors.jsonl line 1: is not JSON; give the deployment's anchor file"))


def test_grant_on_sqlite_says_there_are_no_roles(tmp_path: Path) -> None:
    open_ledger(tmp_path / "l.sqlite", create=True).close()
    result = run("ledger", "grant", "--ledger", tmp_path / "l.sqlite", "--role", "lk_app")
    assert result.exit_code == 2
    assert result.stderr == using(tmp_path / "l.sqlite") + (
        f"Error: ledger sqlite:///{tmp_path / 'l.sqlite'} is SQLite, which has no roles: "
        "protect the file with operating-system permissions instead\n")


# -- PostgreSQL: the application role may only read and append ---------------------------


@pytest.mark.postgres
def test_the_application_role_may_insert_and_select_but_never_change_or_remove(
        tmp_path: Path) -> None:
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    role = f"lk_app_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
    try:
        with ledger_at("postgres", tmp_path) as owner:
            owner.audit(event_type="x", success=True, obj="o")
            with owner.connect() as conn:  # same database, the owner's schema
                search = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            assert grant_append_only(owner, role)[-1].startswith("GRANT SELECT ON TABLE")
            with pytest.raises(ConfigError, match="does not exist"):
                grant_append_only(owner, "lk_nobody_here")
            app_url = owner.engine.url.set(username=role).render_as_string(hide_password=False)
            app = open_ledger(app_url, connect_args={"options": f"-csearch_path={search}"})
            try:
                app.audit(event_type="y", success=True, obj="o")  # INSERT (and its lock)
                assert app.head().seq == 2  # SELECT
                assert app.verify(record=False).entries == 2
                # with the triggers gone, only the privileges stand in the way
                with owner.engine.begin() as conn:
                    for table in ("ledger_entries", "ledger_audit_events"):
                        for trigger in ("append_only", "no_truncate"):
                            conn.exec_driver_sql(f"DROP TRIGGER {table}_{trigger} ON {table}")
                for statement in ("UPDATE ledger_entries SET kind = kind",
                                  "DELETE FROM ledger_audit_events",
                                  "TRUNCATE ledger_entries CASCADE",
                                  "DROP TRIGGER ledger_batches_append_only ON ledger_batches"):
                    with pytest.raises(sa.exc.ProgrammingError,
                                       match="permission denied|must be owner"), \
                            app.engine.begin() as conn:
                        conn.exec_driver_sql(statement)
                assert app.verify(record=False).entries == 2
            finally:
                app.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()
