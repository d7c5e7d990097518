"""The response package: matched.csv/.xlsx, unmatched.csv, rejected.csv, receipt.json.

This is what leaves the agency (DESIGN.md, "Response package"). Everything is streamed
out of the engine: the CSVs by ``COPY (SELECT ...) TO``, the spreadsheet from Arrow
record batches, with every text cell neutralised in the SQL itself (see
:mod:`lastknown.disclose.cells`). Only the columns of the allowlists below leave the
system; never the TIN or any other return field. A row that is not disclosed tells the
requester nothing about the master: every line of unmatched.csv carries the request's
own id and name and the same words, :data:`NOT_MATCHED` (no outcome code, no detail).
Outcome codes, details, candidates and the batch summary go to the internal record
(:mod:`lastknown.disclose.record`), which stays with the disclosing agency.

Before a byte is written the row accounting is checked in SQL: every request
row lands in exactly one file, and ``match_result`` has one row per valid row.
A failed check raises :class:`~lastknown.errors.PipelineError` — a bug, never
silenced, because a misplaced row is a wrong answer to a law-enforcement request.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lastknown.disclose.cells import (
    neutralise_sql,
    progress_bar_off,
    sha256_file,
    sql_literal,
    write_xlsx_sheets,
)
from lastknown.disclose.receipt import RECEIPT_JSON
from lastknown.disclose.xlsx_job import XlsxJob, start_xlsx_job
from lastknown.engines.base import Engine
from lastknown.errors import ErrorCollector, PipelineError
from lastknown.match.outcomes import OUTCOMES, UNMATCHED_OUTCOMES
from lastknown.request.reasons import reason_counts_sql

log = logging.getLogger("lastknown.disclose")


# Allowlists: (column written, SQL source expression, is_text). Text is neutralised.
_MATCHED_SOURCES: tuple[tuple[str, str, bool], ...] = (
    ("request_row_id", "v.request_row_id", True),
    ("first_name", "v.first_name", True),
    ("middle_name", "v.middle_name", True),
    ("last_name", "v.last_name", True),
    ("match_probability", "round(CAST(m.match_probability AS DOUBLE), 6)", False),
    ("address_tax_year", "CAST(m.address_tax_year AS INTEGER)", False),
    ("street", "m.street", True),
    ("unit", "m.unit", True),
    ("city", "m.city", True),
    ("state", "m.state", True),
    ("zip", "m.zip", True),
)
DISCLOSED_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _MATCHED_SOURCES)
"""The only columns of matched.csv / matched.xlsx: the request's name and the address."""

_REJECTED_SOURCES: tuple[tuple[str, str, bool], ...] = (
    ("request_row_id", "r.request_row_id", True),
    ("source_row", "CAST(r.source_row AS BIGINT)", False),
    ("reason_codes", "r.reason_codes", True),
    ("detail", "r.detail", True),
)
REJECTED_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _REJECTED_SOURCES)

NOT_MATCHED = "not matched"
"""The one value of unmatched.csv's ``result`` column, the same on every row."""

_UNMATCHED_SOURCES: tuple[tuple[str, str, bool], ...] = (
    ("request_row_id", "v.request_row_id", True),
    ("first_name", "v.first_name", True),
    ("middle_name", "v.middle_name", True),
    ("last_name", "v.last_name", True),
    ("result", sql_literal(NOT_MATCHED), True),
)
UNMATCHED_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _UNMATCHED_SOURCES)
"""The request's own id and name, and :data:`NOT_MATCHED`: nothing from the master."""

MATCHED_CSV, MATCHED_XLSX = "matched.csv", "matched.xlsx"
UNMATCHED_CSV, REJECTED_CSV = "unmatched.csv", "rejected.csv"
DATA_FILES = (MATCHED_CSV, MATCHED_XLSX, UNMATCHED_CSV, REJECTED_CSV)
PACKAGE_FILES = (*DATA_FILES, RECEIPT_JSON)
"""Every file of the folder sent to the requester, and nothing else."""


@dataclass(frozen=True, kw_only=True)
class PackageCounts:
    """What was written: row counts per file, the spreadsheet parts, file digests."""

    matched: int
    unmatched: int
    rejected: int
    total: int
    xlsx_parts: list[str]
    files: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)


def _select(sources: tuple[tuple[str, str, bool], ...]) -> str:
    parts = []
    for name, expr, is_text in sources:
        value = neutralise_sql(f"CAST({expr} AS VARCHAR)") if is_text else expr
        parts.append(f"{value} AS {name}")
    return ", ".join(parts)


