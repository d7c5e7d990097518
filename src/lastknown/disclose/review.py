"""The disclosure officer's page: everything needed to approve or deny one held batch.

Built from the held batch (:mod:`lastknown.disclose.held`) and the ledger as it is now:
counts by internal outcome and by rejection reason, the policy decision with the caps
used and left, the statutes and certification, the expected false matches, the rows
whose person was disclosed to the same agency recently, whether the same file (by
SHA-256) was answered or held before, and a reproducible random sample of matched rows
with their explanation — the per-comparison weights of the match and of its closest
rival, whose name is masked (``J*** S****``). Never a TIN: the tables' TIN columns are
not selected, and :func:`assert_no_tin` is the last check before the review is returned.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from lastknown.disclose.held import BatchState
from lastknown.disclose.ledger import Ledger, batch_key
from lastknown.disclose.ledger.models import batches
from lastknown.engines.base import Engine
from lastknown.errors import PipelineError
from lastknown.match.model import ADDRESS_COMPARISONS, NAME_COMPARISONS

COMPARISONS = (*NAME_COMPARISONS, *ADDRESS_COMPARISONS)
UNMATCHED = ("N", "A", "U", "P")
#: How many unmatched rows the review lists one by one (all are counted).
UNMATCHED_ROWS_SHOWN = 500
#: The held table of masked names of the explained candidates (written at prepare).
NAMES_TABLE = "review_names"


def mask_sql(column: str) -> str:
    """SQL masking a name: each word's first letter, then one ``*`` per further letter.

    >>> from lastknown.engines import make_engine
    >>> with make_engine() as engine:
    ...     engine.fetchall("SELECT " + mask_sql("'JOHN Q SMITH'"))[0][0]
    'J*** Q S****'
    """
    return (f"array_to_string(list_transform(string_split(trim(coalesce({column}, '')), ' '), "
            "lambda w: left(w, 1) || repeat('*', greatest(length(w) - 1, 0))), ' ')")


def names_sql(records_table: str) -> str:
    """The masked names of every candidate ``match_explanation`` explains (no TIN)."""
    return (f"SELECT e.source_row, e.tin_rank, {mask_sql('r.first_n')} || ' ' || "
            f"{mask_sql('r.surname_n')} AS name_masked FROM match_explanation e "
            f"JOIN {records_table} r ON r.record_id = e.record_id")


@dataclass(frozen=True, kw_only=True)
class BatchReview:
    """One page for the disclosure officer (JSON-ready through :meth:`as_dict`)."""

    batch: dict[str, Any]
    metadata: dict[str, Any]
    outcome_counts: dict[str, int]
    unmatched_outcomes: dict[str, int]
    rejections_by_reason: dict[str, int]
    policy: dict[str, Any]
    expected_false_matches: float
    repeat_disclosures: dict[str, Any]
    same_file_answered: list[dict[str, Any]]
    sample: list[dict[str, Any]] = field(default_factory=list)
    sample_seed: str = ""
    #: The first :data:`UNMATCHED_ROWS_SHOWN` unmatched rows, in request order, with their
    #: internal outcome (the requester only ever reads "not matched").
    unmatched_rows: list[dict[str, Any]] = field(default_factory=list)
    reviewed_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchReview:
        return cls(**data)


def sample_rows(batch_id: str, source_rows: list[int], size: int) -> list[int]:
    """A reproducible random sample: the same batch id always gives the same rows.

    >>> sample_rows("B-1", list(range(100)), 3) == sample_rows(" b-1", list(range(100)), 3)
    True
    """
    seed = int(hashlib.sha256(batch_key(batch_id).encode()).hexdigest()[:16], 16)
    rows = sorted(source_rows)
    return sorted(random.Random(seed).sample(rows, min(size, len(rows))))


def _sample(engine: Engine, batch_id: str, size: int) -> list[dict[str, Any]]:
    matched = [int(r[0]) for r in engine.fetchall(
        "SELECT source_row FROM match_result WHERE outcome = 'M'")]
    chosen = sample_rows(batch_id, matched, size)
    if not chosen:
        return []
    wanted = ", ".join(str(r) for r in chosen)
    rows = engine.fetchall(
        "SELECT m.source_row, m.request_row_id, v.first_name, v.middle_name, v.last_name, "
        "m.match_probability, m.address_tax_year, m.street, m.unit, m.city, m.state, m.zip "
        "FROM match_result m JOIN request_valid v ON v.source_row = m.source_row "
        f"WHERE m.source_row IN ({wanted}) ORDER BY m.source_row")
    explained = _explanations(engine, wanted)
    sample = []
    for (row, row_id, first, middle, last, prob, year, street, unit, city, state, zip5) in rows:
        sample.append({
            "request_row_id": str(row_id),
            "requested_name": " ".join(str(p) for p in (first, middle, last) if p),
            "match_probability": round(float(prob), 6),
            "disclosed_address": {"street": street, "unit": unit, "city": city,
                                  "state": state, "zip": zip5, "tax_year": year},
            "candidates": explained.get(int(row), []),
        })
    return sample


def _unmatched_rows(engine: Engine, limit: int = UNMATCHED_ROWS_SHOWN) -> list[dict[str, Any]]:
    """Request row id, the requested name and the internal outcome of unmatched rows."""
    codes = ", ".join(f"'{o}'" for o in UNMATCHED)
    rows = engine.fetchall(
        "SELECT m.request_row_id, v.first_name, v.middle_name, v.last_name, m.outcome "
        "FROM match_result m JOIN request_valid v ON v.source_row = m.source_row "
        f"WHERE m.outcome IN ({codes}) ORDER BY m.source_row LIMIT {int(limit)}")
    return [{"request_row_id": str(row_id),
             "requested_name": " ".join(str(p) for p in (first, middle, last) if p),
             "outcome": str(outcome)} for row_id, first, middle, last, outcome in rows]


def _explanations(engine: Engine, wanted: str) -> dict[int, list[dict[str, Any]]]:
    if not engine.table_exists("match_explanation"):
        return {}
    has_names = engine.table_exists(NAMES_TABLE)
    name = "n.name_masked" if has_names else "NULL"
    join = (f"LEFT JOIN {NAMES_TABLE} n ON n.source_row = e.source_row "
            "AND n.tin_rank = e.tin_rank") if has_names else ""
    weights = ", ".join(f"e.mw_{c}" for c in COMPARISONS)
    found: dict[int, list[dict[str, Any]]] = {}
    for values in engine.fetchall(
            f"SELECT e.source_row, e.tin_rank, {name}, e.match_weight, e.match_probability, "
            f"e.address_confirmed, {weights} FROM match_explanation e {join} "
            f"WHERE e.source_row IN ({wanted}) ORDER BY e.source_row, e.tin_rank"):
        row, rank, masked, weight, prob, confirmed, *mw = values
        found.setdefault(int(row), []).append({
            "rank": int(rank), "role": "match" if rank == 1 else "rival",
            "name_masked": masked, "match_weight": round(float(weight), 3),
            "probability": round(float(prob), 6), "address_confirmed": bool(confirmed),
            "weights": {c: round(float(w), 3) for c, w in zip(COMPARISONS, mw, strict=True)
                        if w is not None},
        })
    return found


def _same_file(ledger: Ledger, state: BatchState,
               others: list[BatchState]) -> list[dict[str, Any]]:
    with ledger.connect() as conn:
        rows = conn.execute(sa.select(batches.c.batch_id, batches.c.finished_at)
                            .where(batches.c.source_sha256 == state.request_sha256)).all()
    found = [{"batch_id": str(b), "status": "released", "at": at.isoformat()} for b, at in rows
             if batch_key(str(b)) != batch_key(state.batch_id)]
    seen = {batch_key(f["batch_id"]) for f in found}
    found += [{"batch_id": o.batch_id, "status": o.status, "at": o.submitted_at} for o in others
              if o.request_sha256 == state.request_sha256
              and batch_key(o.batch_id) not in seen | {batch_key(state.batch_id)}]
    return found


def _policy(ledger: Ledger, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    from lastknown.disclose.policy import official_rows_in_period

    decision, batch = prepared["decision"], prepared["batch"]
    now = datetime.now(UTC)
    used = official_rows_in_period(ledger, agency=batch["requesting_agency"],
                                   official=batch["requesting_official"],
                                   since=now - timedelta(days=int(decision["period_days"])))
    caps = decision["caps"]
    return {
        "caps": caps, "overrides": decision["overrides"],
        "override_reason": decision["override_reason"],
        "override_approved_by": decision["override_approved_by"],
        "period_days": decision["period_days"],
        "official_rows_in_period_at_prepare": decision["official_rows_in_period"],
        "official_rows_in_period_now": used,
        "remaining_after_release": {
            "max_rows_per_batch": int(caps["max_rows_per_batch"]) - rows,
            "max_rows_per_official_per_period":
                int(caps["max_rows_per_official_per_period"]) - used - rows},
        "statutes_allowed": decision["statutes_allowed"],
        "policy_source": decision["policy_source"], "policy_sha256": decision["policy_sha256"],
        "recent_disclosure_days": decision["recent_disclosure_days"],
        "changed_settings": (decision.get("settings") or {}).get("changed", {}),
    }


def build_review(engine: Engine, ledger: Ledger, *, state: BatchState,
                 prepared: dict[str, Any], others: list[BatchState],
                 sample: int = 20) -> BatchReview:
    """The review of a held batch whose tables are in ``engine`` (:func:`held.load_tables`).

    ``others``: the deployment's other held batches (for the same-file check).
    """
    from lastknown.disclose.publish import _recently_disclosed

    package, batch = prepared["package"], prepared["batch"]
    outcomes = {o: int(package["outcome_counts"].get(o, 0)) for o in ("M", *UNMATCHED)}
    days = int(prepared["decision"]["recent_disclosure_days"])
    recent = _recently_disclosed(engine, ledger, agency=state.requesting_agency, days=days,
                                 now=datetime.now(UTC))
    review = BatchReview(
        batch=state.as_dict(),
        metadata={k: batch[k] for k in ("requesting_agency", "requesting_official",
                                        "official_title", "reason", "authorised_statutes",
                                        "certified", "certification")}
        | {"request_file": prepared["summary"].get("request_file"),
           "received_at": prepared["summary"].get("received_at")},
        outcome_counts=outcomes,
        unmatched_outcomes={o: outcomes.get(o, 0) for o in UNMATCHED},
        rejections_by_reason={str(k): int(v) for k, v in package["reason_counts"].items()},
        policy=_policy(ledger, prepared, state.rows_total),
        expected_false_matches=float(package["expected_false_matches"]),
        repeat_disclosures={"days": days, "rows": len(recent), "request_row_ids": recent},
        same_file_answered=_same_file(ledger, state, others),
        sample=_sample(engine, state.batch_id, sample),
        sample_seed=f"sha256 of the batch id {batch_key(state.batch_id)!r}",
        unmatched_rows=_unmatched_rows(engine),
        reviewed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    assert_no_tin(engine, review.as_dict())
    return review


def assert_no_tin(engine: Engine, data: dict[str, Any]) -> None:
    """PipelineError if any TIN the batch's tables hold appears in ``data`` (a bug)."""
    text = json.dumps(data, default=str)
    sources = [("match_result", "tin")]
    if engine.table_exists("match_explanation"):
        sources.append(("match_explanation", "tin"))
    for table, column in sources:
        for (tin,) in engine.fetchall(f"SELECT DISTINCT {column} FROM {table} "
                                      f"WHERE {column} IS NOT NULL AND length({column}) > 0"):
            tin = str(tin)
            if tin in text or f"{tin[:3]}-{tin[3:5]}-{tin[5:]}" in text:
                raise PipelineError("the review would show a TIN; nothing was shown")


