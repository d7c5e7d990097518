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

The full test reads list columns of both sides and runs string edits, and at 10M persons
most pairs fail it. So the judge first reads, for every pair, a narrow pre-test
(:func:`names_may_agree_sql`: equal given names, a nickname of one another, an initial, a
given name not known as a name, or a reading that could be swapped), which every pair
whose names can agree passes, and runs the full test only on the pairs that pass; every
other pair cannot agree and reads plainly (``tests/test_candidate_pruning.py`` compares
the candidates with and without the pre-test).

>>> "addr" in block_keys_sql("t", id_col="record_id")
True
"""

from __future__ import annotations

import re
from typing import Any

from lastknown.engines.base import SqlStep
from lastknown.match.decide import address_confirmed_sql
from lastknown.match.model import comparisons, request_level_upper
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


def _positive_levels(model: dict[str, Any], comparison: str) -> list[dict[str, Any]] | None:
    """The levels of ``comparison`` whose weight can be above 0 for some pair, or None when
    every pair can weigh above 0 (no such comparison, or its ELSE level can).

    A level can when m > u; for a request-side level, when its upper bound in
    :data:`~lastknown.match.model.REQUEST_LEVELS` > u, since learning from requests may
    raise m that far; or when it is an exact level with a term-frequency adjustment. A null
    level weighs 0: never "above 0".
    """
    comps = [c for c in model.get("comparisons", []) if c.get("output_column_name")
             == comparison]
    if not comps:
        return None
    levels = []
    for level in comps[0]["comparison_levels"]:
        if level.get("is_null_level"):
            continue
        m, u = level.get("m_probability"), level.get("u_probability")
        upper = request_level_upper(comparison, str(level.get("label_for_charts", "")))
        if upper is not None and isinstance(m, int | float):
            m = max(m, upper)
        positive = (bool(level.get("tf_adjustment_column"))
                    or not isinstance(m, int | float) or not isinstance(u, int | float)
                    or m > u)
        if not positive:
            continue
        if str(level["sql_condition"]).strip().upper() == "ELSE":
            return None
        levels.append(level)
    return levels


def _can_weigh_above_zero(model: dict[str, Any], comparison: str, *,
                          swapped: bool = False) -> str:
    """SQL over ``q``, ``r``, ``ng``: can ``comparison`` weigh above 0 for the pair?

    The model's own conditions of its levels whose weight can be positive
    (:func:`_positive_levels`), with the request's columns read plainly or, with
    ``swapped``, under the swapped given/surname reading (``SWAPPED_COLUMNS``).
    Ignoring level order only keeps more pairs, never fewer. ``TRUE`` when every pair can
    weigh above 0 (then nothing can be pruned). A CASE rather than an OR: the engine tries
    the levels in turn, each only on the pairs no earlier level kept (exact equality first).
    """
    levels = _positive_levels(model, comparison)
    if levels is None:
        return "TRUE"
    conds = []
    for level in levels:
        cond = re.sub(r'"(\w+)_l"',
                      lambda x: f"({request_reading_sql(x[1], swapped=swapped)})",
                      str(level["sql_condition"]))
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


#: For each given-name level the pre-test knows, SQL over ``q`` (the request, read plainly)
#: and ``r`` that holds whenever the level's condition, as
#: :func:`~lastknown.match.model.comparisons` writes it, can: a term each condition requires.
_GIVEN_NAME_PRETESTS: dict[str, str] = {
    "exact": "q.first_n = r.first_n",
    "nickname": "list_contains(r.first_groups, q.first_n) OR list_contains(q.first_groups, "
                "r.first_n)",
    "phonetic": "NOT q.first_known",
    "typo": "NOT q.first_known",
    "initial": "length(q.first_n) = 1 OR length(r.first_n) = 1",
}
#: Holds whenever :data:`~lastknown.match.score.SWAP_SQL` does: its middle term, less the
#: list test (``q.surname_1`` is ``q.surname_tokens[1]``, taken once per request by
#: :data:`_PRETEST_REQUESTS`: read out of the list for every pair it cost more than the test).
_SWAP_PRETEST = "contains(r.surname_n, q.first_n) OR q.surname_1 = r.first_n"
#: The request side of the pre-test's join (``{requests}`` is the requests table).
_PRETEST_REQUESTS = "(SELECT *, surname_tokens[1] AS surname_1 FROM {requests})"


def names_may_agree_sql(model: dict[str, Any]) -> str:
    """SQL over ``q`` (:data:`_PRETEST_REQUESTS`) and ``r``: FALSE only for a pair whose
    names cannot agree (:func:`names_can_agree_sql`) and that cannot read swapped
    (:data:`~lastknown.match.score.SWAP_SQL`), read off a few narrow columns; ``TRUE`` when
    that cannot be said of ``model``.

    Every given-name level of ``model`` that can weigh above 0 must be one this pre-test
    knows, spelt as this version spells it; the pair must then pass a term one of those
    levels' conditions requires (:data:`_GIVEN_NAME_PRETESTS`) or the swap's
    (:data:`_SWAP_PRETEST`). NULL counts as passing. The judge runs the full tests, with
    their list columns, only on the pairs that pass: at 10M persons ~85 % of candidate
    pairs are neighbours or namesakes whose given names differ, and a Census-known given
    name can then agree on no level.

    >>> names_may_agree_sql({"comparisons": []})  # no given-name comparison: all may agree
    'TRUE'
    """
    levels = _positive_levels(model, "first_name")
    if levels is None:
        return "TRUE"
    spelt = {str(level.get("label_for_charts")): level["sql_condition"] for comp in comparisons()
             if comp["output_column_name"] == "first_name" for level in comp["comparison_levels"]}
    terms: list[str] = []
    for level in levels:
        label = str(level.get("label_for_charts", ""))
        if label not in _GIVEN_NAME_PRETESTS or level["sql_condition"] != spelt.get(label):
            return "TRUE"
        terms.append(_GIVEN_NAME_PRETESTS[label])
    return f"coalesce({' OR '.join([*dict.fromkeys(terms), _SWAP_PRETEST])}, true)"


#: Besides the pair and how it was found, what the pruning join reads of each pair that the
#: pair steps would otherwise join the request and record tables again for.
JUDGED_COLUMNS: tuple[str, ...] = ("tin", "swapped", "confirms", "disclosable")
_KEPT: tuple[str, ...] = ("source_row", "record_id", "hits", "by_address", *JUDGED_COLUMNS)
#: What the judge's first pass writes of each pair that ``out`` keeps: all but ``swapped``.
_JUDGED: tuple[str, ...] = tuple(c for c in _KEPT[1:] if c != "swapped")


def _kept_sql(pair: str) -> list[str]:
    """:data:`_KEPT` of a judged pair ``pair`` joined to its full test ``n`` (if it had one)."""
    return [f"{pair}.{c}" if c != "swapped" else
            "CASE WHEN n.source_row IS NULL THEN false ELSE n.swapped END AS swapped"
            for c in _KEPT]


def candidate_steps(*, requests: str, records: str, key_table: str, size_table: str,
                    block_limit: int, comparison_budget: int,
                    out: str = "lk_candidates", can_agree: str | None = None,
                    may_agree: str = "TRUE") -> list[SqlStep]:
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
    ``may_agree`` (from :func:`names_may_agree_sql`) spares the full name test the pairs
    it fails; ``TRUE`` runs it on every pair (the same candidates, slower).
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
            # records instead (~5 GB at 15M records) and spills (1.6-2 x slower at 10M).
            # Every pair: its TIN, the address confirmation, and the narrow name pre-test
            SqlStep(sql=f"""
                SELECT c.source_row, c.record_id, c.hits, c.by_address, r.tin,
                       {address_confirmed_sql('q', 'r')} AS confirms, r.disclosable,
                       {may_agree} AS may_agree
                FROM {out}_all AS c
                JOIN {records} AS r ON r.record_id = c.record_id
                JOIN {_PRETEST_REQUESTS.format(requests=requests)} AS q
                  ON q.source_row = c.source_row
            """, output_table_name=f"{out}_judged", joins_as_written=True),
            # the pairs the pre-test keeps: the full name test and the swapped reading, with
            # their list columns; every other pair cannot agree and reads plainly
            SqlStep(sql=f"""
                SELECT j.source_row, j.record_id, j.tin, {can_agree} AS can_agree,
                       {SWAP_SQL} AS swapped
                FROM (SELECT source_row, record_id, tin FROM {out}_judged WHERE may_agree) AS j
                JOIN {records} AS r ON r.record_id = j.record_id
                JOIN {requests_with_swapped_groups(requests)} ON q.source_row = j.source_row
            """, output_table_name=f"{out}_named", joins_as_written=True),
            # keep every record of a TIN whose names can agree on one of them, and every
            # record confirming the supplied address (the residents there); aggregates and
            # joins, not windows: at 10M persons the judged table has ~23M rows per 250k
            # requests
            SqlStep(sql=f"SELECT DISTINCT source_row, tin FROM {out}_named WHERE can_agree",
                    output_table_name=f"{out}_agree"),
            # the swapped reading of a kept pair: from the full test where it ran, FALSE
            # where the pre-test failed (SWAP_SQL cannot hold there)
            SqlStep(sql=f"""
                SELECT {", ".join(_kept_sql("k"))}
                FROM (SELECT j.* FROM {out}_judged AS j
                      LEFT JOIN {out}_agree AS a ON a.source_row = j.source_row AND a.tin = j.tin
                      WHERE j.confirms OR a.source_row IS NOT NULL) AS k
                LEFT JOIN {out}_named AS n
                  ON n.source_row = k.source_row AND n.record_id = k.record_id
            """, output_table_name=f"{out}_kept_tins"),
            # of a request left with nothing, keep its best-blocked pair (same order as the
            # budget), so its N still says a taxpayer was found whose name differs
            SqlStep(sql=f"""
                SELECT {", ".join(_KEPT)} FROM {out}_kept_tins
                UNION ALL
                SELECT {", ".join(_kept_sql("k"))} FROM (
                    SELECT source_row, {", ".join(f"best.{c} AS {c}" for c in _JUDGED)} FROM (
                        SELECT source_row, arg_min({{{", ".join(f"'{c}': {c}" for c in _JUDGED)}}},
                                                   [1 - CAST(by_address AS INTEGER), -hits,
                                                    record_id]) AS best
                        FROM {out}_judged
                        WHERE source_row NOT IN (SELECT source_row FROM {out}_kept_tins)
                        GROUP BY source_row)) AS k
                LEFT JOIN {out}_named AS n
                  ON n.source_row = k.source_row AND n.record_id = k.record_id
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
