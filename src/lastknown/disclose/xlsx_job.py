"""matched.xlsx written by a child process while the parent records the disclosures.

Writing the workbook is Python (about 1.3 µs a cell with
:mod:`~lastknown.disclose.sheet_rows`, half of it zlib), and so is preparing the
ledger's entries; both hold the GIL. At 550k matched rows the workbook takes ~8 s
and the entries ~3 s, and done one after the other they would wait for each other
while the engine's cores sit idle. So for a large package the
matched rows are copied out of the engine into a Parquet file (column types kept,
rows in order), and a child interpreter (``python -m lastknown.disclose.xlsx_job
ARGS.json``) writes the workbook from it with the same
:func:`~lastknown.disclose.cells.write_xlsx_batches` — same bytes as in process —
while the parent writes the ledger. :func:`lastknown.disclose.publish.publish`
waits for the child before the summary is written and the ledger commits, so a
failed child leaves nothing committed; :meth:`XlsxJob.cancel` stops it on any error.

The Parquet copy (names and addresses, the rows that leave the system anyway; never
a TIN) lives in a private hidden folder inside the package's staging folder, removed
when the job ends; if the process is killed, recovery removes it with the staging
folder (a committed package never holds it: the job ends before the commit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lastknown.disclose.cells import write_xlsx_batches
from lastknown.engines.base import Engine
from lastknown.errors import PipelineError

_BATCH_ROWS = 50_000


@dataclass
class XlsxJob:
    """A workbook being written by a child process; :meth:`wait` for its sheet names."""

    process: subprocess.Popen[bytes]
    workdir: Path
    path: Path

    def wait(self) -> list[str]:
        """Wait for the child; its sheet names, or PipelineError if it failed."""
        try:
            _, err = self.process.communicate()
            if self.process.returncode != 0:
                lines = err.decode("utf-8", "replace").strip().splitlines()
                last = lines[-1] if lines else "no message"
                raise PipelineError(f"{self.path.name}: the spreadsheet writer (a child process) "
                                    f"failed with exit code {self.process.returncode}: {last}")
            result = json.loads((self.workdir / "result.json").read_text(encoding="utf-8"))
            return [str(name) for name in result["sheets"]]
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the child if it still runs and remove its temporary files (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_xlsx_job(engine: Engine, sql: str, path: Path, *, columns: tuple[str, ...],
                   sheet_stem: str, max_rows: int, expected_rows: int,
                   created: datetime | None = None) -> XlsxJob:
    """Copy the rows of ``sql`` out of the engine and start writing ``path`` in a child."""
    workdir = Path(tempfile.mkdtemp(prefix=".lastknown-xlsx-", dir=path.parent))
    try:
        rows = workdir / "rows.parquet"
        engine.copy_to_parquet(sql, rows)
        args = {"rows": str(rows), "path": str(path), "columns": list(columns),
                "sheet_stem": sheet_stem, "max_rows": max_rows, "expected_rows": expected_rows,
                "created": created.isoformat() if created is not None else None,
                "result": str(workdir / "result.json")}
        (workdir / "args.json").write_text(json.dumps(args), encoding="utf-8")
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
        process = subprocess.Popen(
            [sys.executable, "-m", "lastknown.disclose.xlsx_job", str(workdir / "args.json")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return XlsxJob(process=process, workdir=workdir, path=path)


def main(argv: list[str]) -> int:
    """The child: write the workbook described by the JSON file ``argv[0]``."""
    import pyarrow.parquet as pq

    args = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    created = datetime.fromisoformat(args["created"]) if args["created"] else None
    with pq.ParquetFile(args["rows"]) as rows:
        sheets = write_xlsx_batches(rows.iter_batches(batch_size=_BATCH_ROWS), Path(args["path"]),
                                    columns=tuple(args["columns"]), sheet_stem=args["sheet_stem"],
                                    max_rows=int(args["max_rows"]),
                                    expected_rows=int(args["expected_rows"]), created=created)
    Path(args["result"]).write_text(json.dumps({"sheets": sheets}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
