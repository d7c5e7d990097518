"""One Spark session set up the way lastknown's SQL and Splink expect it.

:func:`spark_session` creates (or reuses) a session with

- Splink's similarity jar on ``spark.jars`` and its functions registered as SQL
  functions (``jaro_winkler``, ``jaro_sim``, ``damerau_levenshtein``, ``jaccard``,
  ``cosine_distance``, ``Dmetaphone``, ``DmetaphoneAlt``, ``QgramTokeniser``), as Splink's
  ``SparkAPI`` registers them, and DuckDB's Jaro-Winkler as ``lk_jaro_winkler`` (an Arrow
  UDF: :mod:`lastknown.engines.similarity`);
- the session time zone UTC (the project's timestamps are UTC; DuckDB's are too);
- a checkpoint directory (Splink's ``SparkAPI`` breaks lineage with checkpoints);
- few shuffle partitions for a local run (Spark's 200 are for a cluster), overridable
  through ``conf``;
- logging quiet (errors only) and no console progress bar (progress is ours, on stderr).

ANSI mode stays **on** (Spark 4's default, ``spark.sql.ansi.enabled``). It is the
closer match to DuckDB: a failed ``CAST`` and an integer overflow raise on both engines
instead of turning into NULL on Spark alone, and a wrong answer that raises is better
than one that is silently NULL. Where DuckDB is lenient by design the dialect layer
(:mod:`lastknown.engines.spark_sql`) says so in SQL: a list index past the end is
``try_element_at`` (NULL, as DuckDB's), ``TRY_CAST`` stays ``TRY_CAST``. A caller can
still turn it off through ``conf`` (``{"spark.sql.ansi.enabled": "false"}``).

pyspark is imported here and in the other Spark modules of ``engines/`` only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastknown.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import SparkSession

#: Shuffle partitions for a local run: Spark's 200 cost more than they give on 2 cores.
LOCAL_SHUFFLE_PARTITIONS = 4

#: The session settings lastknown depends on (``conf`` may override any of them).
BASE_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Arrow for createDataFrame/toPandas/toArrow (what register_arrow and streaming use)
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    # identifiers fold case, as in DuckDB
    "spark.sql.caseSensitive": "false",
    # the driver binds locally; a cluster's conf sets its own host
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}

# Settings fixed when the JVM starts: a session reused later cannot change them.
_STATIC_PREFIXES = ("spark.jars", "spark.driver.", "spark.executor.", "spark.master",
                    "spark.ui.", "spark.app.", "spark.local.dir")


def similarity_jar() -> Path:
    """The Splink jar that provides the string-similarity functions on Spark 4."""
    import splink

    jar = (Path(splink.__file__).parent / "internals" / "files" / "spark_jars"
           / "scala-udf-similarity-0.2.1_spark4.x.jar")
    if not jar.is_file():
        raise EngineError(f"Splink's similarity jar is missing: {jar} (reinstall splink)",
                          detail="missing jar")
    return jar


_QUIET_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.codegen.name = org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator
logger.codegen.level = off
"""
# The code generator logs an ERROR and a page of stack when a generated method passes the
# JVM's 64 KB (the normalisation's long CASE and regexp chains do); Spark then runs that
# plan interpreted (spark.sql.codegen.fallback, on by default) and the answer is the same.
# A failure the fallback cannot mend still raises, through the query, as an EngineError.


def _quiet_log4j(folder: Path) -> Path:
    """A log4j2 configuration that lets only errors through from the JVM's start on
    (``setLogLevel`` acts only once the session exists)."""
    path = folder / f"lastknown-spark-log4j2-{os.getuid()}.properties"
    if not path.is_file() or path.read_text() != _QUIET_LOG4J:
        path.write_text(_QUIET_LOG4J)
    return path


