"""Imperfect master rows are quarantined: counted, set apart, never disclosed, still rivals."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lastknown.cli import cli
from lastknown.engines import DuckDBEngine
from lastknown.master import QUARANTINE_FILE, load_master
from lastknown.match.config import MatchConfig
from lastknown.match.index import IndexInfo, build_index, open_index
from lastknown.match.run import match_requests
from test_match_fixtures import (
    MASTER_FIELDS,
    REQUEST_FIELDS,
    make_people,
    master_rows,
    request_row,
    to_arrow,
)

#: every 50th ordinary row is broken, in turn: empty surname, state, street, given name
BROKEN = ({"last_name": ""}, {"state": ""}, {"street": ""}, {"first_name": ""})


def _row(tin: str, year: int, first: str, last: str, street: str, **over: object
         ) -> dict[str, object]:
    row: dict[str, object] = {
        "tin": tin, "tax_year": year, "filing_status": "single", "role": "primary",
        "first_name": first, "middle_name": "", "last_name": last, "name_suffix": "",
        "street": street, "unit": "", "city": "AUSTIN", "state": "TX", "zip": "78701",
        "received_date": date(year + 1, 4, 1)}
    row.update(over)
    return row


def _special_rows() -> list[dict[str, object]]:
    years = range(2019, 2024)
    return [
        # only quarantined rows (no state): may rival, never confirm, never disclosed
        *[_row("900000101", y, "PERSEPHONE", "QUIXOTENBERG", "71 Quarantine Way", state="")
          for y in years],
        # a good filer, and a second TIN with the same name there whose rows lack a state
        *[_row("900000102", y, "MARGUERITE", "VILLANUEVASTRA", "8 Rival Ct") for y in years],
        *[_row("900000103", y, "MARGUERITE", "VILLANUEVASTRA", "8 Rival Ct", state="")
          for y in (2022, 2023)],
        # a good filer whose latest return lost its surname: 2022 is disclosed, not 2023
        *[_row("900000104", y, "THADDEUS", "WOLFENDENHALL", "5 Goodhope St") for y in years
          if y < 2023],
        _row("900000104", 2023, "THADDEUS", "", "77 Damaged Rd"),
    ]


def _master(people: list[dict[str, object]]) -> list[dict[str, object]]:
    rows = master_rows(people)
    for i in range(0, len(rows), 50):
        rows[i] = {**rows[i], **BROKEN[(i // 50) % len(BROKEN)]}
    return rows + _special_rows()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBEngine, IndexInfo]]:
    root = tmp_path_factory.mktemp("quarantine")
    people = make_people(1000)
    pq.write_table(to_arrow(_master(people), MASTER_FIELDS), root / "master.parquet")
    with DuckDBEngine() as builder:
        report = load_master(builder, root / "master.parquet")
        assert (report.rows, report.quarantined) == (5000 + 17, 100 + 5 + 2 + 1)
        build_index(builder, out=root / "index")
    engine = DuckDBEngine()
    info = open_index(engine, root / "index")
    requests = [request_row(i + 100, first=str(p["first_name"]), last=str(p["last_name"]),
                            **_latest(p)) for i, p in enumerate(people[:60])]
    requests += [
        request_row(1, first="Persephone", last="Quixotenberg", street="71 Quarantine Way",
                    city="Austin", state="TX", zip_code="78701"),
        request_row(2, first="Marguerite", last="Villanuevastra", street="8 Rival Ct",
                    city="Austin", state="TX", zip_code="78701"),
        request_row(3, first="Thaddeus", last="Wolfendenhall", street="5 Goodhope St",
                    city="Austin", state="TX", zip_code="78701"),
    ]
    engine.register_arrow("rv_arrow", to_arrow(requests, REQUEST_FIELDS))
    engine.execute("CREATE TABLE request_valid AS SELECT * FROM rv_arrow")
    match_requests(engine, index=info, config=MatchConfig())
    yield engine, info
    engine.close()


def _latest(person: dict[str, object]) -> dict[str, str]:
    _, addr = person["history"][-1]  # type: ignore[index]
    return {"street": addr["street"], "unit": addr["unit"], "city": addr["city"],
            "state": addr["state"], "zip_code": addr["zip"]}


def _outcome(engine: DuckDBEngine, source_row: int) -> tuple[str, str | None, int | None]:
    rows = engine.fetchall("SELECT outcome, tin, address_tax_year FROM match_result "
                           "WHERE source_row = ?", [source_row])
    assert len(rows) == 1
    return rows[0]


def test_quarantine_file_holds_every_broken_row_and_why(indexed: tuple[DuckDBEngine, IndexInfo]
                                                        ) -> None:
    _, info = indexed
    table = pq.read_table(info.path / QUARANTINE_FILE).to_pylist()
    assert info.quarantined_rows == len(table) == 108
    first = table[0]
    assert (first["source_file"].endswith("master.parquet"), first["source_row"],
            first["problems"]) == (True, 1, ["last_name"])
    by_tin = {r["tin"]: r["problems"] for r in table if r["tin"].startswith("9")}
    assert by_tin == {"900000101": ["state"], "900000103": ["state"], "900000104": ["last_name"]}


def test_quarantined_rows_are_never_returns_but_stay_records(
        indexed: tuple[DuckDBEngine, IndexInfo]) -> None:
    engine, info = indexed
    returns = engine.fetchall(f"SELECT count(*), count_if(tin = '900000101') "
                              f"FROM {info.table('idx_return')}")[0]
    assert returns == (5017 - 108, 0)
    assert info.return_rows == 5017 - 108
    assert info.tax_years == (2019, 2020, 2021, 2022, 2023)
    flags = engine.fetchall(f"SELECT tin, bool_or(disclosable) FROM {info.table('idx_record')} "
                            "WHERE tin IN ('900000101', '900000103') GROUP BY 1 ORDER BY 1")
    assert flags == [("900000101", False), ("900000103", False)]


def test_ordinary_requests_are_still_disclosed(indexed: tuple[DuckDBEngine, IndexInfo]) -> None:
    engine, _ = indexed
    m = engine.fetchall("SELECT count(*) FROM match_result WHERE source_row >= 100 "
                        "AND outcome = 'M'")[0][0]
    assert m >= 50  # of 60; the rest are namesakes at one address, or broken rows


def test_a_quarantined_person_at_their_address_is_never_disclosed(
        indexed: tuple[DuckDBEngine, IndexInfo]) -> None:
    engine, _ = indexed
    outcome, tin, _ = _outcome(engine, 1)
    assert outcome == "U" and tin is None


def test_a_quarantined_namesake_is_a_rival(indexed: tuple[DuckDBEngine, IndexInfo]) -> None:
    engine, _ = indexed
    assert _outcome(engine, 2) == ("A", None, None)


def test_a_quarantined_year_is_skipped_when_disclosing(
        indexed: tuple[DuckDBEngine, IndexInfo]) -> None:
    engine, _ = indexed
    assert _outcome(engine, 3) == ("M", "900000104", 2022)
    streets = engine.fetchall("SELECT street FROM match_result WHERE source_row = 3")
    assert streets == [("5 Goodhope St",)]


def test_master_check_reports_counts_and_places_without_tins_or_names(tmp_path: Path) -> None:
    rows = [_row(f"1000000{i:02d}", 2023, "ANA", "GARCIA", f"{i} MAIN ST") for i in range(10)]
    rows[2] = {**rows[2], "last_name": " "}
    rows[5] = {**rows[5], "state": "ZZ", "street": ""}
    path = tmp_path / "m.parquet"
    pq.write_table(to_arrow(rows, MASTER_FIELDS), path)
    result = CliRunner().invoke(cli, ["master", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{path}: 10 rows; 2 (20.0 %) quarantined — never disclosed, still counted as rivals:\n"
        "  column `last_name`: 1 row(s), e.g. m.parquet row 3 (empty) — last_name must not "
        "be empty\n"
        "  column `street`: 1 row(s), e.g. m.parquet row 6 (empty) — street must not be empty\n"
        "  column `state`: 1 row(s), e.g. m.parquet row 6 ('ZZ') — state must be a USPS "
        "two-letter code such as `CA`\n")
    assert "100000002" not in result.output and "GARCIA" not in result.output


def test_a_master_with_two_percent_broken_rows_and_wide_periods_is_answered(
        tmp_path: Path) -> None:
    def run(*args: object) -> str:
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    data = tmp_path / "s"
    run("synth", "--persons", 1500, "--requests", 150, "--seed", 5, "--out", data)
    parts = sorted((data / "master").rglob("*.parquet"))
    rows = [r for part in parts for r in pq.read_table(part).to_pylist()]
    for part in parts:
        part.unlink()
    broken = list(range(0, len(rows), 50))
    for n, i in enumerate(broken):
        rows[i] = {**rows[i], **BROKEN[n % len(BROKEN)]}
    pq.write_table(to_arrow(rows, MASTER_FIELDS), data / "master" / "part-0.parquet")
    said = run("master", "index", "--master", data / "master", "--out", tmp_path / "index",
               "--threads", 2)
    assert said.splitlines()[0] == (
        f"{data / 'master'}: {len(rows):,} rows; {len(broken):,} "
        f"({100 * len(broken) / len(rows):.1f} %) quarantined — never disclosed, still counted "
        "as rivals:")
    assert said.splitlines()[-1] == (f"{len(broken):,} quarantined row(s) written to "
                                     f"{tmp_path / 'index' / QUARANTINE_FILE}")
    # expected matches ask for years long before the file starts: answered from the overlap
    expected = {r["request_row_id"] for r in _csv(data / "truth.csv")
                if r["expected_outcome"] == "M"}
    requests = _csv(data / "request.csv")
    widened = set()
    for r in requests:
        if r["request_row_id"] in expected and re.fullmatch(r"\d{4}(-\d{4})?", r["tax_periods"]):
            r["tax_periods"] = f"2001-{r['tax_periods'][-4:]}"
            widened.add(r["request_row_id"])
    with (data / "request.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(requests[0]))
        writer.writeheader()
        writer.writerows(requests)
    assert len(widened) > 50
    run("process", data / "request.csv", "--master", tmp_path / "index", "--batch",
        data / "batch.toml", "--out", tmp_path / "out", "--ledger", tmp_path / "l.sqlite",
        "--today", "2026-11-29")
    matched = {r["request_row_id"] for r in _csv(tmp_path / "out" / "matched.csv")}
    assert len(matched & widened) >= 0.9 * len(widened)
    assert len(matched) > 0.5 * len(expected)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
