"""Every way a command can fail ends in a documented exit code and a message, no traceback.

Exit codes (README "Exit codes"): 2 bad input or settings, 3 policy, 4 ledger,
5 tampered ledger, 70 internal error (a bug).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import lastknown.synth as synth_package
from lastknown.cli import cli
from lastknown.disclose.ledger import models, open_ledger
from lastknown.synth import OUTPUTS

UNWRITABLE = Path("/proc/lastknown-test")  # no one may create folders in /proc


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-row request: `synth --requests 5` used to crash in numpy."""
    out = tmp_path_factory.mktemp("tiny") / "s"
    result = run("synth", "--persons", 100, "--requests", 5, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote {out}: 100 persons")
    assert "5 request rows" in result.stdout
    return out


def process(tiny: Path, *extra: str | Path, out: Path | None = None) -> Result:
    return run("process", tiny / "request.csv", "--master", tiny / "master", "--batch",
               tiny / "batch.toml", "--out", out or tiny.parent / "never",
               "--ledger", tiny.parent / "ledger.sqlite", *extra)


@pytest.mark.parametrize("today", ["tomorrow", "2026-13-01", "01/11/2026"])
def test_a_bad_today_is_a_usage_error(tiny: Path, today: str) -> None:
    result = process(tiny, "--today", today)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.endswith(f"Error: Invalid value for '--today': {today!r} is not a "
                                  "date; give it as YYYY-MM-DD, e.g. 2026-11-01\n")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("year", ["99999", "0", "-1"])
def test_a_report_year_out_of_range_is_a_usage_error(tmp_path: Path, year: str) -> None:
    result = run("ledger", "report", "--ledger", tmp_path / "l.sqlite", "--year", year)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"Error: Invalid value for '--year': {year} is not in the "
                                  "range 1900<=x<=9998.\n")


def errors_of(result: Result) -> str:
    """stderr after the line naming the ledger, which commands using one print first."""
    first, _, rest = result.stderr.partition("\n")
    assert first.startswith("Ledger: ") and first.endswith("[from --ledger]"), result.stderr
    return rest


def test_process_out_where_nothing_can_be_written(tiny: Path) -> None:
    result = process(tiny, out=UNWRITABLE)
    assert result.exit_code == 2
    assert errors_of(result) == (f"Error: --out {UNWRITABLE}: cannot create a folder in /proc (No "
                             "such file or directory); choose a folder you can write to\n")


@pytest.mark.parametrize("command", [
    ("synth", "--persons", "100", "--requests", "5"),
    ("demo", "--persons", "100", "--requests", "10"),
])
def test_other_outs_where_nothing_can_be_written(command: tuple[str, ...]) -> None:
    result = run(*command, "--out", UNWRITABLE / "sub")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --out {UNWRITABLE / 'sub'}: cannot create a folder in "
                             "/proc (No such file or directory); choose a folder you can "
                             "write to\n")


def test_master_index_out_where_nothing_can_be_written(tiny: Path) -> None:
    result = run("master", "index", "--master", tiny / "master", "--out", UNWRITABLE)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --out {UNWRITABLE}: cannot create a folder")


def test_synth_refuses_a_non_empty_out_and_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "master").mkdir()
    (out / "master" / "part-0000.parquet").write_bytes(b"old")
    result = run("synth", "--persons", 100, "--requests", 5, "--out", out)
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --out {out} is not empty (it holds master, notes.txt): "
                             "choose an empty or new folder, or pass --force to replace the "
                             "synthetic files there\n")
    assert (out / "master" / "part-0000.parquet").read_bytes() == b"old"
    assert sorted(p.name for p in out.iterdir()) == ["master", "notes.txt"]


