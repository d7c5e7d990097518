"""The data sets bench_robust.py measures on, each a directory laid out like
`lastknown synth` output (request.csv, truth.csv, batch.toml, master/), built from one
synth base. Only the base's *clean* expected-M rows (given name, surname and address
exactly as on file for the true TIN; the middle name may differ) carry the independent
errors; truth stays what it was.

* `sweep_set`: the clean M rows plus the base's N and U rows, ``rate`` of them corrupted;
* `single_year_set`: the master cut to its last tax year with ~2 % imperfect rows (empty
  surname, state or street), requests whose periods only partly overlap that year;
* `romanisation_set`: the given name or the surname of every clean M row respelled by
  the phonetic rules (at the supplied, confirmed address), plus the N rows;
* `attack_set`: rows asking, at a filer's own address and surname, for a different given
  name 1–2 letters from the filer's (`corrupt.near_names`), all expected N, plus the
  clean M rows.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from corrupt import corrupt_rows, near_names, respell

Row = dict[str, str]
#: ``corrupt_rows(rows, rate, seed) -> (rows, {row id: operators applied})`` of a model.
Corruptor = Callable[[list[Row], float, int], tuple[list[Row], dict[str, list[str]]]]
ADDRESS = ("street", "unit", "city", "state", "zip")
IMPERFECT_SHARE = 0.02


def norm(value: str | None) -> str:
    return re.sub(r"\s+", " ", (value or "").strip().upper())


def _read_csv(path: Path) -> tuple[list[str], list[Row]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, columns: list[str], rows: list[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@dataclass
class Base:
    """One synth output, read once."""

    path: Path
    columns: list[str]
    truth_columns: list[str]
    rows: dict[str, Row]
    truth: dict[str, Row]
    clean_m: list[str] = field(default_factory=list)
    n_ids: list[str] = field(default_factory=list)
    u_ids: list[str] = field(default_factory=list)

    @property
    def master_glob(self) -> str:
        return f"read_parquet('{self.path / 'master'}/**/*.parquet')"


def load_base(path: Path) -> Base:
    columns, rows = _read_csv(path / "request.csv")
    truth_columns, truth = _read_csv(path / "truth.csv")
    base = Base(path, columns, truth_columns, {r["request_row_id"]: r for r in rows},
                {t["request_row_id"]: t for t in truth})
    n = "upper(trim(regexp_replace(coalesce({}, ''), '\\s+', ' ', 'g')))".format
    same = " AND ".join(f"{n('m.' + c)} = {n('q.' + c)}" for c in (
        "first_name", "last_name", "street", "unit", "city", "state"))
    clean = {r[0] for r in duckdb.sql(f"""
        SELECT q.request_row_id
        FROM read_csv('{path / 'request.csv'}', all_varchar = true) q
        JOIN read_csv('{path / 'truth.csv'}', all_varchar = true) t USING (request_row_id)
        WHERE t.expected_outcome = 'M' AND EXISTS (
            SELECT 1 FROM {base.master_glob} m WHERE m.tin = t.true_tin AND {same}
            AND left(m.zip, 5) = left(q.zip, 5))""").fetchall()}
    for rid in base.rows:  # request order
        outcome = base.truth[rid]["expected_outcome"]
        if rid in clean:
            base.clean_m.append(rid)
        elif outcome == "N":
            base.n_ids.append(rid)
        elif outcome == "U":
            base.u_ids.append(rid)
    return base


def _write_set(out: Path, base: Base, rows: list[Row], truth: list[Row],
               own_master: bool = False) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _write_csv(out / "request.csv", base.columns, rows)
    _write_csv(out / "truth.csv", base.truth_columns, truth)
    shutil.copy(base.path / "batch.toml", out / "batch.toml")
    if not own_master:  # the base's master, shared
        (out / "master").symlink_to((base.path / "master").resolve(), target_is_directory=True)
    return out


def sweep_set(base: Base, rate: float, seed: int, out: Path,
              corrupt: Corruptor = corrupt_rows) -> tuple[Path, dict[str, list[str]]]:
    """Clean M + N + U rows, ``rate`` of them corrupted by ``corrupt`` (bench/corrupt's
    model unless another is given); the set and, per corrupted row, the operators
    applied."""
    ids = base.clean_m + base.n_ids + base.u_ids
    rows, applied = corrupt([base.rows[i] for i in ids], rate, seed)
    return _write_set(out, base, rows, [base.truth[i] for i in ids]), applied


def package_outcomes(data: Path) -> dict[str, str]:
    """request_row_id → outcome (M/N/A/U/P, R for a rejected row) of the newest run under
    ``data``, from its internal record (the package itself no longer tells unmatched rows
    apart)."""
    archive = max(data.glob("archive-*"))
    record = next(p.parent for p in archive.glob("*/outcomes.csv"))
    return {r["request_row_id"]: r["outcome"]
            for r in _read_csv(record / "outcomes.csv")[1]}


def _last_year(base: Base) -> int:
    return int(duckdb.sql(f"SELECT max(tax_year) FROM {base.master_glob}").fetchall()[0][0])


def single_year_set(base: Base, seed: int, out: Path, rate: float = 0.0,
                    imperfect: float = IMPERFECT_SHARE) -> tuple[Path, dict]:
    """The master's last year only, ``imperfect`` of its rows damaged (none of them a
    requested person's); periods that only partly cover that year; ``rate`` of the
    request rows corrupted."""
    year = _last_year(base)
    table = duckdb.sql(f"SELECT * FROM {base.master_glob} WHERE tax_year = {year} "
                       "ORDER BY tin").arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    records = table.to_pylist()
    by_tin = {r["tin"]: r for r in records}
    periods = (f"{year - 2}-{year}", f"{year - 1};{year}", f"{year - 3}-{year - 1};{year}",
               f"{year}")
    rows, truth = [], []
    for k, rid in enumerate(base.clean_m):
        req, filed = base.rows[rid], by_tin.get(base.truth[rid]["true_tin"])
        if filed is None or any(norm(filed[c]) != norm(req[c]) for c in ADDRESS[:-1]) \
                or (filed["zip"] or "")[:5] != req["zip"][:5]:
            continue  # the supplied address is not the one on file in that year
        rows.append(dict(req, tax_periods=periods[k % len(periods)]))
        truth.append(dict(base.truth[rid], **{f"expected_{c}": filed[c] or "" for c in ADDRESS},
                          expected_tax_year=str(year)))
    for k, rid in enumerate(base.n_ids):
        rows.append(dict(base.rows[rid], tax_periods=periods[k % len(periods)]))
        truth.append(base.truth[rid])
    wanted = {t["true_tin"] for t in truth}
    spare = [r for r in records if r["tin"] not in wanted]
    damaged = random.Random(seed).sample(spare, round(imperfect * len(records)))
    for k, rec in enumerate(damaged):
        rec[("last_name", "state", "street")[k % 3]] = ""
    rows, applied = corrupt_rows(rows, rate, seed)
    _write_set(out, base, rows, truth, own_master=True)
    (out / "master").mkdir()
    pq.write_table(pa.Table.from_pylist(records, schema=table.schema),
                   out / "master" / "part-0000.parquet")
    return out, {"tax_year": year, "master_rows": len(records), "imperfect_rows": len(damaged),
                 "expected_m": sum(t["expected_outcome"] == "M" for t in truth),
                 "corrupted": len(applied)}


def with_base_master(data: Path, base: Base, out: Path) -> Path:
    """The requests and truth of set ``data`` against the base's master (every year on
    file): the reference the single-year recall is compared with."""
    _, rows = _read_csv(data / "request.csv")
    _, truth = _read_csv(data / "truth.csv")
    return _write_set(out, base, rows, truth)


def romanisation_set(base: Base, seed: int, out: Path) -> tuple[Path, dict]:
    """Every clean M row with its given name or surname respelled (1 rule, or 2 in 3 of
    10 rows), at its confirmed address; plus the N rows, unchanged. ``ids`` in the info:
    the row ids by the column respelled."""
    rows, truth = [], []
    which: dict[str, list[str]] = {"first_name": [], "last_name": []}
    for rid in base.clean_m:
        rng = random.Random(f"{seed}:romanisation:{rid}")
        column = "first_name" if rng.random() < 0.5 else "last_name"
        value = base.rows[rid][column]
        new = respell(value, rng, steps=2 if rng.random() < 0.3 else 1)
        if norm(new) == norm(value):
            continue
        which[column].append(rid)
        rows.append(dict(base.rows[rid], **{column: new}))
        truth.append(base.truth[rid])
    rows += [base.rows[i] for i in base.n_ids]
    truth += [base.truth[i] for i in base.n_ids]
    return _write_set(out, base, rows, truth), {
        "given_respelled": len(which["first_name"]), "surname_respelled": len(which["last_name"]),
        "ids": which}


def attack_set(base: Base, seed: int, out: Path, wanted: int) -> tuple[Path, dict]:
    """``wanted`` rows naming a near-miss given name at a filer's own address and surname
    (nobody of that given name files there in any year), expected N; plus clean M rows."""
    year = _last_year(base)
    filed_at = {(norm(s), (z or "")[:5], norm(f)) for s, z, f in duckdb.sql(
        f"SELECT street, zip, first_name FROM {base.master_glob}").fetchall()}
    filers = duckdb.sql(f"""SELECT first_name, last_name, street, unit, city, state, zip
        FROM {base.master_glob} WHERE tax_year = {year} AND coalesce(street, '') <> ''
        AND coalesce(last_name, '') <> '' ORDER BY tin""").fetchall()
    random.Random(f"{seed}:attack").shuffle(filers)
    near: dict[str, list[str]] = {}
    rng = random.Random(f"{seed}:attack-names")
    rows, truth, used = [], [], set()
    templates = [base.rows[i] for i in base.clean_m]
    for first, last, street, unit, city, state, zip_code in filers:
        address = (norm(street), (zip_code or "")[:5])
        given = norm(first)
        if address in used or not given:
            continue
        if given not in near:
            near[given] = near_names(given)
        options = [g for g in near[given] if (*address, g) not in filed_at]
        if not options:
            continue
        asked = rng.choice(options)
        rid = f"ATK-{len(rows) + 1:05d}"
        rows.append(dict(templates[len(rows) % len(templates)], request_row_id=rid,
                         first_name=asked if first.isupper() else asked.title(),
                         middle_name="", last_name=last, street=street, unit=unit or "",
                         city=city, state=state, zip=zip_code or "", tin="",
                         tax_periods=f"{year - 2}-{year}"))
        truth.append({c: "" for c in base.truth_columns} | {
            "request_row_id": rid, "expected_outcome": "N"})
        used.add(address)
        if len(rows) == wanted:
            break
    attacks = len(rows)
    rows += templates
    truth += [base.truth[i] for i in base.clean_m]
    return _write_set(out, base, rows, truth), {"attack_rows": attacks}
