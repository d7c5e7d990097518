"""Scoring: each candidate pair through the trained Splink model (``predict_between``).

The pairs to score are decided here, in SQL, not by Splink's blocking: the left
side is one row per (request, candidate record) pair carrying the request's
normalised fields, the right side the candidate records, and the only blocking
rule joins a pair to its record. Given and surname are swapped on a pair's left
side when that is the reading under which the names agree (``name_swapped``).
"""

from __future__ import annotations

from typing import Any

from lastknown.engines.base import Engine, SqlStep
from lastknown.errors import PipelineError
from lastknown.match.decide import address_confirmed_sql
from lastknown.match.model import (
    ADDRESS_COMPARISONS,
    COMPARE_COLUMNS,
    NAME_COMPARISONS,
    household_weight_sql,
    quiet_splink,
)
from lastknown.normalize.nicknames import NICKNAME_TABLE
from lastknown.normalize.phonetic import GIVEN_NAME_TABLE

#: Given and surname swapped: the request's given name is one of the record's surname
#: tokens, or its (first) surname token is the record's given name — so one half may
#: carry a typo (``ZIOIKOWSKI JUDITH`` for JUDITH ZIOLKOWSKI) — and the request's surname
#: shares no token with the record's surname. (``contains`` on ``surname_n``, the tokens
#: joined by spaces, is implied by the token test and far cheaper: in a CASE condition
#: the engine then skips the list tests on almost every pair.)
SWAP_SQL = """(q.first_n IS NOT NULL AND len(q.surname_tokens) > 0
    AND ((contains(r.surname_n, q.first_n) AND list_contains(r.surname_tokens, q.first_n))
         OR q.surname_tokens[1] = r.first_n)
    AND NOT list_has_any(q.surname_tokens, r.surname_tokens))"""

#: The request's name columns under the swapped reading (``ng``: the nickname groups of
#: the request's first surname token, ``gs`` its Census given-name row, both joined by
#: :func:`swapped_groups_join`). A swapped given name is known when the Census lists it
#: (a misspelt one, ``JACLWIGA`` for JADWIGA, gets the typo level as in the plain
#: reading); its phonetic key is the surname key (which also drops a silent R), so a
#: swapped reading agrees phonetically a little less often.
SWAPPED_COLUMNS: dict[str, str] = {
    "first_n": "q.surname_tokens[1]",
    "first_initial": "left(q.surname_tokens[1], 1)",
    "first_groups": "coalesce(ng.groups, [q.surname_tokens[1]])",
    "first_ph": "q.surname_ph[1]",
    "first_sex": "gs.sex",
    "first_known": "gs.name IS NOT NULL",
    "surname_tokens": "list_concat([q.first_n], q.surname_tokens[2:])",
    "surname_n": "array_to_string(list_concat([q.first_n], q.surname_tokens[2:]), ' ')",
    "surname_ph": "list_concat([q.first_ph], q.surname_ph[2:])",
}


_NICKNAME_GROUPS = f"""(SELECT name, list(DISTINCT grp ORDER BY grp) AS groups
                       FROM {NICKNAME_TABLE} GROUP BY name)"""


def swapped_groups_join(swapped: str) -> str:
    """LEFT JOIN ``ng`` (nickname groups) and ``gs`` (Census given-name row) of the first
    surname token, when ``swapped``."""
    return f"""LEFT JOIN {_NICKNAME_GROUPS} AS ng
              ON {swapped} AND ng.name = q.surname_tokens[1]
              LEFT JOIN {GIVEN_NAME_TABLE} AS gs
              ON {swapped} AND gs.name = q.surname_tokens[1]"""


def requests_with_swapped_groups(requests: str) -> str:
    """``requests`` as ``q`` with ``ng`` and ``gs`` of its first surname token, whether or
    not a pair swaps: a join tree (``JOIN <this> ON q.… = …``) joined once per request, not
    once per pair. The same as :func:`swapped_groups_join` wherever ``ng`` and ``gs`` are
    read, because only the swapped reading (``SWAPPED_COLUMNS``) reads them (both are one
    row per name, so no pair is repeated)."""
    return f"""({requests} AS q
              LEFT JOIN {_NICKNAME_GROUPS} AS ng ON ng.name = q.surname_tokens[1]
              LEFT JOIN {GIVEN_NAME_TABLE} AS gs ON gs.name = q.surname_tokens[1])"""


def request_reading_sql(col: str, *, swapped: bool) -> str:
    """Request ``q``'s column ``col`` under one reading: swapped or plain."""
    return SWAPPED_COLUMNS.get(col, f"q.{col}") if swapped else f"q.{col}"


def request_column_sql(col: str, swapped: str) -> str:
    """Request ``q``'s column ``col`` as the pair reads it (SQL ``swapped`` or not)."""
    plain, other = request_reading_sql(col, swapped=False), request_reading_sql(col, swapped=True)
    return plain if other == plain else f"CASE WHEN {swapped} THEN {other} ELSE {plain} END"


#: A pair's id on Splink's left side: its request row and record, which name one pair
#: (a candidate is one per request and record). Only the join from Splink's output back to
#: ``lk_pairs`` reads it (no order, no tie-break), so it need not be a dense number, and
#: built from the row itself it needs no numbering of the whole table (on Spark a
#: window without PARTITION BY: one partition).
PAIR_ID_SQL = ("'q' || CAST(c.source_row AS VARCHAR) || '_' || "
               "CAST(c.record_id AS VARCHAR)")


