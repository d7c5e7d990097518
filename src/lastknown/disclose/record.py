"""The internal record of a batch: what the disclosing agency keeps and the requester never sees.

One folder per batch in the deployment's archive (``Deployment.archive``)::

    <archive>/<batch>/          <batch> = the batch id, lower-cased (record_name)
        record.json             the batch summary: counts per outcome and reason, model,
                                thresholds, policy decision, warnings, timings, expected
                                false matches, recently disclosed rows, the ledger head,
                                the digests of the package's files and of this folder's
        outcomes.csv            every request row: its outcome (M N A U P, or R for a
                                rejected row), probability, candidate TINs considered,
                                reason codes and detail (OUTCOME_COLUMNS)
        explanation.csv         ``match_explanation``: the per-comparison weights of the
                                top two TINs of each row the matcher explains

It holds what the package must not: outcome codes, details, candidates, TINs (in
explanation.csv). The disclosure officer, the auditor and ``lastknown evaluate`` read it.

It is written in the publish protocol (:mod:`lastknown.disclose.publish`): staged in
``<archive>/.<batch>.staging`` (:func:`begin_record`), sealed with the ledger head
before the ledger commits (:func:`seal`), renamed into place after the commit and
before the package is published (:func:`deliver_record`), or removed if the commit never
happened (:func:`discard_record`). A small marker file in the package's staging folder
names the record's staging folder, so recovery finds it from the package folder alone;
the marker is removed before the package is published and never leaves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lastknown.disclose.cells import neutralise_sql, progress_bar_off, sha256_file, sql_literal
from lastknown.disclose.receipt import fsync_dir, read_json_object, write_json, write_receipt
from lastknown.engines.base import Engine
from lastknown.errors import LedgerError, PipelineError
from lastknown.request.batch import batch_key

RECORD_JSON, OUTCOMES_CSV, EXPLANATION_CSV = "record.json", "outcomes.csv", "explanation.csv"
OUTCOME_COLUMNS = ("source_row", "request_row_id", "outcome", "match_probability",
                   "address_tax_year", "candidates", "reason_codes", "detail")
REJECTED_OUTCOME = "R"
"""The outcome code of a rejected row in outcomes.csv (the matcher's are M N A U P)."""
MARKER = ".record-location.json"
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def record_name(batch_id: str) -> str:
    """The archive folder name of a batch: its id lower-cased (ids compare case-insensitively).

    An id that is not a plain file name gets a digest suffix, so two ids never share a folder.

    >>> record_name("2026-0142"), record_name("AbC")
    ('2026-0142', 'abc')
    >>> record_name("ICE/2026 #7")
    'ice_2026__7-aa89aae1cbcd'
    """
    key = batch_key(batch_id)
    if _SAFE_NAME.fullmatch(key):
        return key
    safe = re.sub(r"[^a-z0-9._-]", "_", key)[:80].lstrip("._-") or "batch"
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def record_dir_for(archive: Path, batch_id: str) -> Path:
    """Where the internal record of ``batch_id`` lives in ``archive``."""
    return archive / record_name(batch_id)


def _staging_for(record_dir: Path) -> Path:
    return record_dir.parent / f".{record_dir.name}.staging"


def begin_record(package_staging: Path, *, archive: Path, batch_id: str) -> Path:
    """Create the record's staging folder, noted in ``package_staging``; return it.

    LedgerError when the archive already holds this batch's record (a batch is answered
    once) or the staging folder of an interrupted publish of it.
    """
    final = record_dir_for(archive.resolve(), batch_id)
    staging = _staging_for(final)
    if final.exists():
        raise LedgerError(f"the archive already holds the internal record of batch {batch_id} "
                          f"({final}); a batch is answered once — use a new batch id")
    if staging.exists():
        raise LedgerError(f"{staging} holds the internal record of an interrupted publish of "
                          f"batch {batch_id}; rerun it with the same --out folder to recover")
    write_json(package_staging / MARKER, {"staging": str(staging), "record": str(final)})
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds TINs: owner only
    staging.mkdir(mode=0o700)
    return staging


def _located(package_staging: Path) -> tuple[Path, Path] | None:
    marker = package_staging / MARKER
    if not marker.is_file():
        return None
    try:
        where = json.loads(marker.read_text(encoding="utf-8"))
        return Path(where["staging"]), Path(where["record"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{marker} cannot be read ({exc}); it names the staged internal "
                          "record of this package — restore it or remove the staging by hand"
                          ) from exc


def deliver_record(package_staging: Path) -> Path | None:
    """After the commit: rename the staged record into place; return its folder.

    None when the package staging names no record (already delivered by an earlier run).
    """
    located = _located(package_staging)
    if located is None:
        return None
    staging, final = located
    if staging.is_dir():
        if final.exists():
            raise LedgerError(f"{final} exists and {staging} holds the committed internal "
                              f"record; move {final} away and run again to deliver it")
        os.rename(staging, final)
        fsync_dir(final.parent)
    (package_staging / MARKER).unlink()
    fsync_dir(package_staging)
    return final


def discard_record(package_staging: Path) -> None:
    """Before (or without) the commit: remove the staged record and its marker."""
    located = _located(package_staging)
    if located is not None:
        shutil.rmtree(located[0], ignore_errors=True)
        (package_staging / MARKER).unlink(missing_ok=True)


def seal(package_staging: Path, record_staging: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write receipt.json into the package and record.json into the record; return the latter.

    ``summary`` carries the ledger head; record.json adds the receipt's digest and the
    digests of the record's own files, so the record proves what the requester received.
    """
    receipt_sha = write_receipt(package_staging, summary)
    files = {name: sha256_file(record_staging / name) for name in (OUTCOMES_CSV, EXPLANATION_CSV)
             if (record_staging / name).is_file()}
    record = {**summary, "receipt_sha256": receipt_sha, "record_files_sha256": files}
    write_json(record_staging / RECORD_JSON, record)
    return record


def read_record(record_dir: Path) -> dict[str, Any]:
    """record.json of an internal record; InputError naming the file if unreadable."""
    return read_json_object(record_dir / RECORD_JSON, what="record",
                            missing="no internal record there (see `--record`)")


def _outcomes_sql(engine: Engine, result: str, rejected: str, scored: str) -> str:
    def text(expr: str) -> str:
        return neutralise_sql(f"CAST({expr} AS VARCHAR)")

    if engine.table_exists(scored):
        candidates = "coalesce(c.candidates, 0)"
        join = (f"LEFT JOIN (SELECT source_row, count(DISTINCT tin) AS candidates FROM {scored} "
                "GROUP BY source_row) c ON c.source_row = m.source_row")
    else:
        candidates, join = "CAST(NULL AS BIGINT)", ""
    parts = [f"SELECT m.source_row, {text('m.request_row_id')} AS request_row_id, m.outcome, "
             "round(CAST(m.match_probability AS DOUBLE), 6) AS match_probability, "
             f"CAST(m.address_tax_year AS INTEGER) AS address_tax_year, "
             f"{candidates} AS candidates, CAST(NULL AS VARCHAR) AS reason_codes, "
             f"{text('m.detail')} AS detail FROM {result} m {join}"]
    if engine.table_exists(rejected):
        parts.append(f"SELECT r.source_row, {text('r.request_row_id')}, "
                     f"{sql_literal(REJECTED_OUTCOME)}, NULL, NULL, NULL, "
                     f"{text('r.reason_codes')}, {text('r.detail')} FROM {rejected} r")
    return (f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM ({' UNION ALL '.join(parts)}) "
            "ORDER BY source_row")


def _explanation_sql(engine: Engine, table: str) -> str:
    types = engine.column_types(table)
    select = ", ".join(f"{neutralise_sql(name)} AS {name}" if kind.upper() in ("VARCHAR", "STRING")
                       else name
                       for name, kind in types.items())
    order = "source_row, tin_rank" if "tin_rank" in types else "source_row"
    return f"SELECT {select} FROM {table} ORDER BY {order}"


def write_record_tables(engine: Engine, record_dir: Path, *, result_table: str = "match_result",
                        rejected_table: str = "request_rejected",
                        explanation_table: str = "match_explanation",
                        scored_table: str = "lk_scored") -> dict[str, int]:
    """Write outcomes.csv (and explanation.csv, if the matcher left one); return row counts."""
    written: dict[str, int] = {}
    with progress_bar_off(engine):
        written[OUTCOMES_CSV] = _copy(engine, _outcomes_sql(
            engine, result_table, rejected_table, scored_table), record_dir / OUTCOMES_CSV)
        if engine.table_exists(explanation_table):
            written[EXPLANATION_CSV] = _copy(engine, _explanation_sql(engine, explanation_table),
                                             record_dir / EXPLANATION_CSV)
    expected = engine.count(result_table) + (
        engine.count(rejected_table) if engine.table_exists(rejected_table) else 0)
    if written[OUTCOMES_CSV] != expected:
        raise PipelineError(f"{OUTCOMES_CSV}: wrote {written[OUTCOMES_CSV]:,} rows for "
                            f"{expected:,} request rows")
    return written


def _copy(engine: Engine, sql: str, path: Path) -> int:
    return engine.copy_to_csv(sql, path)
