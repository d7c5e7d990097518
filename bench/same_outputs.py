"""Do two runs of one batch give the same answers? Compare their outputs row for row.

    python bench/same_outputs.py RUN_A RUN_B

A run is a folder holding what ``bench_match.py`` leaves for one lastknown run: the
package (``response-*``), the internal record (``archive-*/<batch>/``) and the ledger
(``ledger-*.sqlite``); or give the three paths joined by commas
(``response,record,ledger.sqlite``). For every CSV of the package and of the record
(matched, unmatched, rejected, outcomes, explanation) the rows are sorted and hashed;
for the ledger, the disclosures' (batch, request row, TIN, address year, address hash,
statute, recipient) rows — everything but the time. Prints one line per table and exits
1 if any differs. A speed change must leave every line ``same``.

explanation.csv's ``record_id`` names one of the TIN's records whose weights tie, chosen
by the engine's thread order (not deterministic between runs of the same code); when
only it differs, the line says ``same but record_id (ties)`` and does not fail.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

#: Columns whose value may differ between two runs of the same code (see above).
TIE_COLUMNS = {"record/explanation.csv": "record_id"}
LEDGER_SQL = ("SELECT batch_id, request_row_id, tin, address_tax_year, address_sha256, "
              "request_statute, recipient FROM ledger_disclosures")


def _one(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern))
    if len(found) > 1:
        raise SystemExit(f"{folder}: more than one {pattern}: {found}")
    return found[0] if found else None


def locate(run: str) -> tuple[Path, Path | None, Path | None]:
    """(package, record, ledger) of a run folder or a comma-joined triple."""
    if "," in run:
        package, record, ledger = (Path(p) for p in run.split(","))
        return package, record, ledger
    folder = Path(run)
    package = _one(folder, "response-*")
    if package is None:
        raise SystemExit(f"{folder}: no response-* folder")
    archive = _one(folder, "archive-*")
    record = _one(archive, "*/outcomes.csv") if archive is not None else None
    if record is not None:
        record = record.parent
    return package, record, _one(folder, "ledger-*.sqlite")


def digest_rows(lines: list[str]) -> tuple[str, int]:
    """sha256 of the sorted rows, and how many."""
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()[:16], len(lines)


def _without(lines: list[str], column: str) -> list[str]:
    """The CSV lines without ``column`` (plain CSV: the compared files quote no commas
    in these tables' columns)."""
    drop = lines[0].split(",").index(column)
    return [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines]


def tables(package: Path, record: Path | None, ledger: Path | None) -> dict[str, tuple[str, int]]:
    """Name → (digest, rows) of every compared table of one run (and ``name~`` without
    its tie column)."""
    out = {}
    for folder, label in ((package, "package"), (record, "record")):
        if folder is None:
            continue
        for csv in sorted(folder.glob("*.csv")):
            name, lines = f"{label}/{csv.name}", csv.read_text(encoding="utf-8").splitlines()
            out[name] = digest_rows(lines)
            if name in TIE_COLUMNS:
                out[name + "~"] = digest_rows(_without(lines, TIE_COLUMNS[name]))
    if ledger is not None:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as con:
            rows = ["\t".join(map(str, r)) for r in con.execute(LEDGER_SQL)]
        out["ledger/disclosures"] = digest_rows(rows)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    a, b = (tables(*locate(run)) for run in argv)
    differ = 0
    for name in sorted(n for n in set(a) | set(b) if not n.endswith("~")):
        same, verdict = a.get(name) == b.get(name), "same"
        if not same and name in TIE_COLUMNS and a.get(name + "~") == b.get(name + "~"):
            same, verdict = True, f"same but {TIE_COLUMNS[name]} (ties)"
        differ += not same
        print(f"{verdict if same else 'DIFFERENT'}: {name}: {a.get(name)} {b.get(name)}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