def pair_steps(*, requests: str, records: str, candidates: str,
               judged: bool = False) -> list[SqlStep]:
    """The two sides Splink compares, plus ``lk_pairs`` to map results back.

    ``lk_pairs`` has the pair's ``unique_id``, ``source_row``, ``record_id``, ``tin``,
    ``swapped`` (:data:`SWAP_SQL`), ``address_confirmed``
    (:func:`~lastknown.match.decide.address_confirmed_sql`) and ``disclosable``. With
    ``judged``, ``candidates`` already carries the last four (``candidate_steps`` with
    pruning: ``tin, swapped, confirms, disclosable``), computed by the same SQL on the same
    rows, and no pair is joined to ``requests`` and ``records`` for them again.
    """
    left_cols = [f"{request_column_sql(col, 'p.swapped')} AS {col}" for col in COMPARE_COLUMNS]
    cols = ", ".join(COMPARE_COLUMNS)
    unique_id = f"{PAIR_ID_SQL} AS unique_id"
    if judged:
        pairs = f"""
            SELECT {unique_id}, c.source_row, c.record_id, c.tin, c.swapped,
                   c.confirms AS address_confirmed, c.disclosable
            FROM {candidates} AS c"""
    else:
        pairs = f"""
            SELECT {unique_id}, c.source_row, c.record_id, r.tin, {SWAP_SQL} AS swapped,
                   {address_confirmed_sql('q', 'r')} AS address_confirmed, r.disclosable
            FROM {candidates} AS c
            JOIN {requests} AS q ON q.source_row = c.source_row
            JOIN {records} AS r ON r.record_id = c.record_id"""
    return [
        SqlStep(sql=pairs, output_table_name="lk_pairs"),
        SqlStep(sql=f"""
            SELECT p.unique_id, p.record_id AS block_key, {', '.join(left_cols)}
            FROM lk_pairs AS p
            JOIN {requests} AS q ON q.source_row = p.source_row
            {swapped_groups_join('p.swapped')}
        """, output_table_name="lk_pair_left"),
        SqlStep(sql=f"""
            SELECT 'r' || CAST(record_id AS VARCHAR) AS unique_id, record_id AS block_key, {cols}
            FROM {records}
            WHERE record_id IN (SELECT DISTINCT record_id FROM {candidates})
        """, output_table_name="lk_pair_right"),
    ]


#: Comparisons with a term-frequency adjustment (Splink adds ``mw_tf_adj_<name>``).
_TF_COMPARISONS = ("first_name", "surname")


def _weight_sql(name: str) -> str:
    weight = f'coalesce("mw_{name}", 0.0)'
    if name in _TF_COMPARISONS:
        weight += f' + coalesce("mw_tf_adj_{name}", 0.0)'
    return f"({weight})"


def score_pairs(engine: Engine, *, model: dict[str, Any], prior: float, tf_tables: dict[str, str],
                out: str) -> None:
    """Score ``lk_pair_left`` × ``lk_pair_right`` with Splink into table ``out``.

    ``out`` gets: unique_id, match_weight, name_weight and one ``mw_<comparison>``
    column per comparison (bits), ``household_weight`` (bits; see
    :func:`~lastknown.match.model.household_weight_sql`), and one ``gamma_<comparison>``
    column per comparison (the level, -1 for null; read by ``match/learn.py``).
    """
    from splink import Linker

    settings = dict(model)
    settings.pop("lastknown", None)
    settings["probability_two_random_records_match"] = prior
    settings["retain_intermediate_calculation_columns"] = True
    settings["additional_columns_to_retain"] = ["block_key"]
    db_api = engine.splink_db_api()
    with quiet_splink():
        try:
            left = db_api.register("lk_pair_left", table_name="lk_pair_left_sdf")
            right = db_api.register("lk_pair_right", table_name="lk_pair_right_sdf")
            linker = Linker(right, engine.splink_settings(settings), log_level=None)
            for col, table in tf_tables.items():
                linker.table_management.register_term_frequency_lookup(
                    db_api.register(table, table_name=f"{table.replace('.', '_')}_sdf"), col)
            predictions = linker.inference.predict_between(
                left, right, blocking_rules_to_generate_predictions=["l.block_key = r.block_key"],
                warning_mode="never")
            physical = predictions.physical_name
        except Exception as exc:  # Splink raises many types; any failure here is ours
            raise PipelineError(f"scoring candidate pairs failed: {exc}") from exc
    comps = [*NAME_COMPARISONS, *ADDRESS_COMPARISONS]
    weights = ", ".join(f"{_weight_sql(c)} AS mw_{c}" for c in comps)
    name_weight = " + ".join(_weight_sql(c) for c in NAME_COMPARISONS)
    levels = ", ".join(f'"gamma_{c}" AS gamma_{c}' for c in comps)
    engine.execute(f"""
        CREATE OR REPLACE TABLE {out} AS
        SELECT unique_id_l AS unique_id, match_weight, {name_weight} AS name_weight, {weights},
               {household_weight_sql(model)} AS household_weight, {levels}
        FROM {physical}
    """)
    drop = linker.table_management.delete_tables_created_by_splink_from_db
    drop()  # type: ignore[no-untyped-call]