def render_state(state: BatchState) -> str:
    """One line per batch for ``lastknown batches`` (no TIN, no requested name).

    >>> print(render_state(BatchState(batch_id="B-1", status="held", requesting_agency="ICE",
    ...     requesting_official="Dana", submitted_by="alice", submitted_at="2026-11-30T01:00:00",
    ...     rows_total=3, rows_matched=2)))
    B-1  held  3 rows (2 matched)  submitted by alice at 2026-11-30T01:00:00
    """
    line = (f"{state.batch_id}  {state.status}  {state.rows_total:,} rows "
            f"({state.rows_matched:,} matched)  submitted by {state.submitted_by} at "
            f"{state.submitted_at}")
    if state.decided_by:
        line += f"; {state.status} by {state.decided_by} at {state.decided_at}"
    if state.deny_reason:
        line += f": {state.deny_reason}"
    return line


def _weights(candidate: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {w:+.1f}" for name, w in candidate["weights"].items())
    return (f"{candidate['role']} {candidate['name_masked'] or '?'}  weight "
            f"{candidate['match_weight']:.1f}, address "
            f"{'confirmed' if candidate['address_confirmed'] else 'not confirmed'}: {parts}")


def render_review(review: BatchReview) -> str:
    """The review as text for ``lastknown review`` (the JSON has the same content)."""
    s, m, p = review.batch, review.metadata, review.policy
    caps, left = p["caps"], p["remaining_after_release"]
    rejected = ", ".join(f"{k} {v:,}" for k, v in review.rejections_by_reason.items())
    same = "; ".join(f"batch {f['batch_id']} ({f['status']}, {f['at']})"
                     for f in review.same_file_answered)
    overrides = ", ".join(f"{k} = {v}" for k, v in p["overrides"].items())
    lines = [
        f"Batch {s['batch_id']}: {s['status']} — submitted by {s['submitted_by']} at "
        f"{s['submitted_at']}",
        f"Request: {m['request_file']} (sha256 {s['request_sha256']}), received "
        f"{m['received_at']}",
        f"Agency: {m['requesting_agency']}; certified by {m['requesting_official']}, "
        f"{m['official_title']}",
        f"Reason: {m['reason']}",
        f"Statutes: {'; '.join(m['authorised_statutes'])}",
        f"Certification ({'signed' if m['certified'] else 'NOT signed'}): {m['certification']}",
        "Outcomes: " + " · ".join(f"{k} {v:,}" for k, v in review.outcome_counts.items())
        + f" · rejected {s['rows_rejected']:,}",
        f"Rejections by reason: {rejected or 'none'}",
        f"Expected false matches among the {s['rows_matched']:,} to disclose: "
        f"{review.expected_false_matches:.2f}",
        f"Policy ({p['policy_source']}): max_rows_per_batch {caps['max_rows_per_batch']:,} "
        f"({left['max_rows_per_batch']:,} left); max_rows_per_official_per_period "
        f"{caps['max_rows_per_official_per_period']:,} over {p['period_days']} days "
        f"({p['official_rows_in_period_now']:,} used, "
        f"{left['max_rows_per_official_per_period']:,} left after release); overrides: "
        f"{overrides or 'none'}",
        f"Disclosed to the same agency in the last {review.repeat_disclosures['days']} days: "
        f"{review.repeat_disclosures['rows']:,} row(s)"
        + (f" ({', '.join(review.repeat_disclosures['request_row_ids'][:20])})"
           if review.repeat_disclosures["rows"] else ""),
        f"Same file (sha256) answered or held before: {same or 'no'}",
        f"Sample of {len(review.sample)} matched row(s) ({review.sample_seed}):",
    ]
    for row in review.sample:
        a = row["disclosed_address"]
        where = ", ".join(str(a[k]) for k in ("street", "unit", "city", "state", "zip")
                          if a[k])
        lines.append(f"  {row['request_row_id']}  {row['requested_name']} -> {where} "
                     f"({a['tax_year']}), p = {row['match_probability']:.4f}")
        lines += [f"      {_weights(c)}" for c in row["candidates"]]
    unmatched = sum(review.unmatched_outcomes.values())
    if review.unmatched_rows:
        lines.append(f"Unmatched rows ({len(review.unmatched_rows):,} of {unmatched:,} shown; "
                     "internal outcomes, never sent):")
        lines += [f"  {r['request_row_id']}  {r['requested_name']}  {r['outcome']}"
                  for r in review.unmatched_rows]
    return "\n".join(lines)