def local_driver_memory() -> str:
    """Half of this machine's memory (at least 1 GB): a ``local`` session's default heap.

    >>> local_driver_memory().endswith("g")
    True
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, total // 2**31)}g"


def similarity_functions() -> list[tuple[str, str, Any]]:
    """(SQL name, Java class, return type) of each function in the similarity jar."""
    from splink.internals.spark.jar_location import get_scala_udfs

    return list(get_scala_udfs())  # type: ignore[no-untyped-call]


def spark_session(master: str = "local[2]", conf: Mapping[str, str] | None = None,
                  checkpoint_dir: Path | None = None) -> SparkSession:
    """A Spark session for lastknown (created, or the active one reused).

    ``master`` is ``local[N]`` or a cluster URL. ``conf`` is added to (and overrides)
    :data:`BASE_CONF`; for a ``local`` master ``spark.sql.shuffle.partitions`` defaults to
    :data:`LOCAL_SHUFFLE_PARTITIONS` and ``spark.driver.memory`` to half the machine's
    memory (:func:`local_driver_memory`; ``--memory-limit`` sets it). ``checkpoint_dir``
    defaults to a folder under the system's temporary directory. When a session is active
    already, its static settings (the jars, the master, the driver's) stay as they are;
    the runtime settings in ``conf`` are applied to it and the similarity functions
    registered again.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise EngineError("--engine spark needs pyspark: pip install 'lastknown[spark]'",
                          detail=str(exc)) from exc

    settings = dict(BASE_CONF)
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = str(LOCAL_SHUFFLE_PARTITIONS)
        # local: the driver is the executor; Spark's 1 GB cannot broadcast a 200k-person
        # master's records (DuckDB takes 80 % of the memory by default)
        settings["spark.driver.memory"] = local_driver_memory()
    settings.update(conf or {})
    jar = str(similarity_jar())
    jars = [j for j in settings.get("spark.jars", "").split(",") if j.strip()]
    if jar not in jars:
        jars.append(jar)
    settings["spark.jars"] = ",".join(jars)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir is not None else Path(
        tempfile.gettempdir()) / f"lastknown-spark-checkpoints-{os.getuid()}"
    checkpoints.mkdir(parents=True, exist_ok=True)
    if master.startswith("local"):
        # the driver's address is this machine's loopback (no warning that it "resolves to
        # a loopback address"); a cluster's environment sets its own
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (the Jaro-Winkler UDF) run this interpreter, which has lastknown
        # and rapidfuzz; on a cluster, the executors' Python needs the `spark` extra
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.setdefault("spark.driver.extraJavaOptions",
                        f"-Dlog4j2.configurationFile={_quiet_log4j(checkpoints.parent)}")

    active = SparkSession.getActiveSession()
    try:
        if active is None:
            builder = SparkSession.builder.master(master).appName("lastknown")
            for key, value in settings.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
        else:
            session = active
            for key, value in settings.items():
                if not key.startswith(_STATIC_PREFIXES):
                    session.conf.set(key, value)
        session.sparkContext.setLogLevel("ERROR")
        session.sparkContext.setCheckpointDir(str(checkpoints))
    except Exception as exc:  # py4j / pyspark errors have no common base worth naming
        raise EngineError(f"Spark could not start on master {master!r}: {exc}",
                          detail=str(exc)) from exc
    register_similarity_functions(session)
    return session


def register_similarity_functions(session: SparkSession) -> None:
    """Register the jar's functions as SQL functions of ``session`` (as Splink's SparkAPI),
    and ``lk_jaro_winkler``: DuckDB's Jaro-Winkler, an Arrow UDF (the jar's counts
    transpositions differently, :mod:`lastknown.engines.similarity`)."""
    from pyspark.sql.pandas.functions import arrow_udf

    from lastknown.engines.similarity import JARO_WINKLER_UDF, jaro_winkler_arrays

    try:
        for name, java_class, return_type in similarity_functions():
            session.udf.registerJavaFunction(name, java_class, return_type)
        session.udf.register(JARO_WINKLER_UDF, arrow_udf(  # type: ignore[call-overload]
            jaro_winkler_arrays, "double"))  # a scalar UDF by its type hints (pyspark's stubs
        # want functionType, which pyspark warns against)
    except Exception as exc:
        raise EngineError(
            "Spark could not load Splink's similarity functions (jaro_winkler ...): the "
            f"session was started without {similarity_jar()} on spark.jars", detail=str(exc)
        ) from exc