def test_synth_force_replaces_only_once_the_new_files_are_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s"
    first = run("synth", "--persons", 100, "--requests", 5, "--seed", 1, "--out", out)
    assert first.exit_code == 0, first.output
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(out / "batch.toml"))

    with monkeypatch.context() as patch:
        patch.setattr(synth_package.writer, "write_batch", broken)
        failed = run("synth", "--persons", 100, "--requests", 5, "--seed", 2, "--out", out,
                     "--force")
    assert failed.exit_code == 2
    assert failed.stderr.startswith(f"Error: cannot use {out / 'batch.toml'}: No space left")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing replaced, no staging folder left

    again = run("synth", "--persons", 100, "--requests", 5, "--seed", 2, "--out", out,
                "--force")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"Wrote {out}: ")
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUTS, "notes.txt"])
    assert (out / "request.csv").read_bytes() != before[Path("request.csv")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_ledger_from_a_newer_version_is_a_ledger_error(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    open_ledger(ledger, create=True).close()
    raw = sqlite3.connect(ledger)
    raw.execute("UPDATE alembic_version SET version_num = '0099_future'")
    raw.commit()
    count = f"SELECT count(*) FROM {models.entries.name}"
    (entries,) = raw.execute(count).fetchone()
    raw.close()
    result = run("ledger", "verify", "--ledger", ledger)
    assert result.exit_code == 4
    assert errors_of(result) == (
        f"Error: ledger sqlite:///{ledger}: its schema cannot be brought to this version's "
        "(Can't locate revision identified by '0099_future'); it was probably written by a "
        "newer lastknown: use that version, or another --ledger\n")
    raw = sqlite3.connect(ledger)
    assert raw.execute(count).fetchone() == (entries,)  # the refusal wrote nothing
    raw.close()


def test_an_unexpected_failure_is_exit_70_without_values(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lastknown.master as master

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("row for TIN 900123456 is odd")

    monkeypatch.setattr(master, "load_master", broken)
    result = run("master", "check", tiny / "master")
    assert result.exit_code == 70
    assert "900123456" not in result.stderr and "Traceback" not in result.stderr
    assert re.fullmatch(  # where, in lastknown's own code, the failure surfaced
        r"Error: internal error \(ValueError at cli\.py:\d+\); this is a bug in lastknown: "
        r"please report it with the command you ran \(LASTKNOWN_DEBUG=1 shows the traceback\)"
        "\n", result.stderr)


def test_an_engine_failure_is_exit_70_with_quoted_values_blanked(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lastknown.master as master
    from lastknown.errors import PipelineError

    def broken(*args: object, **kwargs: object) -> None:
        raise PipelineError("DuckDB failed on:\nSELECT CAST(tin AS INTEGER) FROM master\n"
                            "Conversion Error: Could not convert string '900-12-3456' to INT32")

    monkeypatch.setattr(master, "load_master", broken)
    result = run("master", "check", tiny / "master")
    assert result.exit_code == 70
    assert result.stderr == (
        "Error: internal error: DuckDB failed on:\nSELECT CAST(tin AS INTEGER) FROM master\n"
        "Conversion Error: Could not convert string '…' to INT32\n"
        "this is a bug in lastknown: please report it with the command you ran "
        "(LASTKNOWN_DEBUG=1 shows the traceback)\n")


@pytest.mark.parametrize(("options", "code", "message"), [
    (("--encoding", "klingon"), 2, "Error: request.csv: unknown encoding `klingon`; use e.g. "
                                   "utf-8, cp1252 (Windows), latin-1\n"),
    (("--sheet", "Data"), 2, "Error: request.csv: --sheet applies to XLSX workbooks; this is a "
                             "CSV file: leave --sheet out\n"),
    (("--ledger", "/dev/null/l.sqlite"), 4, "Error: ledger folder /dev/null cannot be created: "
                                            "File exists; choose another --ledger path\n"),
])
def test_bad_process_options_name_the_fix(tiny: Path, options: tuple[str, ...], code: int,
                                          message: str) -> None:
    out = tiny.parent / "never"
    result = run("process", tiny / "request.csv", "--master", tiny / "master", "--batch",
                 tiny / "batch.toml", "--out", out, "--today", "2026-11-01",
                 *(["--ledger", tiny.parent / "bad-options.sqlite"]
                   if "--ledger" not in options else []), *options)
    assert (result.exit_code, result.stdout, errors_of(result)) == (code, "", message)
    assert not out.exists()


@pytest.mark.parametrize(("options", "word"), [
    (("--threads", "0"), "--threads"), (("--header-row", "0"), "--header-row"),
    (("--engine", "pandas"), "--engine"),
])
def test_out_of_range_process_options_are_usage_errors(tiny: Path, options: tuple[str, ...],
                                                       word: str) -> None:
    result = process(tiny, *options)
    assert result.exit_code == 2
    assert f"Error: Invalid value for '{word}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_files_are_exit_2(tiny: Path) -> None:
    bad = tiny.parent / "bad.toml"
    bad.write_text("threshold = = 1\n", encoding="utf-8")
    for option in ("--config", "--policy", "--batch"):
        args = ["process", tiny / "request.csv", "--master", tiny / "master", "--out",
                tiny.parent / "never", "--ledger", tiny.parent / "bad-settings.sqlite"]
        if option != "--batch":
            args += ["--batch", tiny / "batch.toml"]
        result = run(*args, option, bad)
        assert result.exit_code == 2, (option, result.stderr)
        said = errors_of(result)
        assert said.startswith("Error: ") and "bad.toml" in said, option
        assert "Traceback" not in result.stderr
