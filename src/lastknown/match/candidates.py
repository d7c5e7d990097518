"""Candidate search (blocking): which master records each request is compared with.

A request can only be disclosed if its previous address is one the TIN filed
from, so the address rules find every confirmable candidate; the name rule finds
people whose address does not confirm (outcome ``U``) and rivals (outcome ``A``).

Rules (each a string key built identically on both sides):

* ``addr``   zip5 | house number
* ``street`` state | house number | first 4 letters of the street name (zip typos, moves of zip)
* ``name``   state | surname token | first initial — and, on the request side only,
  the same with given and surname swapped
* a supplied TIN replaces the search: only that TIN's records are candidates
  (it narrows the search; name agreement and address confirmation still decide)

A key shared by more than ``block_limit`` master records is skipped for that
request and counted; each request keeps at most ``comparison_budget`` records,
address-rule hits first.

Pruning (before scoring, when the model is given): a request's candidate TIN can
change its outcome only if its names can agree — the decision ranks TINs whose
names agree first, counts only those as rivals, and answers ``N`` when the best
TIN's names do not agree. Names agree on a record only if the given-name and the
surname comparisons each weigh above 0, i.e. fall in a level of the model with
m > u, or whose m learning from requests may raise above u (its upper bound in
``REQUEST_LEVELS``; given name: exact, nickname, phonetic, typo, initial — never
"other name", capped at u; surname: exact, shared token, phonetic, similar) under the
reading scoring uses
(given/surname swapped or not). So every candidate record of a TIN none of whose
candidate records passes that test is dropped before Splink, whichever rule found
it (at 10M persons most address-rule hits are neighbours with other names), unless
the record confirms the supplied address (the decision weighs a confirmed TIN against
every resident of that address). A request left with no candidate keeps its
best-blocked one, so its ``N`` still says a taxpayer was found whose name differs.
Pruning never changes an outcome, a TIN or a disclosed address; it may change an ``N``
row's probability and detail wording and the second TIN of an explanation
(``tests/test_candidate_pruning.py`` compares a synthetic run with and without it).

>>> "addr" in block_keys_sql("t", id_col="record_id")
True
"""

from __future__ import annotations

import re
from typing import Any

from lastknown.engines.base import SqlStep
from lastknown.match.decide import address_confirmed_sql
from lastknown.match.model import request_level_upper
from lastknown.match.score import SWAP_SQL, request_reading_sql, requests_with_swapped_groups

BLOCK_RULES: tuple[str, ...] = ("addr", "street", "name")


def block_keys_sql(table: str, *, id_col: str, request_side: bool = False) -> str:
    """``(id, rule, key)`` rows for every blocking key of every row of ``table``."""
    swapped = ""
    if request_side:
        swapped = f"""
        UNION ALL
        SELECT {id_col}, 'name', state_n || '|' || first_n || '|' || left(surname_tokens[1], 1)
        FROM {table}
        WHERE state_n IS NOT NULL AND first_n IS NOT NULL AND len(surname_tokens) > 0"""
    return f"""
        SELECT {id_col}, 'addr' AS rule, zip5 || '|' || house_number AS key
        FROM {table} WHERE zip5 IS NOT NULL AND house_number IS NOT NULL
        UNION ALL
        SELECT {id_col}, 'street',
               state_n || '|' || house_number || '|' || left(replace(street_name, ' ', ''), 4)
        FROM {table}
        WHERE state_n IS NOT NULL AND house_number IS NOT NULL AND street_name IS NOT NULL
        UNION ALL
        SELECT {id_col}, 'name', state_n || '|' || tok || '|' || first_initial
        FROM (SELECT {id_col}, state_n, first_initial, unnest(surname_tokens) AS tok
              FROM {table}) WHERE state_n IS NOT NULL AND first_initial IS NOT NULL
        {swapped}
    """


def index_block_steps(*, records: str, key_table: str, size_table: str) -> list[SqlStep]:
    """Index-time: every record's keys, and how many records share each key."""
    return [
        SqlStep(sql=f"SELECT DISTINCT * FROM ({block_keys_sql(records, id_col='record_id')}) "
                    "ORDER BY rule, key", output_table_name=key_table),
        SqlStep(sql=f"SELECT rule, key, count(*) AS n FROM {key_table} GROUP BY rule, key",
                output_table_name=size_table),
    ]