def matched_sql(*, result_table: str, valid_table: str) -> str:
    """The rows of matched.csv/.xlsx, neutralised, in source-row order."""
    return (
        f"SELECT {_select(_MATCHED_SOURCES)} FROM {result_table} m "
        f"JOIN {valid_table} v ON v.source_row = m.source_row "
        f"WHERE m.outcome = 'M' ORDER BY m.source_row"
    )


def _rejected_sql(rejected_table: str) -> str:
    return f"SELECT {_select(_REJECTED_SOURCES)} FROM {rejected_table} r ORDER BY r.source_row"


def _unmatched_sql(result_table: str, valid_table: str) -> str:
    codes = ", ".join(sql_literal(c) for c in UNMATCHED_OUTCOMES)
    return (
        f"SELECT {_select(_UNMATCHED_SOURCES)} FROM {result_table} m "
        f"JOIN {valid_table} v ON v.source_row = m.source_row "
        f"WHERE m.outcome IN ({codes}) ORDER BY m.source_row"
    )


def _accounting_checks(raw: str, rejected: str, valid: str, result: str) -> list[tuple[str, str]]:
    """(problem, SQL giving the offending source_row values) — each must be empty."""
    placed = f"(SELECT source_row FROM {rejected} UNION ALL SELECT source_row FROM {result})"
    outcomes = ", ".join(sql_literal(c) for c in OUTCOMES)
    def text(sources: tuple[tuple[str, str, bool], ...]) -> str:
        return ", ".join(f"coalesce(CAST({e} AS VARCHAR), '')" for _, e, t in sources if t)

    outgoing = (f"CASE WHEN m.outcome = 'M' THEN concat_ws(chr(31), {text(_MATCHED_SOURCES)}) "
                f"ELSE concat_ws(chr(31), {text(_UNMATCHED_SOURCES)}) END")
    return [
        (f"{raw} rows without a source_row or with a repeated one",
         f"SELECT source_row FROM {raw} GROUP BY source_row "
         f"HAVING count(*) > 1 OR source_row IS NULL"),
        (f"{raw} rows in no output file (neither {rejected} nor {result})",
         f"SELECT r.source_row FROM {raw} r WHERE NOT EXISTS "
         f"(SELECT 1 FROM {placed} p WHERE p.source_row = r.source_row)"),
        (f"rows of {rejected} or {result} that are not in {raw}",
         f"SELECT p.source_row FROM {placed} p WHERE NOT EXISTS "
         f"(SELECT 1 FROM {raw} r WHERE r.source_row = p.source_row)"),
        (f"rows placed more than once (repeated in, or in both of, {rejected} and {result})",
         f"SELECT source_row FROM {placed} GROUP BY source_row HAVING count(*) > 1"),
        (f"{valid} rows without a {result} row",
         f"SELECT v.source_row FROM {valid} v WHERE NOT EXISTS "
         f"(SELECT 1 FROM {result} m WHERE m.source_row = v.source_row)"),
        (f"{result} rows without a {valid} row",
         f"SELECT m.source_row FROM {result} m WHERE NOT EXISTS "
         f"(SELECT 1 FROM {valid} v WHERE v.source_row = m.source_row)"),
        (f"{result} rows with an outcome other than {'/'.join(OUTCOMES)}",
         f"SELECT source_row FROM {result} WHERE outcome IS NULL OR outcome NOT IN ({outcomes})"),
        (f"{result} rows with outcome M but no probability in [0, 1], tax year or address",
         f"SELECT source_row FROM {result} WHERE outcome = 'M' AND (match_probability IS NULL "
         f"OR NOT (match_probability BETWEEN 0 AND 1) OR address_tax_year IS NULL "
         f"OR street IS NULL OR city IS NULL OR state IS NULL OR zip IS NULL)"),
        (f"{rejected} rows without a reason code",
         f"SELECT source_row FROM {rejected} WHERE coalesce(trim(reason_codes), '') = ''"),
        (f"outgoing rows that contain the row's TIN (from {result}); nothing was written",
         f"SELECT m.source_row FROM {result} m JOIN {valid} v ON v.source_row = m.source_row "
         f"WHERE m.tin IS NOT NULL AND length(m.tin) > 0 AND "
         f"strpos(regexp_replace({outgoing}, '[- ]', '', 'g'), m.tin) > 0"),
    ]


def check_accounting(engine: Engine, *, raw_table: str = "request_raw",
                     rejected_table: str = "request_rejected", valid_table: str = "request_valid",
                     result_table: str = "match_result") -> None:
    """Raise PipelineError unless every raw row lands in exactly one output, cleanly."""
    errors = ErrorCollector()
    for problem, sql in _accounting_checks(raw_table, rejected_table, valid_table, result_table):
        n, examples = engine.fetchall(
            f"SELECT count(*), list(source_row ORDER BY source_row NULLS FIRST)[1:5] FROM ({sql})"
        )[0]
        if n:
            errors.add(f"{n:,} {problem}; source rows e.g. {examples}")
    errors.raise_if_any(PipelineError, "the response package would not account for every row "
                        "(a bug upstream; report it with the request file)")


