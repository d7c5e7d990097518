"""The master loader accepts the contract and names every violation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lastknown.engines import DuckDBEngine
from lastknown.errors import MasterError
from lastknown.master import MASTER_COLUMNS, load_master


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "tin": "123456789", "tax_year": 2023, "filing_status": "single", "role": "primary",
        "first_name": "ANA", "middle_name": "", "last_name": "GARCIA", "name_suffix": "",
        "street": "12 MAIN ST", "unit": "", "city": "AUSTIN", "state": "TX", "zip": "78701",
        "received_date": dt.date(2024, 4, 1),
    }
    row.update(over)
    return row


def _write(path: Path, rows: list[dict[str, object]], drop: tuple[str, ...] = ()) -> Path:
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k not in drop} for r in rows])
    pq.write_table(table, path)
    return path


def test_valid_master_loads(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.parquet", [_row(), _row(tax_year=2022, zip="787011234")])
    with DuckDBEngine() as engine:
        report = load_master(engine, path)
        assert (report.table_name, report.rows, report.quarantined) == ("master", 2, 0)
        assert engine.count("master") == 2
        assert set(MASTER_COLUMNS) <= set(engine.columns("master"))


def test_folder_of_parquet_files_loads(tmp_path: Path) -> None:
    folder = tmp_path / "master"
    (folder / "part").mkdir(parents=True)
    _write(folder / "a.parquet", [_row()])
    _write(folder / "part" / "b.parquet", [_row(tin="987654321")])
    with DuckDBEngine() as engine:
        load_master(engine, folder)
        assert engine.count("master") == 2


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.parquet", [_row()], drop=("zip", "state"))
    with DuckDBEngine() as engine, pytest.raises(MasterError) as info:
        load_master(engine, path)
    message = str(info.value)
    assert "column `zip` is missing" in message
    assert "column `state` is missing" in message


def test_mostly_broken_master_is_refused_naming_every_problem_without_tins(
        tmp_path: Path) -> None:
    rows = [_row(tin="12345678X"), _row(state="ZZ"), _row(zip="1234"), _row(role="boss"),
            _row()]
    path = _write(tmp_path / "m.parquet", rows)
    with DuckDBEngine() as engine, pytest.raises(MasterError) as info:
        load_master(engine, path)
    message = str(info.value)
    assert "structurally unusable as a master: 4 of 5 rows are broken" in message
    assert "column `tin`: 1 row(s), e.g. m.parquet row 1 — a TIN must be" in message
    assert "column `state`: 1 row(s), e.g. m.parquet row 2 ('ZZ')" in message
    for col in ("zip", "role"):
        assert f"column `{col}`: 1 row(s)" in message
    assert "12345678X" not in message


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.parquet", [_row(tax_year="2023")])
    with DuckDBEngine() as engine, pytest.raises(MasterError, match="`tax_year` has type"):
        load_master(engine, path)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with DuckDBEngine() as engine:
        with pytest.raises(MasterError, match="master not found"):
            load_master(engine, tmp_path / "nope")
        (tmp_path / "empty").mkdir()
        with pytest.raises(MasterError, match="holds no .parquet files"):
            load_master(engine, tmp_path / "empty")
