"""Synthetic population, master, request, batch metadata and ground truth.

>>> from pathlib import Path
>>> result = generate(persons=2_000, requests=200, seed=1, out=Path("/tmp/s1"))  # doctest: +SKIP

Deterministic for a seed: the same arguments give byte-identical files. All work is
vectorised (numpy / polars); nothing loops over persons in Python.
"""

from __future__ import annotations

import datetime as dt
import gc
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import Progress

from lastknown.errors import ConfigError, InputError
from lastknown.outdirs import check_can_create
from lastknown.synth import writer
from lastknown.synth.addresses import address_histories
from lastknown.synth.master import build_master
from lastknown.synth.population import MAX_TIN_SHARDS, build_population
from lastknown.synth.requests import build_requests

DEFAULT_TODAY = dt.date(2026, 11, 1)
#: What `generate` writes into ``out`` (``--force`` replaces exactly these).
OUTPUTS = ("master", "request.csv", "request.xlsx", "batch.toml", "truth.csv")

__all__ = ["DEFAULT_TODAY", "SynthResult", "generate"]


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    """What :func:`generate` wrote."""

    persons: int
    filers: int
    master_rows: int
    request_rows: int
    truth_rows: int
    outcome_counts: dict[str, int]
    out: Path
    master_dir: Path
    master_parts: int
    request_csv: Path
    request_xlsx: Path | None
    xlsx_skipped_reason: str | None
    batch_toml: Path
    truth_csv: Path

    def __str__(self) -> str:
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(self.outcome_counts.items()))
        xlsx = f"; xlsx skipped: {self.xlsx_skipped_reason}" if self.xlsx_skipped_reason else ""
        return (f"{self.persons:,} persons ({self.filers:,} filers), {self.master_rows:,} master "
                f"rows in {self.master_parts} parts, {self.request_rows:,} request rows "
                f"({outcomes}){xlsx}")


@contextmanager
def _steps(progress: bool, total: int) -> Iterator[Progress | None]:
    if not progress:
        yield None
        return
    with Progress(transient=True) as bar:
        yield bar


