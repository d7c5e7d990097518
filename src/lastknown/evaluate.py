"""Score a response package against synthetic truth (``truth.csv`` from `lastknown synth`).

A disclosure (a row of matched.csv) is *correct* when truth expects `M` for its
request_row_id and the address equals the expected one: case and spacing aside,
the unit compared the same way, the ZIP on its first five digits. Everything is
computed in DuckDB over the package's CSV files, so a package of millions of rows
is scored without building Python rows.

The package tells the requester only "not matched" for a row it does not answer; the
outcome of such a row (`N`, `A`, `U`, `P`) and the model's expected false matches are
read from the batch's internal record (:mod:`lastknown.disclose.record`), found through
the package's receipt.json in the deployment's archive, or named with ``record_dir``.
The record must carry the same ledger head as the receipt: a record of another package
is refused.

Nothing is silently dropped: truth rows missing from the package, package rows
unknown to truth, rows without an id and ids found in more than one file are
all counted. A disclosure unknown to truth counts as a false disclosure: it
cannot be shown to be right. A request_row_id repeated in the request is one
truth line (`R`, `DUPLICATE_ROW_ID`) but several lines of rejected.csv; it is
counted once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lastknown.disclose.cells import neutralise_sql, sql_literal
from lastknown.disclose.receipt import RECEIPT_JSON, read_receipt
from lastknown.disclose.record import OUTCOMES_CSV, read_record, record_dir_for
from lastknown.engines import Engine, make_engine
from lastknown.errors import EngineError, ErrorCollector, InputError, PipelineError
from lastknown.match.outcomes import OUTCOMES_WITH_REJECTED

TRUTH_COLUMNS = ("request_row_id", "expected_outcome", "expected_street", "expected_unit",
                 "expected_city", "expected_state", "expected_zip", "expected_tax_year",
                 "expected_reason")
PACKAGE_COLUMNS = {
    "matched.csv": ("request_row_id", "address_tax_year", "street", "unit", "city", "state",
                    "zip"),
    "unmatched.csv": ("request_row_id",),
    "rejected.csv": ("request_row_id", "source_row", "reason_codes"),
}
RECORD_COLUMNS = ("request_row_id", "outcome")
# When one id sits in several lines (it should not), the outcome that counts, best first.
_PRECEDENCE = ("CASE got WHEN 'M' THEN 1 WHEN 'A' THEN 2 WHEN 'U' THEN 3 WHEN 'P' THEN 4 "
               "WHEN 'N' THEN 5 ELSE 6 END")


def _norm(expr: str) -> str:
    """Case and spacing aside."""
    return f"upper(trim(regexp_replace(coalesce({expr}, ''), '\\s+', ' ', 'g')))"


def _zip5(expr: str) -> str:
    return f"left(regexp_replace(coalesce({expr}, ''), '[^0-9]', '', 'g'), 5)"


def _address_equal() -> str:
    parts = [f"{_norm(f'd.{c}')} = {_norm(neutralise_sql(f't.expected_{c}'))}"
             for c in ("street", "unit", "city", "state")]
    parts.append(f"{_zip5('d.zip')} = {_zip5('t.expected_zip')}")
    return " AND ".join(parts)


def _load_csv(engine: Engine, table: str, path: Path,
              required: tuple[str, ...]) -> None:
    if not path.is_file():
        raise InputError(f"{path} is missing: point --result at a complete response package")
    try:
        engine.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv({sql_literal(str(path))}, "
            "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"')"
        )
    except EngineError as exc:
        raise InputError(f"{path} cannot be read as CSV with a header row: {exc.detail}"
                         ) from exc
    columns = engine.columns(table)
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{path}: column(s) {missing} missing (found {columns}); "
                         "use the file as written by lastknown")


def _check_truth(engine: Engine, path: Path) -> None:
    errors = ErrorCollector()
    codes = ", ".join(sql_literal(c) for c in OUTCOMES_WITH_REJECTED)
    for problem, sql in [
        ("request_row_id appears on more than one line",
         "SELECT id FROM truth WHERE id <> '' GROUP BY id HAVING count(*) > 1"),
        (f"expected_outcome is not one of {'/'.join(OUTCOMES_WITH_REJECTED)}",
         f"SELECT id FROM truth WHERE exp IS NULL OR exp NOT IN ({codes})"),
    ]:
        n, examples = engine.fetchall(
            f"SELECT count(*), list(id ORDER BY id)[1:5] FROM ({sql})")[0]
        if n:
            errors.add(f"{n:,} rows: {problem}; request_row_id e.g. {examples}")
    errors.raise_if_any(InputError, f"{path} does not meet the truth contract (DESIGN.md)")


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _one(engine: Engine, sql: str) -> tuple[Any, ...]:
    rows = engine.fetchall(sql)
    if not rows:
        raise PipelineError("an aggregate query returned no row")
    return rows[0]


def find_record(result_dir: Path, *, record_dir: Path | None = None,
                archive: Path | None = None) -> Path:
    """The internal record of the package in ``result_dir``: ``record_dir``, or found by
    the receipt's batch id in ``archive`` (default: the deployment's archive)."""
    receipt: dict[str, Any] | None
    if record_dir is None:
        receipt = read_receipt(result_dir)
        if archive is None:
            from lastknown.config import load_deployment

            archive = load_deployment(None).archive
        record_dir = record_dir_for(archive, str(receipt["batch_id"]))
        if not record_dir.is_dir():
            raise InputError(f"no internal record of batch {receipt['batch_id']} at "
                             f"{record_dir}: name it with --record DIR")
    else:
        receipt = read_receipt(result_dir) if (result_dir / RECEIPT_JSON).is_file() else None
    record_head = read_record(record_dir).get("ledger_head")
    if receipt is not None and receipt.get("ledger_head") != record_head:
        raise InputError(f"{record_dir} is not the record of {result_dir}: their ledger heads "
                         f"differ ({record_head} vs {receipt.get('ledger_head')})")
    return record_dir


def _load(engine: Engine, result_dir: Path, record_dir: Path,
          truth_csv: Path) -> None:
    for name, required in PACKAGE_COLUMNS.items():
        _load_csv(engine, name.removesuffix(".csv"), result_dir / name, required)
    _load_csv(engine, "outcomes", record_dir / OUTCOMES_CSV, RECORD_COLUMNS)
    _load_csv(engine, "truth_raw", truth_csv, TRUTH_COLUMNS)
    # Truth ids are raw; package ids were neutralised on the way out: compare like with like.
    engine.execute(f"""
        CREATE TABLE truth AS SELECT {neutralise_sql("coalesce(trim(request_row_id), '')")} AS id,
            upper(trim(expected_outcome)) AS exp, trim(expected_reason) AS expected_reason,
            expected_street, expected_unit, expected_city, expected_state, expected_zip,
            trim(expected_tax_year) AS expected_tax_year
        FROM truth_raw""")
    _check_truth(engine, truth_csv)
    engine.execute("""
        CREATE TABLE pkg AS
        SELECT request_row_id AS id, 'M' AS got, NULL AS reasons, 'matched' AS src FROM matched
        UNION ALL SELECT u.request_row_id, coalesce(o.outcome, '?'), NULL, 'unmatched'
            FROM unmatched u LEFT JOIN (
                SELECT request_row_id, min(upper(trim(outcome))) AS outcome FROM outcomes
                WHERE upper(trim(outcome)) NOT IN ('M', 'R') GROUP BY request_row_id
            ) o ON o.request_row_id = u.request_row_id
        UNION ALL SELECT request_row_id, 'R', reason_codes, 'rejected' FROM rejected""")
    engine.execute(f"""
        CREATE TABLE pkg_ids AS SELECT id, arg_min(got, {_PRECEDENCE}) AS got,
            count(DISTINCT src) AS files, bool_or(src = 'rejected') AS rejected,
            list_distinct(flatten(list(
                string_split(replace(coalesce(reasons, ''), ' ', ''), ';')))) AS reasons
        FROM pkg WHERE id IS NOT NULL GROUP BY id""")


def evaluate(result_dir: Path, truth_csv: Path, *, record_dir: Path | None = None,
             archive: Path | None = None) -> dict[str, Any]:
    """Score the package in ``result_dir`` against ``truth_csv``; JSON-able metrics.

    The outcomes of rows not answered come from the batch's internal record
    (:func:`find_record`: ``record_dir``, or through receipt.json and ``archive``).
    """
    record = find_record(result_dir, record_dir=record_dir, archive=archive)
    with make_engine() as engine:  # its progress bar is off: stdout carries the JSON
        _load(engine, result_dir, record, truth_csv)
        return _metrics(engine, record)


def _metrics(engine: Engine, record_dir: Path) -> dict[str, Any]:
    disclosures, correct, correct_ids, wrong, other, unknown, year_agrees = _one(engine, f"""
        WITH d AS (SELECT d.*, t.id AS tid, t.exp, t.expected_tax_year,
                          coalesce({_address_equal()}, false) AS same_address
                   FROM matched d LEFT JOIN truth t ON t.id = d.request_row_id)
        SELECT count(*), count(*) FILTER (exp = 'M' AND same_address),
               count(DISTINCT request_row_id) FILTER (exp = 'M' AND same_address),
               count(*) FILTER (exp = 'M' AND NOT same_address),
               count(*) FILTER (exp <> 'M'), count(*) FILTER (tid IS NULL),
               count(*) FILTER (exp = 'M' AND same_address
                                AND trim(address_tax_year) = expected_tax_year)
        FROM d""")
    expected_m, expected_r, rejected_r, reason_agrees = _one(engine, """
        SELECT count(*) FILTER (exp = 'M'), count(*) FILTER (exp = 'R'),
               count(*) FILTER (exp = 'R' AND p.rejected),
               count(*) FILTER (exp = 'R' AND p.rejected
                                AND list_contains(p.reasons, t.expected_reason))
        FROM truth t LEFT JOIN pkg_ids p ON p.id = t.id""")
    confusion: dict[str, dict[str, int]] = {}
    for exp, got, n in engine.fetchall("""
            SELECT t.exp, coalesce(p.got, 'missing'), count(*) FROM truth t
            LEFT JOIN pkg_ids p ON p.id = t.id GROUP BY ALL ORDER BY ALL"""):
        confusion.setdefault(str(exp), {})[str(got)] = int(n)
    counts = dict(zip(
        ("truth_rows", "truth_rows_without_id", "truth_ids_missing_from_package",
         "package_ids_not_in_truth", "package_rows_without_id", "package_ids_in_several_files",
         "matched_rows", "unmatched_rows", "rejected_rows", "package_ids",
         "unmatched_rows_without_record_outcome"),
        (int(v) for v in _one(engine, """SELECT
            (SELECT count(*) FROM truth), (SELECT count(*) FROM truth WHERE id = ''),
            (SELECT count(*) FROM truth t WHERE t.id <> ''
                AND NOT EXISTS (SELECT 1 FROM pkg_ids p WHERE p.id = t.id)),
            (SELECT count(*) FROM pkg_ids p
                WHERE NOT EXISTS (SELECT 1 FROM truth t WHERE t.id = p.id)),
            (SELECT count(*) FROM pkg WHERE id IS NULL),
            (SELECT count(*) FROM pkg_ids WHERE files > 1),
            (SELECT count(*) FROM matched), (SELECT count(*) FROM unmatched),
            (SELECT count(*) FROM rejected), (SELECT count(*) FROM pkg_ids),
            (SELECT count(*) FROM pkg WHERE src = 'unmatched' AND got = '?')""")),
        strict=True,
    ))
    counts.update(disclosures=int(disclosures), correct_disclosures=int(correct),
                  expected_matches=int(expected_m), expected_rejections=int(expected_r),
                  rejected_as_expected=int(rejected_r),
                  correct_disclosures_with_expected_tax_year=int(year_agrees))
    false_by_kind = {"wrong_person_or_address": int(wrong),
                     "disclosed_when_expected_other": int(other), "not_in_truth": int(unknown)}
    return {
        "precision": _ratio(int(correct), int(disclosures)),
        "recall": _ratio(int(correct_ids), int(expected_m)),
        "false_disclosures": sum(false_by_kind.values()),
        "false_disclosures_by_kind": false_by_kind,
        "rejection_recall": _ratio(int(rejected_r), int(expected_r)),
        "rejection_reason_agreement": _ratio(int(reason_agrees), int(rejected_r)),
        "confusion": confusion,
        "expected_false_matches": _expected_false_matches(record_dir),
        "counts": counts,
    }


def _expected_false_matches(record_dir: Path) -> float | None:
    value = read_record(record_dir).get("expected_false_matches")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{record_dir}: expected_false_matches {value!r} is not a number"
                         ) from exc


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def format_report(metrics: dict[str, Any]) -> str:
    """A short readable summary of :func:`evaluate`'s metrics."""
    c = metrics["counts"]
    kinds = metrics["false_disclosures_by_kind"]
    expected_false = metrics["expected_false_matches"]
    lines = [
        f"Precision {_pct(metrics['precision'])} ({c['correct_disclosures']:,} correct of "
        f"{c['disclosures']:,} disclosures); recall {_pct(metrics['recall'])} of "
        f"{c['expected_matches']:,} expected matches.",
        f"False disclosures: {metrics['false_disclosures']:,} — "
        f"{kinds['wrong_person_or_address']:,} wrong person or address, "
        f"{kinds['disclosed_when_expected_other']:,} disclosed when another outcome was "
        f"expected, {kinds['not_in_truth']:,} not in truth. Model expected "
        f"{'n/a' if expected_false is None else f'{expected_false:.2f}'}.",
        f"Rejections: {_pct(metrics['rejection_recall'])} of {c['expected_rejections']:,} "
        f"expected; reason agrees for {_pct(metrics['rejection_reason_agreement'])}.",
    ]
    gaps = {k: c[k] for k in ("truth_ids_missing_from_package", "package_ids_not_in_truth",
                               "package_rows_without_id", "package_ids_in_several_files",
                               "truth_rows_without_id",
                               "unmatched_rows_without_record_outcome") if c[k]}
    if gaps:
        lines.append("Not aligned: " + ", ".join(f"{k} {v:,}" for k, v in gaps.items()) + ".")
    return "\n".join(lines)
