"""Execution engines behind one small interface.

Engines execute; they do not decide. The SQL that decides which pairs are
compared and what is disclosed is generated in ``match/`` (and the cleaning
rules in ``normalize/``) as lists of :class:`SqlStep`; an engine runs them.

``duckdb`` (the default) runs in this process; ``spark`` (:mod:`lastknown.engines.spark`,
the optional extra ``lastknown[spark]``) on a SparkSession, local or a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastknown.engines.base import Engine, Numbering, SqlStep
from lastknown.engines.duckdb import DuckDBEngine

if TYPE_CHECKING:  # pragma: no cover - typing only
    from lastknown.config import SparkSettings

__all__ = ["ENGINES", "DuckDBEngine", "Engine", "Numbering", "SqlStep", "make_engine"]

#: The engines ``--engine`` offers.
ENGINES: tuple[str, ...] = ("duckdb", "spark")


def make_engine(name: str = "duckdb", *, database: str = ":memory:", threads: int | None = None,
                memory_limit: str | None = None,
                spark: SparkSettings | None = None) -> Engine:
    """Create an engine by name: ``duckdb`` or ``spark`` (``spark`` settings: the
    deployment's ``[spark]`` table; ``threads`` gives ``local[threads]`` when no master is
    set, ``memory_limit`` the driver's memory)."""
    if name == "duckdb":
        return DuckDBEngine(database=database, threads=threads, memory_limit=memory_limit)
    if name == "spark":
        from lastknown.engines.spark import SparkEngine

        settings = spark
        return SparkEngine(
            master=settings.master if settings else None,
            conf=settings.conf if settings else None,
            checkpoint_dir=settings.checkpoint_dir if settings else None,
            shuffle_partitions=settings.shuffle_partitions if settings else None,
            threads=threads, memory_limit=memory_limit)
    from lastknown.errors import ConfigError

    raise ConfigError(f"unknown engine `{name}`: use --engine {' or '.join(ENGINES)}")