def generate(*, persons: int, requests: int, seed: int, out: Path, first_tax_year: int = 2019,
             last_tax_year: int = 2024, today: dt.date | None = None,
             progress: bool = False, shard_persons: int | None = None,
             force: bool = False) -> SynthResult:
    """Write ``out/master/``, ``request.csv``, ``request.xlsx``, ``batch.toml``, ``truth.csv``.

    ``out`` must be new or empty unless ``force``: then the files are first written to a
    hidden folder inside ``out`` and replace the old ones only when all were written.

    ``shard_persons``: when ``persons`` is larger, the population is drawn in
    ``ceil(persons / shard_persons)`` independent shards, one after another, so memory is
    bounded by one shard (about 3.4 GB per million persons). Shard ``k`` uses the seed
    ``[seed, k]``, TINs from its own class (unique across shards), request row ids in its
    own range, and writes ``master/part-sKKK-NNNN.parquet``; its request and truth rows are
    appended to the one ``request.csv`` / ``truth.csv`` (no XLSX: one shard's rows are not
    shuffled among another's). Households, moves and name collisions stay within a shard,
    so, e.g., an ``N`` row's name may be filed by someone in another shard (the matcher
    then honestly answers ``U`` or ``N``; never a disclosure for that row's address).
    """
    today = today or DEFAULT_TODAY
    if persons < 10:
        raise ConfigError(f"synth: --persons must be at least 10 (got {persons})")
    if requests < 1:
        raise ConfigError(f"synth: --requests must be at least 1 (got {requests})")
    if not first_tax_year <= last_tax_year < today.year:
        raise ConfigError(
            f"synth: tax years {first_tax_year}-{last_tax_year} must be ordered and end "
            f"before the year of `today` ({today.isoformat()})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    check_can_create(out)
    existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if existing and not force:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        raise InputError(f"--out {out} is not empty (it holds {shown}): choose an empty or "
                         "new folder, or pass --force to replace the synthetic files there")
    out.mkdir(parents=True, exist_ok=True)

    def run(into: Path) -> SynthResult:
        if shard_persons is not None and persons > shard_persons:
            return _generate_sharded(persons=persons, requests=requests, seed=seed, out=into,
                                     first_tax_year=first_tax_year, today=today,
                                     last_tax_year=last_tax_year, progress=progress,
                                     shard_persons=shard_persons)
        return _generate_single(persons=persons, requests=requests, seed=seed, out=into,
                                first_tax_year=first_tax_year, last_tax_year=last_tax_year,
                                today=today, progress=progress)

    if not existing:
        return run(out)
    # --force: write everything beside the old files first; replace them only once it worked.
    staging = Path(tempfile.mkdtemp(prefix=".lastknown-synth-", dir=out))
    try:
        result = run(staging)
        for name in sorted(set(OUTPUTS) | {p.name for p in staging.iterdir()}):
            old, new = out / name, staging / name
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink(missing_ok=True)  # e.g. an old request.xlsx this run did not write
            if new.exists():
                new.rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _moved(result, staging, out)


def _moved(result: SynthResult, old: Path, new: Path) -> SynthResult:
    def move(path: Path | None) -> Path | None:
        return None if path is None else new / path.relative_to(old)

    return replace(result, out=new, master_dir=new / "master",
                   request_csv=new / "request.csv", request_xlsx=move(result.request_xlsx),
                   batch_toml=new / "batch.toml", truth_csv=new / "truth.csv")


def _generate_single(*, persons: int, requests: int, seed: int, out: Path, first_tax_year: int,
                     last_tax_year: int, today: dt.date, progress: bool) -> SynthResult:
    master_dir = out / "master"
    shard = _generate_one(np.random.default_rng(seed), persons=persons, requests=requests,
                          out=out, first_tax_year=first_tax_year, last_tax_year=last_tax_year,
                          today=today, progress=progress)
    xlsx_path: Path | None = out / "request.xlsx"
    created = dt.datetime(today.year, today.month, today.day)
    skipped = None
    assert xlsx_path is not None
    if not writer.write_request_xlsx(shard.request, xlsx_path, created=created):
        skipped = (f"{shard.request.height:,} rows exceed the XLSX limit of "
                   f"{writer.XLSX_MAX_DATA_ROWS:,}; use request.csv")
        xlsx_path.unlink(missing_ok=True)
        xlsx_path = None
    writer.write_batch(out / "batch.toml", seed=seed, today=today)
    return SynthResult(
        persons=persons, filers=shard.filers, master_rows=shard.master_rows,
        request_rows=shard.request.height, truth_rows=shard.truth_rows,
        outcome_counts=shard.outcome_counts,
        out=out, master_dir=master_dir, master_parts=shard.master_parts,
        request_csv=out / "request.csv", request_xlsx=xlsx_path, xlsx_skipped_reason=skipped,
        batch_toml=out / "batch.toml", truth_csv=out / "truth.csv",
    )


@dataclass(frozen=True, kw_only=True)
class _Shard:
    filers: int
    master_rows: int
    master_parts: int
    request: pl.DataFrame
    truth_rows: int
    outcome_counts: dict[str, int]


def _generate_one(rng: np.random.Generator, *, persons: int, requests: int, out: Path,
                  first_tax_year: int, last_tax_year: int, today: dt.date, progress: bool,
                  tin_shard: tuple[int, int] = (0, 1), row_id_offset: int = 0,
                  part_prefix: str = "part", append: bool = False) -> _Shard:
    """One population: master parts written, request/truth CSV written (or appended)."""
    years = last_tax_year - first_tax_year + 1
    names = ["population", "addresses", "master", "requests", "write master",
             "write request", "write truth"]
    with _steps(progress, len(names)) as bar:
        task = bar.add_task("synth", total=len(names)) if bar else None

        def advance(step: str) -> None:
            if bar is not None and task is not None:
                bar.update(task, advance=1, description=f"synth: {step}")

        pop = build_population(rng, n=persons, years=years, tin_shard=tin_shard)
        advance("population")
        h_hisp = np.zeros(int(pop.household.max()) + 1, dtype=np.bool_)
        h_hisp[pop.household[pop.member == 0]] = pop.hispanic[pop.member == 0]
        addresses, history = address_histories(rng, h_hisp, years=years)
        advance("addresses")
        master = build_master(rng, pop, addresses, history, first_tax_year=first_tax_year,
                              today=today).frame
        advance("master")
        req = build_requests(rng, pop, addresses, history, master, requests=requests,
                             first_tax_year=first_tax_year, today=today,
                             row_id_offset=row_id_offset)
        advance("requests")
        parts = writer.write_master(master.drop("person", "year_index", "address"),
                                    out / "master", prefix=part_prefix)
        advance("write master")
        writer.write_request_csv(req.request, out / "request.csv", append=append)
        advance("write request")
        writer.write_truth(req.truth, out / "truth.csv", append=append)
        advance("write truth")
    counts = req.truth["expected_outcome"].value_counts().sort("expected_outcome")
    return _Shard(filers=int(pop.files.any(axis=1).sum()), master_rows=master.height,
                  master_parts=len(parts), request=req.request, truth_rows=req.truth.height,
                  outcome_counts={str(k): int(v) for k, v in counts.iter_rows()})


def _generate_sharded(*, persons: int, requests: int, seed: int, out: Path,
                      first_tax_year: int, last_tax_year: int, today: dt.date, progress: bool,
                      shard_persons: int) -> SynthResult:
    n_shards = -(-persons // shard_persons)
    if n_shards > MAX_TIN_SHARDS:
        raise ConfigError(f"synth: {n_shards} shards is more than {MAX_TIN_SHARDS}; "
                          "raise shard_persons")
    shard_sizes = [persons // n_shards + (1 if k < persons % n_shards else 0)
                   for k in range(n_shards)]
    request_sizes = [requests // n_shards + (1 if k < requests % n_shards else 0)
                     for k in range(n_shards)]
    if min(shard_sizes) < 10 or min(request_sizes) < 1:
        raise ConfigError("synth: every shard needs at least 10 persons and 1 request")
    master_dir = out / "master"
    filers = master_rows = parts = request_rows = truth_rows = 0
    outcomes: dict[str, int] = {}
    offset = 0
    for k in range(n_shards):
        shard = _generate_one(np.random.default_rng([seed, k]), persons=shard_sizes[k],
                              requests=request_sizes[k], out=out,
                              first_tax_year=first_tax_year, last_tax_year=last_tax_year,
                              today=today, progress=progress, tin_shard=(k, n_shards),
                              row_id_offset=offset, part_prefix=f"part-s{k:03d}",
                              append=k > 0)
        offset += request_sizes[k]
        filers += shard.filers
        master_rows += shard.master_rows
        parts += shard.master_parts
        request_rows += shard.request.height
        truth_rows += shard.truth_rows
        for key, n in shard.outcome_counts.items():
            outcomes[key] = outcomes.get(key, 0) + n
        del shard
        gc.collect()
    writer.write_batch(out / "batch.toml", seed=seed, today=today)
    return SynthResult(
        persons=persons, filers=filers, master_rows=master_rows, request_rows=request_rows,
        truth_rows=truth_rows, outcome_counts=dict(sorted(outcomes.items())), out=out,
        master_dir=master_dir, master_parts=parts, request_csv=out / "request.csv",
        request_xlsx=None, xlsx_skipped_reason=f"generated in {n_shards} shards; use request.csv",
        batch_toml=out / "batch.toml", truth_csv=out / "truth.csv",
    )
