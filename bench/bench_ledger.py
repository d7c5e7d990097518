"""Benchmark: record synthetic disclosures in a ledger; print disclosures/s and CPU µs each.

    .venv/bin/python bench/bench_ledger.py --rows 200000
    .venv/bin/python bench/bench_ledger.py --rows 200000 --ledger postgresql+psycopg://postgres@127.0.0.1:5432/test

One transaction, as ``publish`` writes a batch: one hash-chained entry and one typed
row per disclosure. A PostgreSQL run works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lastknown.disclose.ledger import Ledger, open_ledger
from lastknown.disclose.ledger.chain import canonical_json
from lastknown.disclose.policy import DISCLOSED_FIELDS, LEGAL_AUTHORITY


def disclosures(rows: int, batch_id: str) -> Iterator[dict[str, Any]]:
    """Synthetic disclosure records (TINs from the never-issued 9xx-7x range)."""
    at = datetime.now(UTC)
    for i in range(rows):
        address = [f"{100 + i % 9000} MAIN ST", None, "SPRINGFIELD", "IL", "62701"]
        yield {"batch_id": batch_id, "request_row_id": f"R{i}", "tin": f"97{i:07d}",
               "fields": list(DISCLOSED_FIELDS), "address_tax_year": 2023,
               "address_sha256": hashlib.sha256(canonical_json(address).encode()).hexdigest(),
               "legal_authority": LEGAL_AUTHORITY, "request_statute": "8 USC 1253(A)(1)",
               "recipient": "Agency", "disclosed_at": at}


@contextmanager
def scratch_ledger(url: str | None, tmp: str) -> Iterator[Ledger]:
    """A new ledger: a SQLite file in ``tmp``, or a fresh PostgreSQL schema at ``url``."""
    if url is None or not url.startswith("postgresql"):
        yield open_ledger(url or str(Path(tmp) / "ledger.sqlite"), create=True)
        return
    schema = f"lk_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield open_ledger(url, create=True, connect_args={"options": f"-csearch_path={schema}"})
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--ledger", help="ledger URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scratch_ledger(args.ledger, tmp) as ledger:
        batch_id = f"bench-{time.time_ns()}"
        wall, cpu = time.perf_counter(), time.process_time()
        with ledger.transaction() as tx:
            written = tx.add_many("disclosure", disclosures(args.rows, batch_id))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{ledger.display_url}: {written:,} disclosures in {wall:.1f} s "
              f"({written / wall:,.0f}/s), {1e6 * cpu / written:.0f} µs CPU each "
              "in this process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
