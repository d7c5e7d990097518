"""Read the master Parquet into the engine and check it against the contract."""

from __future__ import annotations

from pathlib import Path

from lastknown.engines.base import Engine
from lastknown.errors import ErrorCollector, MasterError
from lastknown.master.schema import FILING_STATUSES, MASTER_COLUMNS, ROLES
from lastknown.normalize.usps import state_codes_sql

_TYPE_FAMILIES = {
    "string": ("VARCHAR",),
    "int": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT"),
    "date": ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
             "TIMESTAMP WITH TIME ZONE"),
}

#: (check name, SQL predicate that is TRUE for a bad row, how to fix it)
_ROW_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("tin", "tin IS NULL OR NOT regexp_full_match(tin, '[0-9]{9}')",
     "a TIN must be exactly 9 digits, no dashes"),
    ("tax_year", "tax_year IS NULL OR tax_year < 1900 OR tax_year > 2100",
     "tax_year must be a four-digit year"),
    ("state", f"state IS NULL OR state NOT IN {state_codes_sql()}",
     "state must be a USPS two-letter code such as `CA`"),
    ("zip", "zip IS NULL OR NOT regexp_full_match(zip, '[0-9]{5}([0-9]{4})?')",
     "zip must be 5 or 9 digits, no dash"),
    ("role", f"role IS NULL OR role NOT IN {tuple(ROLES)}", "role must be primary or secondary"),
    ("filing_status", f"filing_status IS NULL OR filing_status NOT IN {tuple(FILING_STATUSES)}",
     "filing_status must be one of single, mfj, mfs, hoh, qss"),
    ("last_name", "last_name IS NULL OR trim(last_name) = ''", "last_name must not be empty"),
    ("street", "street IS NULL OR trim(street) = ''", "street must not be empty"),
)


def load_master(engine: Engine, path: str | Path, *, table_name: str = "master",
                validate: bool = True) -> str:
    """Expose the master at ``path`` (a Parquet file or folder) as ``table_name``.

    Raises :class:`MasterError` naming every problem found.
    """
    p = Path(path)
    if not p.exists():
        raise MasterError(f"master not found at {p}: pass --master with a Parquet file or folder")
    if p.is_dir() and not any(p.rglob("*.parquet")):
        raise MasterError(f"master folder {p} holds no .parquet files")
    try:
        engine.register_parquet(table_name, p)
    except Exception as exc:  # the engine's own error type varies
        raise MasterError(f"cannot read master {p} as Parquet: {exc}") from exc
    if validate:
        validate_master(engine, table_name=table_name, source=str(p))
    return table_name


def validate_master(engine: Engine, *, table_name: str = "master", source: str = "master",
                    sample: int = 3) -> None:
    """Check columns, types and row values; raise once listing every problem."""
    errors = ErrorCollector()
    types = {
        str(name): str(dtype).upper()
        for name, dtype in engine.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
            [table_name],
        )
    }
    missing = [c for c in MASTER_COLUMNS if c not in types]
    for col in missing:
        errors.add(f"column `{col}` is missing (found: {', '.join(sorted(types)) or 'none'})")
    for col, family in MASTER_COLUMNS.items():
        if col in types and not types[col].startswith(_TYPE_FAMILIES[family]):
            errors.add(f"column `{col}` has type {types[col]}, expected {family}")
    errors.raise_if_any(MasterError, f"{source} does not meet the master contract")

    # One scan counts every kind of bad row; examples are fetched only for failures.
    counts = engine.fetchall(
        "SELECT " + ", ".join(f"count_if({pred})" for _, pred, _ in _ROW_CHECKS)
        + f" FROM {table_name}"
    )[0]
    for (col, predicate, fix), bad in zip(_ROW_CHECKS, counts, strict=True):
        if bad:
            examples = engine.fetchall(
                f"SELECT tax_year, {col} FROM {table_name} WHERE {predicate} LIMIT {sample}"
            )
            shown = "; ".join(f"tax_year {y}: {_mask(col, v)!r}" for y, v in examples)
            errors.add(f"column `{col}`: {bad} bad row(s), e.g. {shown} — {fix}")
    errors.raise_if_any(MasterError, f"{source} does not meet the master contract")


def _mask(col: str, value: object) -> object:
    """Never print a TIN: show its shape only."""
    if col == "tin" and value is not None:
        s = str(value)
        return f"<{len(s)} chars>"
    return value