def _copy_csv(engine: Engine, sql: str, path: Path, header: tuple[str, ...]) -> int:
    rows = engine.copy_to_csv(sql, path)
    with path.open(newline="", encoding="utf-8") as handle:
        written_header = next(csv.reader(handle), [])
    if tuple(written_header) != header:
        raise PipelineError(f"{path.name}: header {written_header} is not the allowlist {header}")
    return rows


def _computed_summary(engine: Engine, *, rejected_table: str, result_table: str) -> dict[str, Any]:
    outcome_counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, n in engine.fetchall(
        f"SELECT outcome, count(*) FROM {result_table} GROUP BY outcome"
    ):
        outcome_counts[str(outcome)] = int(n)
    reason_counts = {str(code): int(n)
                     for code, n in engine.fetchall(reason_counts_sql(rejected_table))}
    expected_false = engine.fetchall(
        f"SELECT coalesce(sum(1 - match_probability), 0) FROM {result_table} WHERE outcome = 'M'"
    )[0][0]
    rejected = engine.count(rejected_table)
    matched = outcome_counts["M"]
    unmatched = sum(outcome_counts[o] for o in UNMATCHED_OUTCOMES)
    return {
        "rows_total": matched + unmatched + rejected,
        "rows_matched": matched,
        "rows_unmatched": unmatched,
        "rows_rejected": rejected,
        "outcome_counts": outcome_counts,
        "reason_counts": reason_counts,
        "expected_false_matches": round(float(expected_false), 6),
    }


def _received_at(summary: dict[str, Any]) -> datetime | None:
    """The batch's receipt time from the caller's summary, if it has one."""
    value = summary.get("received_at")
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


BACKGROUND_XLSX_ROWS = 20_000
"""From this many matched rows on, :func:`stage_package` hands matched.xlsx to a child
process (:mod:`lastknown.disclose.xlsx_job`) when asked to; below it, a child's start-up
costs more than it saves."""


def write_package(engine: Engine, out_dir: Path, *, summary: dict[str, Any],
                  raw_table: str = "request_raw", rejected_table: str = "request_rejected",
                  valid_table: str = "request_valid", result_table: str = "match_result",
                  xlsx_max_rows: int = 1_048_575) -> PackageCounts:
    """Write the package's data files into the existing, empty folder ``out_dir``.

    ``summary`` (the caller's facts: batch, model, timings ...) is merged with the
    counts computed here into :attr:`PackageCounts.summary` (the internal record's
    summary); it is not modified. receipt.json is written by publish, once the ledger
    head is known (:func:`lastknown.disclose.receipt.write_receipt`).
    """
    return stage_package(engine, out_dir, summary=summary, raw_table=raw_table,
                         rejected_table=rejected_table, valid_table=valid_table,
                         result_table=result_table, xlsx_max_rows=xlsx_max_rows).finish()


def stage_package(engine: Engine, out_dir: Path, *, summary: dict[str, Any],
                  raw_table: str = "request_raw", rejected_table: str = "request_rejected",
                  valid_table: str = "request_valid", result_table: str = "match_result",
                  xlsx_max_rows: int = 1_048_575,
                  background_xlsx_from: int | None = None) -> StagedPackage:
    """Check the accounting and write the CSVs; the spreadsheet now or in a child process.

    With ``background_xlsx_from`` set and at least that many matched rows, matched.xlsx
    is written by a child process while the caller goes on (publish records the
    ledger meanwhile); :meth:`StagedPackage.finish` waits for it and adds every file's
    digest to the summary, :meth:`StagedPackage.cancel` stops it.
    """
    with progress_bar_off(engine):
        return _stage_package(engine, out_dir, summary=summary, raw_table=raw_table,
                              rejected_table=rejected_table, valid_table=valid_table,
                              result_table=result_table, xlsx_max_rows=xlsx_max_rows,
                              background_xlsx_from=background_xlsx_from)