def _can_weigh_above_zero(model: dict[str, Any], comparison: str, *,
                          swapped: bool = False) -> str:
    """SQL over ``q``, ``r``, ``ng``: can ``comparison`` weigh above 0 for the pair?

    The model's own level conditions whose weight can be positive (m > u; for a
    request-side level, its upper bound in :data:`~lastknown.match.model.REQUEST_LEVELS`
    > u, since learning from requests may raise m that far; or an exact level with a
    term-frequency adjustment), with the request's columns read plainly or,
    with ``swapped``, under the swapped given/surname reading (``SWAPPED_COLUMNS``).
    Ignoring level order only keeps more pairs, never fewer; a null level weighs 0.
    ``TRUE`` when the model has no such comparison or its ELSE level can weigh above 0
    (then nothing can be pruned). A CASE rather than an OR: the engine tries the levels
    in turn, each only on the pairs no earlier level kept (exact equality first).
    """
    comps = [c for c in model.get("comparisons", []) if c.get("output_column_name")
             == comparison]
    if not comps:
        return "TRUE"
    conds = []
    for level in comps[0]["comparison_levels"]:
        if level.get("is_null_level"):
            continue  # weight 0: never "above 0"
        m, u = level.get("m_probability"), level.get("u_probability")
        upper = request_level_upper(comparison, str(level.get("label_for_charts", "")))
        if upper is not None and isinstance(m, int | float):
            m = max(m, upper)
        positive = (bool(level.get("tf_adjustment_column"))
                    or not isinstance(m, int | float) or not isinstance(u, int | float)
                    or m > u)
        if not positive:
            continue
        cond = str(level["sql_condition"])
        if cond.strip().upper() == "ELSE":
            return "TRUE"
        cond = re.sub(r'"(\w+)_l"',
                      lambda x: f"({request_reading_sql(x[1], swapped=swapped)})", cond)
        cond = re.sub(r'"(\w+)_r"', lambda x: f"r.{x[1]}", cond)
        conds.append(f"WHEN {cond} THEN true")
    return f"(CASE {' '.join(conds)} ELSE false END)" if conds else "FALSE"


def names_can_agree_sql(model: dict[str, Any]) -> str:
    """SQL over ``q``, ``r``, ``ng``: can given name *and* surname each weigh above 0?

    Necessary for the decision's "names agree" on a record (docs/MATCHING.md), read as
    scoring reads the pair: swapped when :data:`SWAP_SQL` holds (decided once per pair),
    plainly otherwise.
    """
    def both(swapped: bool) -> str:
        # CASE, not AND: the surname test (Jaro-Winkler) runs only on the pairs whose
        # given names pass
        return (f"CASE WHEN {_can_weigh_above_zero(model, 'first_name', swapped=swapped)} "
                f"THEN {_can_weigh_above_zero(model, 'surname', swapped=swapped)} ELSE false END")

    return f"(CASE WHEN {SWAP_SQL} THEN {both(True)} ELSE {both(False)} END)"


#: Besides the pair and how it was found, what the pruning join reads of each pair that the
#: pair steps would otherwise join the request and record tables again for.
JUDGED_COLUMNS: tuple[str, ...] = ("tin", "swapped", "confirms", "disclosable")
_KEPT: tuple[str, ...] = ("source_row", "record_id", "hits", "by_address", *JUDGED_COLUMNS)


