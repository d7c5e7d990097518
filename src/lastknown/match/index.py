"""The master index: derived tables for matching, persisted once per master snapshot.

``lastknown master index --master M --out INDEX`` writes ``INDEX/``:

* ``index.duckdb`` — tables (attached as schema :data:`INDEX_SCHEMA`):
  ``idx_record`` (one row per TIN × distinct normalised name+address, with the
  years it was filed from, and ``disclosable`` FALSE when only quarantined rows
  gave it), ``idx_return`` (the returns' original address fields, for disclosure;
  good rows only), ``idx_block_key``/``idx_block_size`` (blocking keys),
  ``tf_first_n``/``tf_surname_n`` (term frequencies);
* ``model.json`` — the trained Splink model (versioned by its ``model_id``);
* ``quarantine.parquet`` — the master rows set apart (:mod:`lastknown.master.load`);
* ``index.json`` — the manifest read by :func:`open_index`.

That is the DuckDB engine's storage. The Spark engine (``index_storage = "parquet"``)
writes the same tables as Parquet, ``tables/<table>/part-*.parquet``, in place of
``index.duckdb``, and the manifest says ``"storage": "parquet"``; either engine reads that
form (an index without ``storage`` is ``"duckdb"``).

>>> is_index_dir(Path("/nonexistent"))
False
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lastknown.engines.base import Engine, Numbering, SqlStep
from lastknown.errors import ConfigError, InputError
from lastknown.master.load import flagged_master_sql, quarantine_rows_sql
from lastknown.master.schema import QUARANTINE_FILE
from lastknown.match.candidates import index_block_steps
from lastknown.match.model import (
    COMPARE_COLUMNS,
    model_id,
    save_model,
    train_model,
    training_summary,
)
from lastknown.match.progress import chunk_progress
from lastknown.normalize.address import normalised_address_sql
from lastknown.normalize.names import NAME_COLUMNS, normalised_names_sql
from lastknown.normalize.nicknames import first_groups_sql, register_nicknames
from lastknown.normalize.phonetic import PHONETIC_COLUMNS, name_keys_sql, register_given_names

log = logging.getLogger("lastknown.match")

INDEX_SCHEMA = "lkidx"
#: Bumped when what an index holds changes (4: the keying-and-export cleaning rules of
#: issue 11 change master normalisation), so an old index is refused, not misread.
INDEX_VERSION = 4
MANIFEST = "index.json"
DATABASE = "index.duckdb"
#: The folder of Parquet tables of an index in ``"parquet"`` storage.
TABLES_DIR = "tables"
MODEL = "model.json"
#: The master's name and address columns (what normalisation reads).
RAW_NAME_COLUMNS: tuple[str, ...] = ("first_name", "middle_name", "last_name", "name_suffix")
RAW_ADDRESS_COLUMNS: tuple[str, ...] = ("street", "unit", "city", "state", "zip")
#: Columns that ride along a record rather than make it: lists are slow to group by, and
#: first_groups, first_ph, first_sex, first_known are functions of first_n, surname_tokens
#: and surname_ph of surname_n (its tokens joined by spaces, none containing one), and
#: street_line of street_name (spaces out) and street_type spelled out.
DERIVED_COLUMNS = frozenset({"first_groups", "surname_tokens", "street_line", *PHONETIC_COLUMNS})
#: A record is one TIN's distinct values of these (every one a scalar).
RECORD_KEY_COLUMNS = tuple(c for c in COMPARE_COLUMNS if c not in DERIVED_COLUMNS)
#: Record ids in order of TIN, first year filed, then the record's own values: a total
#: order, so a record gets the same id on every engine and in every build.
RECORD_IDS = Numbering(column="record_id", order_by=("tin", "year_min", *RECORD_KEY_COLUMNS))
#: About this many TINs are sampled to train the model.
TRAINING_TINS = 40_000


@dataclass(frozen=True, kw_only=True)
class IndexInfo:
    """Where an index lives and what it holds."""

    path: Path
    model_id: str
    model_path: Path
    year_min: int
    year_max: int
    return_rows: int
    tin_count: int
    record_count: int
    #: where the model's m came from (:func:`~lastknown.match.model.training_summary`)
    training: str = ""
    #: master rows quarantined (never disclosed; rivals when their TIN is usable)
    quarantined_rows: int = 0
    #: every tax year with a (disclosable) return on file, ascending
    tax_years: tuple[int, ...] = ()
    schema: str = INDEX_SCHEMA

    def table(self, name: str) -> str:
        """The qualified name of an index table, e.g. ``lkidx.idx_record``."""
        return f"{self.schema}.{name}"


#: How an index's tables are stored: one DuckDB file, or a folder of Parquet tables.
STORAGES: tuple[str, ...] = ("duckdb", "parquet")


def _tables_path(index: Path, storage: str) -> Path:
    """Where an index in ``storage`` keeps its tables (what the engine attaches)."""
    return index / (DATABASE if storage == "duckdb" else TABLES_DIR)


def is_index_dir(path: Path) -> bool:
    """True when ``path`` is a folder written by :func:`build_index`."""
    return path.is_dir() and (path / MANIFEST).is_file()


def normalised_people_sql(source: str, *, keep: list[str],
                          suffix: str | None = "name_suffix") -> str:
    """Names (with phonetic keys), then addresses, then nickname groups: the same rules
    for master and request.

    Requests carry no suffix column (``suffix=None``): a suffix written at the end of the
    surname is still found.
    """
    names = name_keys_sql("(" + normalised_names_sql(
        source, keep=[*keep, "street", "unit", "city", "state", "zip"], suffix=suffix) + ")")
    address = normalised_address_sql(f"({names})",
                                     keep=[*keep, *NAME_COLUMNS, *PHONETIC_COLUMNS])
    return first_groups_sql(f"({address})")


def master_norm_steps(master_table: str, *, carry: tuple[str, ...] = ()) -> list[SqlStep]:
    """``lk_master_norm``: every return's normalised name and address, as
    :func:`normalised_people_sql` gives them, but each distinct raw name and each distinct
    raw address normalised once (a name repeats every year: 18 % of rows are distinct on
    synth; addresses 59 %) and joined back. ``carry`` names further master columns kept.
    """
    names = ", ".join(RAW_NAME_COLUMNS)
    addrs = ", ".join(RAW_ADDRESS_COLUMNS)
    name_keys = [f"k_{c}" for c in RAW_NAME_COLUMNS]
    addr_keys = [f"k_{c}" for c in RAW_ADDRESS_COLUMNS]
    on_names = " AND ".join(f"m.{c} IS NOT DISTINCT FROM n.k_{c}" for c in RAW_NAME_COLUMNS)
    on_addrs = " AND ".join(f"m.{c} IS NOT DISTINCT FROM a.k_{c}" for c in RAW_ADDRESS_COLUMNS)
    carried = "".join(f"m.{c}, " for c in carry)
    joined = f"""(
        SELECT m.tin, m.tax_year, {carried}n.* EXCLUDE ({', '.join(name_keys)}),
               a.* EXCLUDE ({', '.join(addr_keys)})
        FROM {master_table} AS m
        JOIN lk_master_names AS n ON {on_names}
        JOIN lk_master_addresses AS a ON {on_addrs})"""
    return [
        SqlStep(sql=name_keys_sql("(" + normalised_names_sql(
            f"(SELECT *, {', '.join(f'{c} AS k_{c}' for c in RAW_NAME_COLUMNS)} FROM "
            f"(SELECT DISTINCT {names} FROM {master_table}))", keep=name_keys) + ")"),
            output_table_name="lk_master_names"),
        SqlStep(sql=normalised_address_sql(
            f"(SELECT *, {', '.join(f'{c} AS k_{c}' for c in RAW_ADDRESS_COLUMNS)} FROM "
            f"(SELECT DISTINCT {addrs} FROM {master_table}))", keep=addr_keys),
            output_table_name="lk_master_addresses"),
        SqlStep(sql=first_groups_sql(joined), output_table_name="lk_master_norm"),
    ]


#: The training sample (whole TINs, every year filed) and the records at a sample of
#: addresses (:func:`household_steps`) the model is trained on.
TRAINING_TABLE, HOUSEHOLD_TABLE = "lk_training", "lk_household"
#: An index build normalises, joins and groups the returns of about this many rows at a time
#: (:func:`index_steps`' passes, each a range of TINs): the join of a whole national master
#: to its normalised names and addresses spilled tens of GiB (docs/SCALE.md); one pass's
#: fits in memory. The answer is the same with any number of passes.
RETURNS_PER_PASS = 10_000_000
#: Passes are cut between TINs' first this many digits (:func:`pass_cuts`).
PASS_PREFIX = 5


def pass_cuts(prefix_rows: list[tuple[str, int]], returns_per_pass: int = RETURNS_PER_PASS,
              ) -> list[str]:
    """Where passes of about ``returns_per_pass`` rows each begin, from the rows per TIN
    prefix: the first prefix of every pass but the first (none: one pass). A prefix is
    never split, so a pass may be larger by up to one prefix's rows.

    >>> pass_cuts([("001", 4), ("002", 4), ("005", 4), ("009", 4)], returns_per_pass=8)
    ['005']
    >>> pass_cuts([("001", 4), ("002", 4), ("005", 4), ("009", 4)], returns_per_pass=5)
    ['002', '005', '009']
    >>> pass_cuts([("001", 4)], returns_per_pass=1), pass_cuts([], returns_per_pass=1)
    ([], [])
    """
    if returns_per_pass < 1:
        raise ValueError(f"returns_per_pass must be at least 1, got {returns_per_pass}")
    rows = sorted(prefix_rows)
    total = sum(n for _, n in rows)
    passes = max(1, -(-total // returns_per_pass))
    cuts: list[str] = []
    done = 0
    for prefix, n in rows:
        if done >= total * (len(cuts) + 1) / passes and done:
            cuts.append(prefix)
        done += n
    return cuts


def pass_filters_sql(expr: str, cuts: list[str]) -> list[str]:
    """One condition per pass (:func:`pass_cuts`): each value of ``expr`` (text, never
    NULL) in exactly one. Plain comparisons of text, the same on every engine, which a
    Parquet scan can apply before it reads the other columns.

    >>> pass_filters_sql("tin", [])
    ['TRUE']
    >>> pass_filters_sql("tin", ["3", "6"])
    ["tin < '3'", "tin >= '3' AND tin < '6'", "tin >= '6'"]
    """
    bounds: list[str | None] = [None, *(c.replace("'", "''") for c in cuts), None]
    filters = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        parts = ([f"{expr} >= '{low}'"] if low is not None else []) + (
            [f"{expr} < '{high}'"] if high is not None else [])
        filters.append(" AND ".join(parts) or "TRUE")
    return filters


def _union(parts: list[str]) -> str:
    """The rows of every query in ``parts``."""
    return " UNION ALL ".join(f"SELECT * FROM ({part}) AS lk_part" for part in parts)


def training_sample_modulus(tin_count: int) -> int:
    """One TIN in this many is in the training sample (about :data:`TRAINING_TINS`).

    >>> training_sample_modulus(100), training_sample_modulus(30_000_000)
    (1, 750)
    """
    return max(1, tin_count // TRAINING_TINS)


def index_steps(*, master_table: str, tin_count: int, cuts: list[str] | None = None,
                schema: str = INDEX_SCHEMA) -> list[SqlStep]:
    """SQL that derives every index table, and the training sample (``lk_training``,
    ``lk_household``), from ``master_table`` (whose usable rows have ``tin_count``
    distinct TINs).

    The returns are normalised, joined to their normalised names and addresses and grouped
    into records in passes over ranges of TINs that begin at ``cuts`` (:func:`pass_cuts`);
    a pass's records and training rows are kept (``lk_records_<n>``, ``lk_training_<n>``)
    and numbered together at the end, so every pass count gives the same tables.

    Quarantined rows (:func:`lastknown.master.load.flagged_master_sql`) give records
    flagged ``disclosable = false`` — rivals, never confirming, never disclosed — and no
    ``idx_return`` rows.
    """
    group_cols = ", ".join(RECORD_KEY_COLUMNS)
    cols = ", ".join(f"any_value({c}) AS {c}" if c in DERIVED_COLUMNS else c
                     for c in COMPARE_COLUMNS)
    records_sql = f"""
        SELECT tin, {cols},
               min(tax_year) AS year_min, max(tax_year) AS year_max,
               count(*) AS years_filed, bool_or(disclosable) AS disclosable
        FROM lk_master_norm GROUP BY tin, {group_cols}"""
    training_sql = f"""
        SELECT tin, tax_year, CAST(0 AS BIGINT) AS block_key, {', '.join(COMPARE_COLUMNS)}
        FROM lk_master_norm WHERE {sample_sql('tin', training_sample_modulus(tin_count))}"""
    flagged = "lk_master_flagged"
    steps = [SqlStep(sql=flagged_master_sql(master_table), output_table_name=flagged,
                     materialise=False)]
    records, training = [records_sql], [training_sql]
    if cuts:  # each pass's part kept, then all numbered together
        records, training = [], []
        for number, where in enumerate(pass_filters_sql("tin", cuts)):
            steps += [
                SqlStep(sql=f"SELECT * FROM {flagged} WHERE {where}",
                        output_table_name="lk_master_pass"),
                *master_norm_steps("lk_master_pass", carry=("disclosable",)),
                SqlStep(sql=records_sql, output_table_name=f"lk_records_{number}"),
                SqlStep(sql=training_sql, output_table_name=f"{TRAINING_TABLE}_{number}"),
            ]
            records.append(f"SELECT * FROM lk_records_{number}")
            training.append(f"SELECT * FROM {TRAINING_TABLE}_{number}")
    else:
        steps += master_norm_steps(flagged, carry=("disclosable",))
    return [
        *steps,
        SqlStep(sql=_union(records), output_table_name=f"{schema}.idx_record",
                numbering=RECORD_IDS),
        SqlStep(sql=_union(training), output_table_name=TRAINING_TABLE, numbering=Numbering(
            column="unique_id", order_by=("tin", "tax_year", *RECORD_KEY_COLUMNS),
            as_text=True, keep=("tin", "block_key", *COMPARE_COLUMNS))),
        SqlStep(sql=f"""
            SELECT tin, tax_year, received_date, street, unit, city, state, zip
            FROM {flagged} WHERE disclosable ORDER BY tin, tax_year
        """, output_table_name=f"{schema}.idx_return"),
        *index_block_steps(records=f"{schema}.idx_record", key_table=f"{schema}.idx_block_key",
                           size_table=f"{schema}.idx_block_size"),
        *[SqlStep(sql=f"""
            SELECT {col}, CAST(count(*) AS DOUBLE)
                          / (SELECT count({col}) FROM {schema}.idx_record) AS tf_{col}
            FROM {schema}.idx_record WHERE {col} IS NOT NULL GROUP BY {col}
          """, output_table_name=f"{schema}.tf_{col}") for col in ("first_n", "surname_n")],
        *household_steps(tin_count=tin_count, schema=schema),
    ]


#: Tables :func:`build_index` keeps after its steps (the model is trained on them).
_TRAINING_TABLES = (TRAINING_TABLE, HOUSEHOLD_TABLE)


def scratch_drops(steps: list[SqlStep], *, keep: tuple[str, ...] = _TRAINING_TABLES,
                  ) -> dict[int, list[str]]:
    """Which scratch tables (not in a schema, not in ``keep``) each step is the last to
    read, by the step's position: a build drops them then, so it holds one pass's tables
    at a time. A table made again by a later step (each pass's ``lk_master_norm``) is
    dropped before that.

    >>> steps = [SqlStep(sql="SELECT 1", output_table_name="a"),
    ...          SqlStep(sql="SELECT * FROM a", output_table_name="s.b"),
    ...          SqlStep(sql="SELECT * FROM s.b, a AS ab", output_table_name="s.c")]
    >>> scratch_drops(steps)
    {2: ['a']}
    """
    drops: dict[int, list[str]] = {}
    for made, step in enumerate(steps):
        name = step.output_table_name
        if "." in name or name in keep:
            continue
        read = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
        last = made
        for later in range(made + 1, len(steps)):
            if steps[later].output_table_name == name:
                break
            if read.search(steps[later].sql):
                last = later
        drops.setdefault(last, []).append(name)
    return drops


def sample_sql(expr: str, modulus: int) -> str:
    """A condition true for about one in ``modulus`` values of ``expr``: the same values on
    every engine. ``md5`` and ``substr`` are written and computed alike in DuckDB and
    Spark, whose ``hash()`` functions differ; comparing eight lowercase hex digits as text
    compares their numbers.

    >>> sample_sql("tin", 1)
    'TRUE'
    >>> sample_sql("tin", 4)
    "substr(md5(CAST(tin AS VARCHAR)), 1, 8) < '40000000'"
    """
    if modulus <= 1:
        return "TRUE"
    return f"substr(md5(CAST({expr} AS VARCHAR)), 1, 8) < '{round(16 ** 8 / modulus):08x}'"


#: About this many addresses are sampled to count name agreement among housemates.
HOUSEHOLD_ADDRESSES = 100_000
#: The standardised address a record was filed from (records sharing it share an address).
ADDR_KEY_SQL = ("CASE WHEN house_number IS NOT NULL AND street_name IS NOT NULL THEN "
                "concat_ws('|', house_number, street_name, coalesce(unit_n, ''), zip5) END")


def household_steps(*, tin_count: int, schema: str = INDEX_SCHEMA) -> list[SqlStep]:
    """Records at a sample of addresses (``lk_household``): the name u's among different
    TINs at one address are counted on them."""
    modulus = max(1, tin_count // (2 * HOUSEHOLD_ADDRESSES))
    cols = ", ".join(COMPARE_COLUMNS)
    return [
        SqlStep(sql=f"""
            SELECT CAST(record_id AS VARCHAR) AS unique_id, tin, CAST(0 AS BIGINT) AS block_key,
                   {ADDR_KEY_SQL} AS addr_key, {cols}
            FROM {schema}.idx_record
            WHERE {ADDR_KEY_SQL} IS NOT NULL AND {sample_sql(ADDR_KEY_SQL, modulus)}
        """, output_table_name=HOUSEHOLD_TABLE),
    ]


def build_index(engine: Engine, *, master_table: str = "master", out: Path,
                progress: bool = False, returns_per_pass: int | None = None) -> IndexInfo:
    """Derive the index tables from ``master_table``, train the model, persist both.

    The returns are taken about ``returns_per_pass`` (default :data:`RETURNS_PER_PASS`)
    at a time (:func:`index_steps`).

    >>> from lastknown.engines import make_engine  # doctest: +SKIP
    >>> with make_engine() as engine:  # doctest: +SKIP
    ...     load_master(engine, "master/")
    ...     info = build_index(engine, out=Path("index"))
    """
    out = Path(out)
    if (out / MANIFEST).exists() or (out / DATABASE).exists() or (out / TABLES_DIR).exists():
        raise InputError(f"index folder {out} already holds an index: choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    storage = engine.index_storage
    engine.attach(_tables_path(out, storage), INDEX_SCHEMA, read_only=False)
    register_nicknames(engine)
    register_given_names(engine)
    flagged = flagged_master_sql(master_table)
    prefixes = [(str(p), int(n), int(t)) for p, n, t in engine.fetchall(
        f"SELECT substr(tin, 1, {PASS_PREFIX}), count(*), count(DISTINCT tin) FROM ({flagged}) "
        "GROUP BY 1")]
    rows, tins = sum(n for _, n, _ in prefixes), sum(t for _, _, t in prefixes)
    if not tins:
        raise InputError("the master holds no returns: nothing to index")
    cuts = pass_cuts([(p, n) for p, n, _ in prefixes], returns_per_pass or RETURNS_PER_PASS)
    log.info("building the match index: %d returns of %d TINs in %d pass(es)",
             rows, tins, len(cuts) + 1)
    steps = index_steps(master_table=master_table, tin_count=tins, cuts=cuts)
    drops = scratch_drops(steps)
    views = {s.output_table_name for s in steps if not s.materialise}
    with chunk_progress(show=progress, description="building the index",
                        total=len(steps) + 1) as advance:
        for at, step in enumerate(steps):
            started = time.perf_counter()
            engine.run_steps([step])
            # a pass's parts (lk_records_3) are logged under one name, summed by readers
            log.info("index step %s: %.1f s", re.sub(r"_\d+$", "", step.output_table_name),
                     time.perf_counter() - started)
            for table in drops.get(at, ()):  # bounded memory: one pass's tables at a time
                engine.execute(f"DROP {'VIEW' if table in views else 'TABLE'} IF EXISTS {table}")
            advance()
        started = time.perf_counter()
        model = train_model(engine, training_table=TRAINING_TABLE,
                            household_table=HOUSEHOLD_TABLE)
        log.info("index step training: %.1f s", time.perf_counter() - started)
        if model["lastknown"]["training"]["m_source"] == "priors":
            log.warning("match model: %s", training_summary(model))
        advance()
    year_min, year_max, return_rows, tin_count = engine.fetchall(
        f"SELECT min(tax_year), max(tax_year), count(*), count(DISTINCT tin) "
        f"FROM {INDEX_SCHEMA}.idx_return")[0]
    if not return_rows:
        raise InputError("the master holds no returns: nothing to index")
    save_model(model, out / MODEL)
    for table in _TRAINING_TABLES:
        engine.execute(f"DROP TABLE IF EXISTS {table}")
    quarantined = _write_quarantine(engine, master_table=master_table, out=out)
    info = IndexInfo(
        path=out, model_id=model_id(model), model_path=out / MODEL,
        year_min=int(year_min), year_max=int(year_max), return_rows=int(return_rows),
        tin_count=int(tin_count), record_count=engine.count(f"{INDEX_SCHEMA}.idx_record"),
        training=training_summary(model),
        quarantined_rows=quarantined,
        tax_years=tuple(int(y) for y, in engine.fetchall(
            f"SELECT DISTINCT tax_year FROM {INDEX_SCHEMA}.idx_return ORDER BY 1")),
    )
    manifest = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(info).items()}
    manifest["path"] = "."
    manifest["model_path"] = MODEL
    manifest["index_version"] = INDEX_VERSION
    manifest["storage"] = storage
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    engine.execute("CHECKPOINT " + INDEX_SCHEMA)
    return info


def _write_quarantine(engine: Engine, *, master_table: str, out: Path) -> int:
    """Write ``out/quarantine.parquet`` (always, empty when no row is quarantined)."""
    positions = "lk_source_row" in engine.columns(master_table)
    sql = quarantine_rows_sql(master_table, positions=positions)
    engine.copy_to_parquet(sql, out / QUARANTINE_FILE)
    rows = engine.count(f"({sql})")
    if rows:
        log.warning("%d master row(s) quarantined (never disclosed, still rivals): written "
                    "to %s; `lastknown master check` lists them", rows, out / QUARANTINE_FILE)
    return rows


def open_index(engine: Engine, path: Path) -> IndexInfo:
    """Attach the index at ``path`` read-only and return what it holds."""
    path = Path(path)
    if not is_index_dir(path):
        raise InputError(f"{path} is not an index folder (no {MANIFEST}); build one with "
                         "`lastknown master index --master MASTER --out INDEX`")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path / MANIFEST}: {exc}; rebuild the index") from exc
    if manifest.get("index_version") != INDEX_VERSION:
        raise ConfigError(f"{path} was built by another lastknown version; rebuild the index")
    storage = str(manifest.get("storage", "duckdb"))
    if storage not in STORAGES:
        raise ConfigError(f"{path / MANIFEST}: unknown storage {storage!r}; rebuild the index")
    engine.attach(_tables_path(path, storage), INDEX_SCHEMA, read_only=True)
    register_nicknames(engine)
    register_given_names(engine)
    return IndexInfo(
        path=path, model_id=str(manifest["model_id"]), model_path=path / MODEL,
        year_min=int(manifest["year_min"]), year_max=int(manifest["year_max"]),
        return_rows=int(manifest["return_rows"]), tin_count=int(manifest["tin_count"]),
        record_count=int(manifest["record_count"]), training=str(manifest.get("training", "")),
        quarantined_rows=int(manifest.get("quarantined_rows", 0)),
        tax_years=tuple(int(y) for y in manifest.get("tax_years", ())),
    )
