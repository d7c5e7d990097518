"""``match_requests``: request_valid → match_result (+ match_explanation).

    normalise requests ─▶ candidate search (chunked) ─▶ Splink scoring ─▶ decision ─▶ retrieval

Everything stays in the engine; Python loops over chunks of requests only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from lastknown.engines.base import Engine, SqlStep
from lastknown.errors import PipelineError
from lastknown.match.candidates import (
    candidate_steps,
    names_can_agree_sql,
    names_may_agree_sql,
)
from lastknown.match.config import MatchConfig
from lastknown.match.decide import outcome_steps
from lastknown.match.index import IndexInfo, normalised_people_sql
from lastknown.match.learn import Learned, LevelCounts, learn
from lastknown.match.model import load_model
from lastknown.match.outcomes import OUTCOMES
from lastknown.match.progress import chunk_progress
from lastknown.match.score import pair_steps, score_pairs

log = logging.getLogger("lastknown.match")



@dataclass(frozen=True, kw_only=True)
class MatchSummary:
    """What matching did: model, thresholds, counts per outcome, warnings, timings."""

    model_id: str
    thresholds: dict[str, float]
    outcome_counts: dict[str, int]
    expected_false_matches: float
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    #: candidate pairs scored by Splink and pairs pruned before scoring
    pairs: dict[str, int] = field(default_factory=dict)
    #: what the batch taught about the requester's errors (``match/learn.py``), if learning ran
    learned: Learned | None = None
    #: the learned estimates for the internal record and the ledger's batch record
    estimates: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Learning:
    """Learn the requester's errors from this batch, on top of what earlier ones taught."""

    batch_id: str
    pooled: LevelCounts = field(default_factory=LevelCounts)


#: A request's given name filed by at least this many master records is a *known* given
#: name (as a Census name is): close to a filer's name, it is another person, not a typo.
KNOWN_NAME_RECORDS = 3


def request_steps(*, valid_table: str, index: IndexInfo | None = None) -> list[SqlStep]:
    """Normalise the valid requests with the same rules as the master; with ``index``,
    a given name the master files often counts as known (``first_known``)."""
    people = normalised_people_sql(valid_table, keep=["source_row", "request_row_id", "tin",
                                                      "tax_years"], suffix=None)
    if index is None:
        return [SqlStep(sql=people, output_table_name="lk_requests")]
    return [
        SqlStep(sql=people, output_table_name="lk_requests_people"),
        SqlStep(sql=f"""
            SELECT q.* REPLACE (q.first_known OR coalesce(
                       t.tf_first_n * {index.record_count} >= {KNOWN_NAME_RECORDS - 0.5}, false)
                       AS first_known)
            FROM lk_requests_people AS q
            LEFT JOIN {index.table('tf_first_n')} AS t ON t.first_n = q.first_n
        """, output_table_name="lk_requests"),
    ]


