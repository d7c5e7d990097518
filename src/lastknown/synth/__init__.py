"""Synthetic population, master, request, batch metadata and ground truth.

>>> from pathlib import Path
>>> result = generate(persons=2_000, requests=200, seed=1, out=Path("/tmp/s1"))  # doctest: +SKIP

Deterministic for a seed: the same arguments give byte-identical files. All work is
vectorised (numpy / polars); nothing loops over persons in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from lastknown.errors import ConfigError
from lastknown.synth import writer
from lastknown.synth.addresses import address_histories
from lastknown.synth.master import build_master
from lastknown.synth.population import build_population
from lastknown.synth.requests import build_requests

DEFAULT_TODAY = dt.date(2026, 11, 1)

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
             progress: bool = False) -> SynthResult:
    """Write ``out/master/``, ``request.csv``, ``request.xlsx``, ``batch.toml``, ``truth.csv``."""
    today = today or DEFAULT_TODAY
    if persons < 10:
        raise ConfigError(f"synth: --persons must be at least 10 (got {persons})")
    if requests < 1:
        raise ConfigError(f"synth: --requests must be at least 1 (got {requests})")
    if not first_tax_year <= last_tax_year < today.year:
        raise ConfigError(
            f"synth: tax years {first_tax_year}-{last_tax_year} must be ordered and end "
            f"before the year of `today` ({today.isoformat()})")
    years = last_tax_year - first_tax_year + 1
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = ["population", "addresses", "master", "requests", "write master",
             "write request", "write truth"]
    with _steps(progress, len(names)) as bar:
        task = bar.add_task("synth", total=len(names)) if bar else None

        def advance(step: str) -> None:
            if bar is not None and task is not None:
                bar.update(task, advance=1, description=f"synth: {step}")

        pop = build_population(rng, n=persons, years=years)
        advance("population")
        h_hisp = np.zeros(int(pop.household.max()) + 1, dtype=np.bool_)
        h_hisp[pop.household[pop.member == 0]] = pop.hispanic[pop.member == 0]
        addresses, history = address_histories(rng, h_hisp, years=years)
        advance("addresses")
        master = build_master(rng, pop, addresses, history, first_tax_year=first_tax_year,
                              today=today).frame
        advance("master")
        req = build_requests(rng, pop, addresses, history, master, requests=requests,
                             first_tax_year=first_tax_year, today=today)
        advance("requests")
        master_dir = out / "master"
        for old in master_dir.glob("part-*.parquet"):
            old.unlink()
        parts = writer.write_master(master.drop("person", "year_index", "address"), master_dir)
        advance("write master")
        writer.write_request_csv(req.request, out / "request.csv")
        xlsx_path: Path | None = out / "request.xlsx"
        created = dt.datetime(today.year, today.month, today.day)
        skipped = None
        assert xlsx_path is not None
        if not writer.write_request_xlsx(req.request, xlsx_path, created=created):
            skipped = (f"{req.request.height:,} rows exceed the XLSX limit of "
                       f"{writer.XLSX_MAX_DATA_ROWS:,}; use request.csv")
            xlsx_path.unlink(missing_ok=True)
            xlsx_path = None
        writer.write_batch(out / "batch.toml", seed=seed, today=today)
        advance("write request")
        writer.write_truth(req.truth, out / "truth.csv")
        advance("write truth")

    counts = req.truth["expected_outcome"].value_counts().sort("expected_outcome")
    return SynthResult(
        persons=persons, filers=int(pop.files.any(axis=1).sum()), master_rows=master.height,
        request_rows=req.request.height, truth_rows=req.truth.height,
        outcome_counts={str(k): int(v) for k, v in counts.iter_rows()},
        out=out, master_dir=master_dir, master_parts=len(parts),
        request_csv=out / "request.csv", request_xlsx=xlsx_path, xlsx_skipped_reason=skipped,
        batch_toml=out / "batch.toml", truth_csv=out / "truth.csv",
    )
