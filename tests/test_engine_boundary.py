"""No module outside ``lastknown/engines/`` reaches an engine's library (issue 14).

DuckDB, PySpark and Splink's engine-specific database APIs are imported only behind
:class:`lastknown.engines.Engine`; a docstring's example outside engines/ does not
``import duckdb`` either. Read with ``ast``, not grep: a comment or a string naming
duckdb is allowed, an import is not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lastknown

PACKAGE = Path(lastknown.__file__).parent
ENGINES = PACKAGE / "engines"
#: The engines' libraries: DuckDB, PySpark (and py4j, its bridge to the JVM), and Splink's
#: Spark backend (what the engines hand Splink).
FORBIDDEN_MODULES = ("duckdb", "pyspark", "py4j", "splink.backends.spark",
                     "splink.internals.spark", "splink.backends.duckdb")
FORBIDDEN_NAMES = {"DuckDBAPI", "SparkAPI"}


def _forbidden(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in FORBIDDEN_MODULES)


def boundary_problems(source: str, where: str) -> list[str]:
    """Each way ``source`` reaches past the engine interface, as a readable line."""
    problems: list[str] = []
    tree = ast.parse(source, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"{where}:{node.lineno} imports {a.name}"
                         for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if _forbidden(node.module):
                problems.append(f"{where}:{node.lineno} imports from {node.module}")
            problems += [f"{where}:{node.lineno} imports {a.name} from {node.module}"
                         for a in node.names if a.name in FORBIDDEN_NAMES]
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False) or ""
            if "import duckdb" in doc or "import pyspark" in doc:
                problems.append(f"{where}: a docstring's example imports an engine's library")
    return problems


def _modules_outside_engines() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ENGINES not in p.parents)


def test_the_package_is_walked() -> None:
    modules = _modules_outside_engines()
    assert PACKAGE / "request" / "intake.py" in modules
    assert not any(ENGINES in p.parents for p in modules)


def test_no_module_outside_engines_reaches_an_engine_library() -> None:
    problems = [problem for path in _modules_outside_engines()
                for problem in boundary_problems(path.read_text(encoding="utf-8"),
                                                 str(path.relative_to(PACKAGE)))]
    assert problems == []


def test_the_duckdb_engine_itself_may_import_duckdb() -> None:
    assert boundary_problems((ENGINES / "duckdb.py").read_text(encoding="utf-8"), "duckdb.py")


def test_the_spark_engine_itself_may_import_pyspark() -> None:
    for module in ("spark.py", "spark_session.py"):
        problems = boundary_problems((ENGINES / module).read_text(encoding="utf-8"), module)
        assert any("pyspark" in p or "splink.backends.spark" in p for p in problems), module


@pytest.mark.parametrize("source", [
    "import duckdb",
    "from pyspark.sql import functions as F",
    "import py4j.protocol",
    "from splink.backends.spark import similarity_jar_location",
    "from splink.internals.spark.jar_location import get_scala_udfs",
    "def f():\n    from pyspark.sql import SparkSession\n",
    "import duckdb as db",
    "import pyspark.sql",
    "from duckdb import DuckDBPyConnection",
    "from pyspark.sql import SparkSession",
    "from splink import DuckDBAPI, Linker",
    "from splink.backends.spark import SparkAPI",
    "def f():\n    import duckdb\n",
    'def f():\n    """\n    >>> import duckdb\n    """\n',
    'class C:\n    """>>> import pyspark"""\n',
])
def test_a_reach_past_the_interface_is_found(source: str) -> None:
    assert boundary_problems(source, "snippet.py")


@pytest.mark.parametrize("source", [
    "from splink import Linker",
    "import duckdbx",
    "# import duckdb\nx = 'import duckdb'",
    'INDEX = "index.duckdb"',
    "from lastknown.engines import make_engine",
])
def test_what_is_not_a_reach_passes(source: str) -> None:
    assert boundary_problems(source, "snippet.py") == []