def match_requests(engine: Engine, *, index: IndexInfo, config: MatchConfig,
                   valid_table: str = "request_valid", progress: bool = False,
                   prune: bool = True, learning: Learning | None = None) -> MatchSummary:
    """Match every row of ``valid_table``; create ``match_result`` and ``match_explanation``.

    ``prune=False`` scores every blocked candidate (the pruning in ``candidates.py`` never
    changes an outcome; tests compare both). With ``learning``, the requester's error
    rates are estimated from this batch's pairs (pooled with ``learning.pooled``) and the
    pairs re-weighed before the decision (``match/learn.py``); without it, the index's
    model decides alone.

    >>> summary = match_requests(engine, index=info, config=MatchConfig())  # doctest: +SKIP
    >>> summary.outcome_counts["M"]  # doctest: +SKIP
    1873
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    model = load_model(index.model_path)
    engine.run_steps(request_steps(valid_table=valid_table, index=index))
    timings["normalise"] = round(time.perf_counter() - start, 3)

    rows = engine.fetchall("SELECT min(source_row), max(source_row), count(*) FROM lk_requests")
    low, high, total = rows[0]
    engine.execute("CREATE OR REPLACE TABLE lk_scored (" + ", ".join(
        f"{c} {t}" for c, t in _scored_columns().items()) + ")")
    engine.execute("CREATE OR REPLACE TABLE lk_oversized (source_row BIGINT, rule VARCHAR)")
    engine.execute("CREATE OR REPLACE TABLE lk_capped (source_row BIGINT)")
    engine.execute("CREATE OR REPLACE TABLE lk_pruned (source_row BIGINT, pairs BIGINT)")
    can_agree = names_can_agree_sql(model) if prune else None
    may_agree = names_may_agree_sql(model) if prune else "TRUE"
    tf_tables = {c: index.table(f"tf_{c}") for c in ("first_n", "surname_n")}
    search = score = 0.0
    if total:
        n_chunks = max(1, -(-int(total) // config.chunk_size))
        width = -(-(int(high) - int(low) + 1) // n_chunks)
        with chunk_progress(show=progress, description="matching",
                            total=n_chunks) as advance:
            for chunk in range(n_chunks):
                search, score = _match_chunk(
                    engine, index=index, config=config, model=model, tf_tables=tf_tables,
                    can_agree=can_agree, may_agree=may_agree,
                    bounds=(int(low) + chunk * width, int(low) + (chunk + 1) * width),
                    times=(search, score))
                log.info("matched chunk %d/%d", chunk + 1, n_chunks)
                advance()
    timings["candidate_search"] = round(search, 3)
    timings["scoring"] = round(score, 3)
    t2 = time.perf_counter()
    # lk_scored already says whether each pair's record confirms the address (lk_pairs):
    # learning and the decision read it as it is
    learned = None
    if learning is not None:
        learned = learn(engine, model, table="lk_scored", pooled=learning.pooled,
                        batch_id=learning.batch_id)
        timings["learning"] = round(time.perf_counter() - t2, 3)
        log.info("learned the requester's error rates from %s pairs (%d earlier batches "
                 "pooled): %s", learned.pairs, learned.batches_pooled, learned.estimates_id)
    engine.run_steps(outcome_steps(config=config, requests="lk_requests",
                                   returns=index.table("idx_return"), scored="lk_scored",
                                   deltas=learned.deltas if learned else None))
    timings["decision"] = round(time.perf_counter() - t2, 3)
    summary = _summarise(engine, index=index, config=config, timings=timings, total=int(total))
    if learned is None:
        return summary
    return replace(summary, learned=learned, estimates=learned.summary(model))


def _match_chunk(engine: Engine, *, index: IndexInfo, config: MatchConfig, model: dict[str, Any],
                 tf_tables: dict[str, str], can_agree: str | None, may_agree: str,
                 bounds: tuple[int, int],
                 times: tuple[float, float]) -> tuple[float, float]:
    """Search and score the requests with ``lo <= source_row < hi``; add to the timings."""
    lo, hi = bounds
    search, score = times
    t0 = time.perf_counter()
    engine.run_steps([SqlStep(
        sql=f"SELECT * FROM lk_requests WHERE source_row >= {lo} AND source_row < {hi}",
        output_table_name="lk_requests_chunk")])
    engine.run_steps(candidate_steps(
        requests="lk_requests_chunk", records=index.table("idx_record"),
        key_table=index.table("idx_block_key"), size_table=index.table("idx_block_size"),
        block_limit=config.block_limit, comparison_budget=config.comparison_budget,
        can_agree=can_agree, may_agree=may_agree))
    if can_agree is not None:
        engine.execute("INSERT INTO lk_pruned SELECT * FROM lk_candidates_pruned")
    engine.execute("INSERT INTO lk_oversized SELECT * FROM lk_candidates_oversized")
    engine.execute("INSERT INTO lk_capped SELECT * FROM lk_candidates_capped")
    t1 = time.perf_counter()
    search += t1 - t0
    if engine.count("lk_candidates") == 0:
        return search, score
    engine.run_steps(pair_steps(requests="lk_requests_chunk", records=index.table("idx_record"),
                                candidates="lk_candidates", judged=can_agree is not None))
    score_pairs(engine, model=model, prior=config.prior_match_probability,
                tf_tables=tf_tables, out="lk_scored_chunk")
    # the columns named (not INSERT … BY NAME): portable SQL, same rows
    scored = list(_scored_columns())
    engine.execute(f"""
        INSERT INTO lk_scored ({", ".join(scored)})
        SELECT {", ".join(f"p.{c}" for c in _PAIR_COLUMNS)},
               {", ".join(f"s.{c}" for c in scored[len(_PAIR_COLUMNS):])}
        FROM lk_scored_chunk AS s JOIN lk_pairs AS p ON p.unique_id = s.unique_id
    """)
    return search, score + time.perf_counter() - t1


#: lk_scored's first columns, from ``lk_pairs`` (with their types): the pair, whether the
#: record confirms the supplied address and whether it may be disclosed.
_PAIR_COLUMNS: dict[str, str] = {
    "source_row": "BIGINT", "record_id": "BIGINT", "tin": "VARCHAR", "swapped": "BOOLEAN",
    "address_confirmed": "BOOLEAN", "disclosable": "BOOLEAN"}


def _scored_columns() -> dict[str, str]:
    """lk_scored's columns and types: the pair (:data:`_PAIR_COLUMNS`), then what scoring
    adds (``score_pairs``)."""
    names = _comparison_names()
    return {**_PAIR_COLUMNS, "match_weight": "DOUBLE", "name_weight": "DOUBLE",
            **{f"mw_{c}": "DOUBLE" for c in names}, "household_weight": "DOUBLE",
            **{f"gamma_{c}": "INTEGER" for c in names}}


def _comparison_names() -> list[str]:
    from lastknown.match.model import ADDRESS_COMPARISONS, NAME_COMPARISONS

    return [*NAME_COMPARISONS, *ADDRESS_COMPARISONS]


def _summarise(engine: Engine, *, index: IndexInfo, config: MatchConfig,
               timings: dict[str, float], total: int) -> MatchSummary:
    counts = {o: 0 for o in OUTCOMES}
    for outcome, n in engine.fetchall("SELECT outcome, count(*) FROM match_result GROUP BY 1"):
        counts[str(outcome)] = int(n)
    if sum(counts.values()) != total:
        raise PipelineError(f"match_result has {sum(counts.values())} rows for {total} "
                            "valid requests; every valid row must get exactly one outcome")
    expected = engine.fetchall(
        "SELECT coalesce(sum(1 - match_probability), 0) FROM match_result WHERE outcome = 'M'")
    warnings: list[str] = []
    for rule, n in engine.fetchall(
            "SELECT rule, count(DISTINCT source_row) FROM lk_oversized GROUP BY 1 ORDER BY 1"):
        warnings.append(f"{n} request row(s): the `{rule}` blocking key is shared by more than "
                        f"{config.block_limit} master records and was not searched")
    capped = engine.count("lk_capped")
    if capped:
        warnings.append(f"{capped} request row(s) had more than {config.comparison_budget} "
                        "candidates; only the best-blocked ones were compared")
    for w in warnings:
        log.warning(w)
    pairs = {"scored": engine.count("lk_scored"),
             "pruned": int(engine.fetchall("SELECT coalesce(sum(pairs), 0) FROM lk_pruned")[0][0])}
    log.info("scored %d candidate pairs; pruned %d whose names cannot agree",
             pairs["scored"], pairs["pruned"])
    thresholds: dict[str, Any] = config.thresholds()
    return MatchSummary(model_id=index.model_id, thresholds=thresholds, outcome_counts=counts,
                        expected_false_matches=float(expected[0][0]), warnings=tuple(warnings),
                        timings=timings, pairs=pairs)
