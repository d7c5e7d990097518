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

>>> "addr" in block_keys_sql("t", id_col="record_id")
True
"""

from __future__ import annotations

from lastknown.engines.base import SqlStep

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


def candidate_steps(*, requests: str, records: str, key_table: str, size_table: str,
                    block_limit: int, comparison_budget: int,
                    out: str = "lk_candidates") -> list[SqlStep]:
    """Match-time: ``out(source_row, record_id, hits, by_address)`` within the limits.

    Also leaves ``{out}_oversized(source_row, rule)`` (keys skipped as too common) and
    ``{out}_capped(source_row)`` (requests whose candidates were cut to the budget).
    """
    return [
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
        SqlStep(sql=f"""
            SELECT source_row FROM {out}_all GROUP BY source_row
            HAVING count(*) > {comparison_budget}
        """, output_table_name=f"{out}_capped"),
        SqlStep(sql=f"""
            SELECT source_row, record_id, hits, by_address FROM (
                SELECT *, row_number() OVER (PARTITION BY source_row
                    ORDER BY by_address DESC, hits DESC, record_id) AS rank_in_request
                FROM {out}_all)
            WHERE rank_in_request <= {comparison_budget}
        """, output_table_name=out),
    ]
