"""The command line end to end, in process: what a person types and exactly what they see."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lastknown.cli import cli
from lastknown.disclose.ledger import models

TODAY = "2026-11-01"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, [str(a) for a in args], catch_exceptions=False)


def deployment_file(folder: Path) -> Path:
    """A lastknown.toml whose archive of internal records is ``folder / "archive"`` and
    whose anchor file is ``folder / "anchors.jsonl"``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lastknown.toml").write_text('archive = "archive"\nanchors = "anchors.jsonl"\n',
                                           encoding="utf-8")
    return folder / "lastknown.toml"


@pytest.fixture(scope="module", autouse=True)
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Internal records go to a scratch archive, never the user's data directory."""
    config = deployment_file(tmp_path_factory.mktemp("deployment"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LASTKNOWN_CONFIG", str(config))
        yield config.parent / "archive"


def using(ledger: Path) -> str:
    """The line every command that uses the ledger prints first on stderr."""
    return f"Ledger: {ledger} [from --ledger]\n"


@pytest.fixture(scope="module")
def answered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small population, indexed, its request processed into a package and a ledger."""
    root = tmp_path_factory.mktemp("cli")
    data, index, out, ledger = root / "s", root / "index", root / "response", root / "l.sqlite"
    synth = run("synth", "--persons", 2000, "--requests", 200, "--seed", 3, "--out", data)
    assert synth.exit_code == 0, synth.output
    indexed = run("master", "index", "--master", data / "master", "--out", index,
                  "--threads", 2, "--memory-limit", "2GB")
    assert indexed.exit_code == 0, indexed.output
    processed = run("process", data / "request.csv", "--master", index,
                    "--batch", data / "batch.toml", "--out", out, "--ledger", ledger,
                    "--today", TODAY)
    assert processed.exit_code == 0, processed.output
    return {"root": root, "data": data, "index": index, "out": out, "ledger": ledger,
            "synth": Path(synth.output), "indexed": Path(indexed.output),
            "processed": Path(processed.stdout), "processed_err": Path(processed.stderr)}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _receipt(out: Path) -> dict[str, Any]:
    data = json.loads((out / "receipt.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_synth_index_and_process_say_what_they_made(answered: dict[str, Path],
                                                    deployment: Path) -> None:
    assert str(answered["synth"]).startswith(f"Wrote {answered['data']}: 2,000 persons")
    checked, written, trained = str(answered["indexed"]).splitlines()
    assert checked.startswith(f"{answered['data'] / 'master'}: ")
    assert checked.endswith(" rows meet the master contract")
    assert written.startswith(f"Index written to {answered['index']} (model lk-")
    model = json.loads((answered["index"] / "model.json").read_text(encoding="utf-8"))
    pairs = model["lastknown"]["training"]["label_pairs"]
    assert trained == f"Model: m from {pairs:,} pairs of returns by one TIN"
    assert str(answered["processed_err"]) == using(answered["ledger"])
    said = str(answered["processed"])
    receipt = _receipt(answered["out"])
    totals = receipt["totals"]
    assert said == (
        f"Response package written to {answered['out']}: 200 rows — "
        f"{totals['matched']:,} matched, {totals['not_matched']:,} unmatched, "
        f"{totals['rejected']:,} rejected. Ledger head {receipt['ledger_head']['hash']}\n"
        f"Internal record (not for the requester): {deployment.resolve() / '2026-s0003'}\n")
    assert totals["matched"] + totals["not_matched"] + totals["rejected"] == totals["rows"] == 200


def test_every_request_row_lands_in_exactly_one_file(answered: dict[str, Path]) -> None:
    out = answered["out"]
    ids = [r["request_row_id"] for name in ("matched.csv", "unmatched.csv", "rejected.csv")
           for r in _rows(out / name)]
    # duplicate row ids in the request are rejected, each copy on its own line
    asked = [r["request_row_id"] for r in _rows(answered["data"] / "request.csv")]
    assert sorted(ids) == sorted(asked)
    header = (out / "matched.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "match_probability" in header
    assert not any("tin" in column.lower() for column in header)


def test_master_check_counts_contract_rows(answered: dict[str, Path]) -> None:
    result = run("master", "check", answered["data"] / "master")
    assert result.exit_code == 0
    assert result.output.startswith(f"{answered['data'] / 'master'}: ")
    assert result.output.endswith(" rows meet the master contract\n")


def test_evaluate_prints_json_scores(answered: dict[str, Path]) -> None:
    result = run("evaluate", "--result", answered["out"], "--truth",
                 answered["data"] / "truth.csv")
    assert result.exit_code == 0
    scores = json.loads(result.output)
    assert scores["precision"] >= 0.99
    assert scores["recall"] >= 0.95
    assert scores["false_disclosures"] == 0


def test_ledger_verify_report_and_taxpayer(answered: dict[str, Path],
                                           deployment: Path) -> None:
    ledger = answered["ledger"]
    totals = _receipt(answered["out"])["totals"]
    raw = sqlite3.connect(ledger)  # before verify, which records itself after reporting
    entries, seq = raw.execute(f"SELECT count(*), max(seq) FROM {models.entries.name}").fetchone()
    (head,) = raw.execute(f"SELECT hash FROM {models.entries.name} WHERE seq = ?",
                          (seq,)).fetchone()
    raw.close()
    verified = run("ledger", "verify", "--ledger", ledger)
    assert verified.exit_code == 0
    anchors = deployment.parent / "anchors.jsonl"  # process anchored its head there
    assert verified.stdout == (f"Anchor file {anchors}: 1 anchor(s) of this ledger\n"
                               f"Ledger sqlite:///{ledger} verified: {entries:,} entries, "
                               f"head #{seq} {head}; 1 anchor(s) matched\n")
    # the package names the head it was recorded under
    assert _receipt(answered["out"])["ledger_head"] == {"sequence": seq, "hash": head}

    report = run("ledger", "report", "--ledger", ledger, "--year", datetime.now(UTC).year,
                 "--csv", answered["root"] / "report.csv")
    assert report.exit_code == 0
    (row,) = _rows(answered["root"] / "report.csv")
    assert row["agency"] == "U.S. Immigration and Customs Enforcement"
    assert int(row["disclosures"]) == totals["matched"]
    assert int(row["rows"]) == 200

    disclosed = {r["request_row_id"] for r in _rows(answered["out"] / "matched.csv")}
    truth = {r["request_row_id"]: r["true_tin"] for r in _rows(answered["data"] / "truth.csv")}
    some_row = sorted(disclosed)[0]
    listing = run("ledger", "taxpayer", "--ledger", ledger, truth[some_row])
    assert listing.exit_code == 0
    assert some_row in listing.output and truth[some_row] not in listing.output


def test_an_existing_out_folder_is_refused_with_how_to_fix(answered: dict[str, Path]) -> None:
    data, out = answered["data"], answered["out"]
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", data / "batch.toml", "--out", out, "--ledger", answered["ledger"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == using(answered["ledger"]) + (
        f"Error: output folder {out} already exists: choose a new --out folder (a response "
        "package is never overwritten)\n")


def test_a_batch_is_answered_once(answered: dict[str, Path]) -> None:
    data = answered["data"]
    again = answered["root"] / "again"
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", data / "batch.toml", "--out", again, "--ledger", answered["ledger"],
                 "--today", TODAY)
    assert result.exit_code == 3
    assert result.stderr == using(answered["ledger"]) + (
        "Error: batch 2026-S0003 waits: the disclosure policy refuses it:\n"
        "  - batch_id '2026-S0003' is already in the ledger: a batch is answered once; "
        "give a new request a new batch_id\n")
    assert not again.exists()


def test_a_bad_memory_limit_is_a_config_error(answered: dict[str, Path]) -> None:
    data = answered["data"]
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", data / "batch.toml", "--out", answered["root"] / "x",
                 "--ledger", answered["root"] / "other.sqlite", "--memory-limit", "lots")
    assert result.exit_code == 2
    assert result.stderr.startswith(using(answered["root"] / "other.sqlite") + (
        "Error: engine limits threads=None memory_limit='lots' were refused ("))
    assert result.stderr.endswith("give --threads a positive number and --memory-limit a size "
                                  "such as 6GB or 800MB\n")


def test_an_uncertified_batch_stops_before_any_row_is_read(answered: dict[str, Path]) -> None:
    data, root = answered["data"], answered["root"]
    batch = root / "uncertified.toml"
    batch.write_text((data / "batch.toml").read_text(encoding="utf-8")
                     .replace("certified = true", "certified = false"), encoding="utf-8")
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", batch, "--out", root / "u", "--ledger", root / "u.sqlite")
    assert result.exit_code == 3
    assert result.stderr == using(root / "u.sqlite") + (
        "Error: batch 2026-S0003 is not certified (certified = false): no row can be answered, "
        "and the refusal is recorded in the ledger; once the certification is signed, set "
        "certified = true and give the batch a new batch_id\n")
    assert not (root / "u").exists()
    raw = sqlite3.connect(root / "u.sqlite")
    refusals = raw.execute("SELECT event_type, success, object FROM ledger_audit_events").fetchall()
    raw.close()
    assert refusals == [("batch_rejected", 0, "batch 2026-S0003")]


def test_a_tampered_ledger_fails_verify_naming_the_entry(answered: dict[str, Path],
                                                        tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(answered["ledger"].read_bytes())
    raw = sqlite3.connect(copy)
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f"DROP TRIGGER {name}")
    raw.execute("UPDATE ledger_disclosures SET recipient = 'Someone Else' "
                "WHERE entry_seq = (SELECT min(entry_seq) FROM ledger_disclosures)")
    (seq,) = raw.execute("SELECT min(entry_seq) FROM ledger_disclosures").fetchone()
    raw.commit()
    raw.close()
    result = run("ledger", "verify", "--ledger", copy)
    assert result.exit_code == 5
    assert result.stderr.startswith(using(copy) + "Error: ")
    assert f"#{seq}" in result.stderr


def test_missing_required_option_is_a_usage_error() -> None:
    result = run("process", "nowhere.csv")
    assert result.exit_code == 2
    assert "Usage: " in result.stderr


def test_a_large_package_has_its_spreadsheet_written_beside_the_ledger(
        answered: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Above BACKGROUND_XLSX_ROWS matched.xlsx comes from a child process: same package."""
    import openpyxl

    import lastknown.disclose.package as package
    import lastknown.disclose.xlsx_job as xlsx_job

    started: list[Path] = []
    start = xlsx_job.start_xlsx_job

    def spy(*args: object, **kwargs: object) -> xlsx_job.XlsxJob:
        job = start(*args, **kwargs)  # type: ignore[arg-type]
        started.append(job.path)
        return job

    monkeypatch.setattr(package, "BACKGROUND_XLSX_ROWS", 1)
    monkeypatch.setattr(package, "start_xlsx_job", spy)
    data, out = answered["data"], answered["root"] / "response-child"
    # a deployment of its own: the first run's learned estimates would otherwise be pooled
    # into this one and move its probabilities (match/learn.py)
    other = {"LASTKNOWN_CONFIG": str(deployment_file(answered["root"] / "child"))}
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", data / "batch.toml", "--out", out,
                 "--ledger", answered["root"] / "child.sqlite", "--today", TODAY, env=other)
    assert result.exit_code == 0, result.output
    assert [p.name for p in started] == ["matched.xlsx"]
    receipt, first = _receipt(out), _receipt(answered["out"])
    assert receipt["files_sha256"]["matched.csv"] == first["files_sha256"]["matched.csv"]
    book = openpyxl.load_workbook(out / "matched.xlsx", read_only=True)
    sheet_rows = [[("" if v is None else str(v)) for v in row]
                  for row in book["matched"].iter_rows(values_only=True)]
    book.close()
    csv_rows = [list(r.values()) for r in _rows(out / "matched.csv")]
    assert len(sheet_rows) - 1 == len(csv_rows) == receipt["totals"]["matched"] > 0
    assert [r[0] for r in sheet_rows[1:]] == [r[0] for r in csv_rows]
    assert run("ledger", "verify", "--ledger", answered["root"] / "child.sqlite").exit_code == 0


def test_evaluate_reads_the_record_named_or_found_through_the_receipt(
        answered: dict[str, Path], deployment: Path) -> None:
    truth = answered["data"] / "truth.csv"
    found = run("evaluate", "--result", answered["out"], "--truth", truth)
    named = run("evaluate", "--result", answered["out"], "--truth", truth,
                "--record", deployment / "2026-s0003")
    assert found.exit_code == named.exit_code == 0
    assert found.output == named.output
    assert json.loads(found.output)["counts"]["unmatched_rows_without_record_outcome"] == 0
    elsewhere = {"LASTKNOWN_CONFIG": str(deployment_file(answered["root"] / "elsewhere"))}
    lost = run("evaluate", "--result", answered["out"], "--truth", truth, env=elsewhere)
    assert lost.exit_code == 2
    record = (answered["root"] / "elsewhere" / "archive" / "2026-s0003")
    assert lost.stderr == (f"Error: no internal record of batch 2026-S0003 at {record}: "
                           "name it with --record DIR\n")


def test_a_batch_already_in_the_archive_is_refused_on_another_ledger(
        answered: dict[str, Path], deployment: Path) -> None:
    data, root = answered["data"], answered["root"]
    result = run("process", data / "request.csv", "--master", answered["index"],
                 "--batch", data / "batch.toml", "--out", root / "twice",
                 "--ledger", root / "second.sqlite", "--today", TODAY)
    assert result.exit_code == 4
    assert result.stderr == using(root / "second.sqlite") + (
        "Error: the archive already holds the internal record of batch 2026-S0003 "
        f"({deployment.resolve() / '2026-s0003'}); a batch is answered once — use a new "
        "batch id\n")
    assert not (root / "twice").exists() and not list(root.glob(".twice*"))
