"""Read the master Parquet into the engine, check it, and set broken rows apart.

A master is *refused* only when it is structurally unusable: a column missing or of
the wrong type, or more than :data:`MAX_QUARANTINED_SHARE` of its rows broken. A
broken row (empty name or street, a state or ZIP outside the contract …) is
*quarantined*: counted, reported with its file and row number (never a TIN or a
name), written to ``INDEX/quarantine.parquet`` by the index build, never disclosed,
and — when its TIN is usable — still a rival in matching (docs/MATCHING.md,
"Imperfect masters").

>>> print(MasterReport(source="m", rows=10, quarantined=0, problems=()).text())
m: 10 rows meet the master contract
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lastknown.engines.base import Engine
from lastknown.errors import ErrorCollector, MasterError
from lastknown.master.schema import (
    FILING_STATUSES,
    MASTER_COLUMNS,
    MAX_QUARANTINED_SHARE,
    ROLES,
)
from lastknown.normalize.usps import state_codes_sql

_TYPE_FAMILIES = {
    "string": ("VARCHAR",),
    "int": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT"),
    "date": ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
             "TIMESTAMP WITH TIME ZONE"),
}

#: A usable TIN: rows without one are quarantined and cannot even rival.
TIN_OK_SQL = "coalesce(regexp_full_match(tin, '[0-9]{9}'), false)"

#: Columns whose bad value may be shown in a report (they identify no one).
_SHOWN = ("tax_year", "state", "zip", "role", "filing_status")

#: (column, SQL predicate that is TRUE for a bad row, how to fix it). A row failing any
#: of them is quarantined.
ROW_RULES: tuple[tuple[str, str, str], ...] = (
    ("tin", f"NOT {TIN_OK_SQL}", "a TIN must be exactly 9 digits, no dashes"),
    ("tax_year", "tax_year IS NULL OR tax_year < 1900 OR tax_year > 2100",
     "tax_year must be a four-digit year"),
    ("first_name", "first_name IS NULL OR trim(first_name) = ''", "first_name must not be empty"),
    ("last_name", "last_name IS NULL OR trim(last_name) = ''", "last_name must not be empty"),
    ("street", "street IS NULL OR trim(street) = ''", "street must not be empty"),
    ("state", f"state IS NULL OR state NOT IN {state_codes_sql()}",
     "state must be a USPS two-letter code such as `CA`"),
    ("zip", "zip IS NULL OR NOT regexp_full_match(zip, '[0-9]{5}([0-9]{4})?')",
     "zip must be 5 or 9 digits, no dash"),
    ("role", f"role IS NULL OR role NOT IN {tuple(ROLES)}", "role must be primary or secondary"),
    ("filing_status", f"filing_status IS NULL OR filing_status NOT IN {tuple(FILING_STATUSES)}",
     "filing_status must be one of single, mfj, mfs, hoh, qss"),
)


def quarantined_sql() -> str:
    """SQL, over one master row, TRUE when the row is quarantined (never NULL)."""
    return "(" + " OR ".join(f"coalesce({pred}, true)" for _, pred, _ in ROW_RULES) + ")"


def problems_sql() -> str:
    """SQL list of the columns a master row breaks (empty for a good row)."""
    parts = ", ".join(f"CASE WHEN coalesce({pred}, true) THEN '{col}' END"
                      for col, pred, _ in ROW_RULES)
    return f"list_filter([{parts}], lambda c: c IS NOT NULL)"


def flagged_master_sql(master_table: str) -> str:
    """The master rows the index may use, with ``disclosable`` FALSE for quarantined
    ones: every row with a usable TIN (a row without one names no one)."""
    return (f"SELECT *, NOT {quarantined_sql()} AS disclosable FROM {master_table} "
            f"WHERE {TIN_OK_SQL}")


def quarantine_rows_sql(master_table: str, *, positions: bool = True) -> str:
    """The quarantined rows, each with the list of columns it breaks (``problems``).

    ``positions``: ``master_table`` carries ``lk_source_file``/``lk_source_row``
    (as :func:`load_master` registers it); else those columns are NULL.
    """
    cols = ", ".join(MASTER_COLUMNS)
    where = ("lk_source_file AS source_file, lk_source_row AS source_row" if positions else
             "CAST(NULL AS VARCHAR) AS source_file, CAST(NULL AS BIGINT) AS source_row")
    return (f"SELECT {where}, {problems_sql()} AS problems, {cols} FROM {master_table} "
            f"WHERE {quarantined_sql()} ORDER BY source_file, source_row")


@dataclass(frozen=True, kw_only=True)
class MasterProblem:
    """One kind of broken row: the column, how many rows, a few places, and the fix."""

    column: str
    rows: int
    examples: tuple[str, ...]
    fix: str


@dataclass(frozen=True, kw_only=True)
class MasterReport:
    """What checking a master found: rows, rows quarantined, and each kind of problem."""

    source: str
    rows: int
    quarantined: int
    problems: tuple[MasterProblem, ...]
    table_name: str = "master"

    def text(self) -> str:
        """The report a person reads (``lastknown master check``); no TIN, no name."""
        if not self.quarantined:
            return f"{self.source}: {self.rows:,} rows meet the master contract"
        share = 100.0 * self.quarantined / max(self.rows, 1)
        lines = [f"{self.source}: {self.rows:,} rows; {self.quarantined:,} ({share:.1f} %) "
                 "quarantined — never disclosed, still counted as rivals:"]
        lines += [f"  column `{p.column}`: {p.rows:,} row(s), e.g. {'; '.join(p.examples)} "
                  f"— {p.fix}" for p in self.problems]
        return "\n".join(lines)


def load_master(engine: Engine, path: str | Path, *, table_name: str = "master",
                sample: int = 3) -> MasterReport:
    """Expose the master at ``path`` (a Parquet file or folder) as ``table_name`` and check it.

    Raises :class:`MasterError` when the master is structurally unusable; otherwise returns
    the :class:`MasterReport` (broken rows are quarantined, not fatal).
    """
    p = Path(path)
    if not p.exists():
        raise MasterError(f"master not found at {p}: pass --master with a Parquet file or folder")
    if p.is_dir() and not any(p.rglob("*.parquet")):
        raise MasterError(f"master folder {p} holds no .parquet files")
    try:
        engine.register_parquet(table_name, p, positions=True)
    except Exception as exc:  # the engine's own error type varies
        raise MasterError(f"cannot read master {p} as Parquet: {exc}") from exc
    return validate_master(engine, table_name=table_name, source=str(p), root=p, sample=sample)


def validate_master(engine: Engine, *, table_name: str = "master", source: str = "master",
                    root: Path | None = None, sample: int = 3) -> MasterReport:
    """Check columns and types (raise on any problem), then count the broken rows.

    Raises :class:`MasterError` when more than :data:`MAX_QUARANTINED_SHARE` of the rows
    are broken. ``table_name`` must carry ``lk_source_file``/``lk_source_row``
    (``register_parquet(..., positions=True)``).
    """
    errors = ErrorCollector()
    types = {name: dtype.upper() for name, dtype in engine.column_types(table_name).items()}
    found = sorted(set(types) - {"lk_source_file", "lk_source_row"})
    for col in (c for c in MASTER_COLUMNS if c not in types):
        errors.add(f"column `{col}` is missing (found: {', '.join(found) or 'none'})")
    for col, family in MASTER_COLUMNS.items():
        if col in types and not types[col].startswith(_TYPE_FAMILIES[family]):
            errors.add(f"column `{col}` has type {types[col]}, expected {family}")
    errors.raise_if_any(MasterError, f"{source} is structurally unusable as a master")

    # One scan counts every kind of bad row; examples are fetched only for failures.
    counts = engine.fetchall(
        "SELECT count(*), count_if(" + quarantined_sql() + "), "
        + ", ".join(f"count_if(coalesce({pred}, true))" for _, pred, _ in ROW_RULES)
        + f" FROM {table_name}"
    )[0]
    rows, quarantined = int(counts[0]), int(counts[1])
    problems = []
    for (col, predicate, fix), bad in zip(ROW_RULES, counts[2:], strict=True):
        if bad:
            value = col if col in _SHOWN else "NULL"
            examples = engine.fetchall(
                f"SELECT lk_source_file, lk_source_row, {value} FROM {table_name} "
                f"WHERE coalesce({predicate}, true) ORDER BY 1, 2 LIMIT {sample}")
            shown = tuple(f"{_where(str(f), root)} row {int(r)}" + _value(col, v)
                          for f, r, v in examples)
            problems.append(MasterProblem(column=col, rows=int(bad), examples=shown, fix=fix))
    report = MasterReport(source=source, rows=rows, quarantined=quarantined,
                          problems=tuple(problems), table_name=table_name)
    if rows and quarantined > MAX_QUARANTINED_SHARE * rows:
        raise MasterError(
            f"{source} is structurally unusable as a master: {quarantined:,} of {rows:,} rows "
            f"are broken (more than {MAX_QUARANTINED_SHARE:.0%}); is this the right file?\n"
            + report.text())
    return report


def _value(col: str, value: object) -> str:
    if col not in _SHOWN:
        return " (empty)" if col != "tin" else ""
    return f" ({value!r})"


def _where(file: str, root: Path | None) -> str:
    """A file name as short as will still say which part of the master it is."""
    path = Path(file)
    if root is not None and root.is_dir():
        try:
            return str(path.relative_to(root))
        except ValueError:
            return path.name
    return path.name
