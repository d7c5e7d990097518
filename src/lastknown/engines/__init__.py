"""Execution engines behind one small interface.

Engines execute; they do not decide. The SQL that decides which pairs are
compared and what is disclosed is generated in ``match/`` (and the cleaning
rules in ``normalize/``) as lists of :class:`SqlStep`; an engine runs them.
"""

from lastknown.engines.base import Engine, SqlStep
from lastknown.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "SqlStep", "make_engine"]


def make_engine(name: str = "duckdb", *, database: str = ":memory:", threads: int | None = None,
                memory_limit: str | None = None) -> Engine:
    """Create an engine by name (``duckdb``; ``spark`` is planned)."""
    if name == "duckdb":
        return DuckDBEngine(database=database, threads=threads, memory_limit=memory_limit)
    from lastknown.errors import ConfigError

    raise ConfigError(f"unknown engine `{name}`: use --engine duckdb (spark is not built yet)")