def candidate_steps(*, requests: str, records: str, key_table: str, size_table: str,
                    block_limit: int, comparison_budget: int,
                    out: str = "lk_candidates", can_agree: str | None = None) -> list[SqlStep]:
    """Match-time: ``out(source_row, record_id, hits, by_address)`` within the limits.

    Also leaves ``{out}_oversized(source_row, rule)`` (keys skipped as too common) and
    ``{out}_capped(source_row)`` (requests whose candidates were cut to the budget).
    With ``can_agree`` (from :func:`names_can_agree_sql`), name-rule records of TINs
    whose names cannot agree are pruned first (module docstring) and ``{out}_pruned``
    holds ``(source_row, pairs)`` counts of what was dropped; the budget applies after.
    ``out`` then also carries what the pruning join read anyway (:data:`JUDGED_COLUMNS`:
    the record's TIN, :data:`~lastknown.match.score.SWAP_SQL`, the address confirmation
    and whether the record may be disclosed), so that the pair and decision steps need not
    join every pair to the request and record tables again (``pair_steps(judged=True)``).
    """
    steps = [
        SqlStep(sql=f"""
            SELECT k.source_row, k.rule, k.key, coalesce(s.n, 0) AS n
            FROM (SELECT DISTINCT * FROM
                  ({block_keys_sql(requests, id_col='source_row', request_side=True)})) AS k
            LEFT JOIN {size_table} AS s ON s.rule = k.rule AND s.key = k.key
            WHERE k.source_row IN (SELECT source_row FROM {requests} WHERE tin IS NULL)
        """, output_table_name=f"{out}_keys"),
        SqlStep(sql=f"SELECT DISTINCT source_row, rule FROM {out}_keys WHERE n > {block_limit}",
                output_table_name=f"{out}_oversized"),
        SqlStep(sql=f"""
            SELECT k.source_row, b.record_id, count(*) AS hits,
                   bool_or(k.rule <> 'name') AS by_address
            FROM {out}_keys AS k
            JOIN {key_table} AS b ON b.rule = k.rule AND b.key = k.key
            WHERE k.n BETWEEN 1 AND {block_limit}
            GROUP BY k.source_row, b.record_id
            UNION ALL
            SELECT q.source_row, r.record_id, 1 AS hits, true AS by_address
            FROM {requests} AS q JOIN {records} AS r ON r.tin = q.tin
            WHERE q.tin IS NOT NULL
        """, output_table_name=f"{out}_all"),
    ]
    kept = f"{out}_all"
    if can_agree is not None:
        kept = f"{out}_kept"
        steps += [
            # joins as written: the narrow pairs are the build side and the wide records
            # stream past them; an optimiser that joins the requests first builds on the
            # records instead (~5 GB at 15M records) and spills (1.6-2 x slower at 10M)
            SqlStep(sql=f"""
                SELECT c.source_row, c.record_id, c.hits, c.by_address, r.tin,
                       {can_agree} AS can_agree,
                       {address_confirmed_sql('q', 'r')} AS confirms,
                       {SWAP_SQL} AS swapped, r.disclosable
                FROM {out}_all AS c
                JOIN {records} AS r ON r.record_id = c.record_id
                JOIN {requests_with_swapped_groups(requests)} ON q.source_row = c.source_row
            """, output_table_name=f"{out}_judged", joins_as_written=True),
            # keep every record of a TIN whose names can agree on one of them, and every
            # record confirming the supplied address (the residents there); aggregates and
            # joins, not windows: at 10M persons this table has ~23M rows per 250k requests
            SqlStep(sql=f"SELECT DISTINCT source_row, tin FROM {out}_judged WHERE can_agree",
                    output_table_name=f"{out}_agree"),
            SqlStep(sql=f"""
                SELECT {", ".join(f"j.{c}" for c in _KEPT)}
                FROM {out}_judged AS j
                LEFT JOIN {out}_agree AS a ON a.source_row = j.source_row AND a.tin = j.tin
                WHERE j.confirms OR a.source_row IS NOT NULL
            """, output_table_name=f"{out}_kept_tins"),
            # of a request left with nothing, keep its best-blocked pair (same order as the
            # budget), so its N still says a taxpayer was found whose name differs
            SqlStep(sql=f"""
                SELECT {", ".join(_KEPT)} FROM {out}_kept_tins
                UNION ALL
                SELECT source_row, {", ".join(f"best.{c}" for c in _KEPT[1:])} FROM (
                    SELECT source_row, arg_min({{{", ".join(f"'{c}': {c}" for c in _KEPT[1:])}}},
                                               [1 - CAST(by_address AS INTEGER), -hits,
                                                record_id]) AS best
                    FROM {out}_judged
                    WHERE source_row NOT IN (SELECT source_row FROM {out}_kept_tins)
                    GROUP BY source_row)
            """, output_table_name=kept),
            SqlStep(sql=f"""
                SELECT j.source_row, j.n - coalesce(k.n, 0) AS pairs
                FROM (SELECT source_row, count(*) AS n FROM {out}_judged GROUP BY 1) AS j
                LEFT JOIN (SELECT source_row, count(*) AS n FROM {kept} GROUP BY 1) AS k
                  ON k.source_row = j.source_row
                WHERE j.n > coalesce(k.n, 0)
            """, output_table_name=f"{out}_pruned"),
        ]
    columns = ", ".join(_KEPT if can_agree is not None else _KEPT[:4])
    return [
        *steps,
        SqlStep(sql=f"""
            SELECT source_row FROM {kept} GROUP BY source_row
            HAVING count(*) > {comparison_budget}
        """, output_table_name=f"{out}_capped"),
        SqlStep(sql=f"""
            SELECT {columns} FROM (
                SELECT *, row_number() OVER (PARTITION BY source_row
                    ORDER BY by_address DESC, hits DESC, record_id) AS rank_in_request
                FROM {kept})
            WHERE rank_in_request <= {comparison_budget}
        """, output_table_name=out),
    ]
