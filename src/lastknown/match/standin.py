"""A stand-in matcher: marks every valid row `N`. For testing the doors of the pipeline."""

from __future__ import annotations

from lastknown.engines.base import Engine, SqlStep


def standin_steps(valid_table: str = "request_valid") -> list[SqlStep]:
    """SQL that gives every valid row outcome `N` with no candidate."""
    sql = f"""
        SELECT source_row, request_row_id, 'N' AS outcome,
               CAST(NULL AS DOUBLE) AS match_probability, CAST(NULL AS VARCHAR) AS tin,
               CAST(NULL AS INTEGER) AS address_tax_year,
               CAST(NULL AS VARCHAR) AS street, CAST(NULL AS VARCHAR) AS unit,
               CAST(NULL AS VARCHAR) AS city, CAST(NULL AS VARCHAR) AS state,
               CAST(NULL AS VARCHAR) AS zip,
               'stand-in matcher: no matching was attempted' AS detail
        FROM {valid_table}
    """
    return [SqlStep(sql=sql, output_table_name="match_result")]


def run_standin(engine: Engine, valid_table: str = "request_valid") -> None:
    engine.run_steps(standin_steps(valid_table))