@dataclass(kw_only=True)
class StagedPackage:
    """A package in its folder: CSVs written, matched.xlsx written or being written."""

    out_dir: Path
    summary: dict[str, Any]
    computed: dict[str, Any]
    xlsx_max_rows: int
    sheets: list[str] | None = None
    job: XlsxJob | None = None

    def finish(self) -> PackageCounts:
        """Wait for the spreadsheet, then digest every data file."""
        sheets = self.job.wait() if self.job is not None else self.sheets
        self.job = None
        if sheets is None:
            raise PipelineError("the package was already finished or cancelled")
        self.sheets = None
        return _finish_package(self.out_dir, summary=self.summary, computed=dict(self.computed),
                               sheets=sheets, xlsx_max_rows=self.xlsx_max_rows)

    def finish_summary(self) -> dict[str, Any]:
        """:meth:`finish`, returning the merged summary (what publish needs)."""
        return self.finish().summary

    def cancel(self) -> None:
        """Stop a spreadsheet still being written (the caller removes the folder)."""
        if self.job is not None:
            self.job.cancel()
            self.job = None


def _stage_package(engine: Engine, out_dir: Path, *, summary: dict[str, Any], raw_table: str,
                   rejected_table: str, valid_table: str, result_table: str,
                   xlsx_max_rows: int, background_xlsx_from: int | None) -> StagedPackage:
    if not out_dir.is_dir():
        raise PipelineError(f"package folder {out_dir} does not exist: the caller creates it")
    clashes = [name for name in PACKAGE_FILES if (out_dir / name).exists()]
    if clashes:
        raise PipelineError(f"package folder {out_dir} already holds {clashes}: "
                            "a response package is never overwritten")
    if xlsx_max_rows < 1:
        raise PipelineError(f"xlsx_max_rows must be at least 1, not {xlsx_max_rows}")
    tables = dict(raw_table=raw_table, rejected_table=rejected_table, valid_table=valid_table,
                  result_table=result_table)
    check_accounting(engine, **tables)
    computed = _computed_summary(engine, rejected_table=rejected_table, result_table=result_table)

    matched = matched_sql(result_table=result_table, valid_table=valid_table)
    staged = StagedPackage(out_dir=out_dir, summary=summary, computed=computed,
                           xlsx_max_rows=xlsx_max_rows)
    xlsx = dict(columns=DISCLOSED_COLUMNS, sheet_stem="matched", max_rows=xlsx_max_rows,
                expected_rows=computed["rows_matched"], created=_received_at(summary))
    background = (background_xlsx_from is not None
                  and computed["rows_matched"] >= background_xlsx_from)
    if background:  # first: the child is the longest part of publishing; the CSVs go beside it
        staged.job = start_xlsx_job(engine, matched, out_dir / MATCHED_XLSX, **xlsx)
    try:
        written = {
            MATCHED_CSV: _copy_csv(engine, matched, out_dir / MATCHED_CSV, DISCLOSED_COLUMNS),
            UNMATCHED_CSV: _copy_csv(engine, _unmatched_sql(result_table, valid_table),
                                     out_dir / UNMATCHED_CSV, UNMATCHED_COLUMNS),
            REJECTED_CSV: _copy_csv(engine, _rejected_sql(rejected_table),
                                    out_dir / REJECTED_CSV, REJECTED_COLUMNS),
        }
        expected = {MATCHED_CSV: computed["rows_matched"],
                    UNMATCHED_CSV: computed["rows_unmatched"],
                    REJECTED_CSV: computed["rows_rejected"]}
        raw_rows = engine.count(raw_table)
        if written != expected or sum(written.values()) != raw_rows:
            raise PipelineError(f"rows written {written} differ from rows expected {expected} "
                                f"(request rows: {raw_rows:,})")
        if not background:
            staged.sheets = write_xlsx_sheets(engine, matched, out_dir / MATCHED_XLSX, **xlsx)
    except BaseException:
        staged.cancel()
        raise
    return staged


def _finish_package(out_dir: Path, *, summary: dict[str, Any], computed: dict[str, Any],
                    sheets: list[str], xlsx_max_rows: int) -> PackageCounts:
    files = {name: sha256_file(out_dir / name) for name in DATA_FILES}
    computed["xlsx_sheets"] = sheets
    computed["xlsx_note"] = (
        f"{MATCHED_XLSX}: {computed['rows_matched']:,} rows on {len(sheets)} sheet(s) of at most "
        f"{xlsx_max_rows:,} rows" + (" (split: a sheet holds 1,048,576 rows at most)"
                                     if len(sheets) > 1 else "")
    )
    computed["files_sha256"] = dict(files)
    merged = {**summary, **computed}
    log.info("package written: %d matched, %d unmatched, %d rejected", computed["rows_matched"],
             computed["rows_unmatched"], computed["rows_rejected"])
    return PackageCounts(matched=computed["rows_matched"], unmatched=computed["rows_unmatched"],
                         rejected=computed["rows_rejected"], total=computed["rows_total"],
                         xlsx_parts=list(sheets), files=files, summary=merged)
