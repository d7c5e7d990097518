"""Write the synthetic files: master Parquet parts, request CSV/XLSX, batch TOML, truth CSV.

Every writer is deterministic: the same frames give byte-identical files (fixed XLSX
document dates, no timestamps in Parquet or CSV).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import tomli_w
import xlsxwriter

from lastknown.synth.request_text import AUTHORISED_STATUTE

XLSX_MAX_DATA_ROWS = 1_048_575
MASTER_PART_ROWS = 1_000_000


def write_master(frame: pl.DataFrame, folder: Path, *, prefix: str = "part") -> list[Path]:
    """Zstd Parquet part files ``{prefix}-NNNN.parquet`` (at least two, so readers must
    handle a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = max(2, -(-frame.height // MASTER_PART_ROWS))
    size = -(-frame.height // parts) if frame.height else 0
    paths = []
    for i in range(parts):
        path = folder / f"{prefix}-{i:04d}.parquet"
        frame.slice(i * size, size).write_parquet(path, compression="zstd", statistics=True)
        paths.append(path)
    return paths


def write_request_csv(frame: pl.DataFrame, path: Path, *, append: bool = False) -> None:
    """Write ``frame`` as CSV; ``append`` adds its rows (no header) to an existing file."""
    if append:
        with path.open("ab") as fh:
            frame.write_csv(fh, include_header=False)
    else:
        frame.write_csv(path)


def write_request_xlsx(frame: pl.DataFrame, path: Path, *, created: dt.datetime) -> bool:
    """Write the request as one sheet of text cells; False (nothing written) if too long."""
    if frame.height > XLSX_MAX_DATA_ROWS:
        return False
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True,
                                               "strings_to_numbers": False,
                                               "strings_to_formulas": False,
                                               "strings_to_urls": False})
    workbook.set_properties({"created": created})
    sheet = workbook.add_worksheet("request")
    sheet.write_row(0, 0, frame.columns)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value:
                sheet.write_string(r, c, value)
    workbook.close()
    return True


def write_batch(path: Path, *, seed: int, today: dt.date) -> None:
    batch = {
        "batch_id": f"{today.year}-S{seed:04d}",
        "requesting_agency": "U.S. Immigration and Customs Enforcement",
        "requesting_official": "Dana Example",
        "official_title": "Special Agent in Charge",
        "reason": "Locate subjects of final orders of removal for enforcement of those orders.",
        "authorised_statutes": [AUTHORISED_STATUTE],
        "certified": True,
        "certification": "Each row is the subject of an investigation in which the named "
                         "officers are personally and directly engaged.",
    }
    path.write_bytes(tomli_w.dumps(batch).encode("utf-8"))


def write_truth(frame: pl.DataFrame, path: Path, *, append: bool = False) -> None:
    write_request_csv(frame, path, append=append)
