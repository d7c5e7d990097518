"""Benchmark: read + validate a synthetic request CSV; print rows/s and peak RSS.

    .venv/bin/python bench/bench_intake.py --rows 1000000

The CSV is written by DuckDB (synthetic values only: ~5 % of rows carry a
problem, some names are accented so the file is a realistic UTF-8 mix).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from lastknown.engines import DuckDBEngine
from lastknown.request.batch import Batch
from lastknown.request.intake import read_request
from lastknown.request.validate import validate_request

BATCH = Batch(batch_id="bench", requesting_agency="Agency", requesting_official="Official",
              official_title="Title", reason="Benchmark", certified=True,
              authorised_statutes=("8 U.S.C. 1253(a)(1)",), certification="Synthetic.")

GENERATOR = """
COPY (
  SELECT 'R' || i AS "Row ID",
         (['José', 'Ana', 'Luis', 'Mei', 'FNU', 'Olga'])[1 + i % 6] AS "First Name",
         CASE WHEN i % 97 = 0 THEN NULL ELSE 'M' END AS "Middle",
         (['Muñoz', 'Lopez', 'Smith', 'Nguyen', 'García Pérez'])[1 + i % 5] AS "Last Name",
         CASE WHEN i % 53 = 0 THEN 'Failed to Provide' WHEN i % 59 = 0 THEN 'Don''t Care 12345'
              ELSE (100 + i % 9000) || ' Main St' END AS "Street Address",
         CASE WHEN i % 3 = 0 THEN 'Apt ' || (i % 40) END AS "Apt",
         'Springfield' AS "City",
         CASE WHEN i % 211 = 0 THEN 'ZZ' ELSE 'IL' END AS "State",
         lpad(CAST(i % 99999 + 1 AS VARCHAR), 5, '0') AS "Zip Code",
         CASE WHEN i % 101 = 0 THEN '2024-02-30' ELSE '3/' || (1 + i % 28) || '/2024' END
           AS "Removal Order Date",
         'C-' || i AS "Case Number",
         '8 U.S.C. 1253(a)(1)' AS "Statute",
         CASE WHEN i % 2 = 0 THEN '2021-2023' ELSE '2022;2024' END AS "Tax Year(s)",
         CASE WHEN i % 4 = 0 THEN lpad(CAST(i AS VARCHAR), 9, '1') END AS "SSN"
  FROM range({rows}) t(i)
) TO '{path}' (HEADER true)
"""


def peak_rss_mib() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, DuckDBEngine(threads=args.threads) as engine:
        path = Path(tmp) / "request.csv"
        engine.execute(GENERATOR.format(rows=args.rows, path=path))
        size_mib = path.stat().st_size / 2**20
        start = time.perf_counter()
        intake = read_request(engine, path)
        read_s = time.perf_counter() - start
        result = validate_request(engine, BATCH, master_years=(2019, 2024),
                                  today=date(2026, 1, 15))
        total_s = time.perf_counter() - start
    print(f"rows: {intake.row_count:,} ({size_mib:,.0f} MiB CSV)")
    print(f"read:     {read_s:6.2f} s  {intake.row_count / read_s:12,.0f} rows/s")
    print(f"validate: {total_s - read_s:6.2f} s  "
          f"{intake.row_count / (total_s - read_s):12,.0f} rows/s")
    print(f"total:    {total_s:6.2f} s  {intake.row_count / total_s:12,.0f} rows/s")
    print(f"valid {result.valid_count:,}, rejected {result.rejected_count:,}: "
          f"{result.reason_counts}")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
