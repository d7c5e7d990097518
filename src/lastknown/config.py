"""The deployment configuration: where the ledger, the archive and the anchors live.

A deployment's system of record is a *setting*, never an accident of the working
directory. It is read from one TOML file, found in this order:

1. ``--config-file PATH`` (``load_deployment(PATH)``);
2. the ``LASTKNOWN_CONFIG`` environment variable;
3. ``lastknown.toml`` in the user's config directory (``platformdirs``).

Without a file, a per-user default under the user's data directory is used, and every
command that uses it prints where it is (:meth:`Deployment.describe`)::

    # lastknown.toml
    ledger = "postgresql+psycopg://lk@db/ledger"   # or a SQLite path
    archive = "/srv/lastknown/archive"             # internal records, kept beside the ledger
    anchors = "/srv/lastknown/anchors.jsonl"       # append-only ledger-head anchors

    [service]                                      # `lastknown serve` (lastknown.service)
    app_db = "postgresql+psycopg://lk@db/lastknown_app"

    [spark]                                        # --engine spark (:class:`SparkSettings`)
    master = "spark://head:7077"                   # default local[N]; --spark-master wins
    checkpoint_dir = "/shared/lastknown/checkpoints"
    shuffle_partitions = 400
    conf = { "spark.executor.memory" = "16g" }

Relative paths in the file are read relative to the file's folder.

>>> d = load_deployment(None, env={}, user_config_dir=Path("/nonexistent"),
...                     user_data_dir=Path("/data"))
>>> d.source, d.ledger, str(d.archive)
('default', '/data/ledger.sqlite', '/data/archive')
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lastknown.errors import ConfigError

ENV_VAR = "LASTKNOWN_CONFIG"
FILE_NAME = "lastknown.toml"
APP_NAME = "lastknown"
#: Keys a deployment file may carry; anything else is an error (a typo must not
#: silently send disclosures to a default ledger).
KEYS: tuple[str, ...] = ("ledger", "archive", "anchors")
#: Tables a deployment file may carry; their own keys are checked by their reader
#: (``[service]``: :mod:`lastknown.service.settings`).
TABLES: tuple[str, ...] = ("service", "spark")


@dataclass(frozen=True, kw_only=True)
class SparkSettings:
    """How ``--engine spark`` reaches Spark (the ``[spark]`` table of lastknown.toml).

    ``master`` None: ``local[N]`` (N = ``--threads``, else 2); ``conf`` any Spark setting
    (``spark.executor.memory`` ...); ``checkpoint_dir`` where checkpointed tables and
    Splink's intermediate tables go (on a cluster: storage every executor reaches; None: a
    temporary folder); ``shuffle_partitions`` ``spark.sql.shuffle.partitions``.
    """

    master: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    checkpoint_dir: Path | None = None
    shuffle_partitions: int | None = None

    def with_master(self, master: str | None) -> SparkSettings:
        """The same settings with ``--spark-master`` (when given) as the master."""
        return replace(self, master=master) if master else self


#: Keys of the ``[spark]`` table.
SPARK_KEYS: tuple[str, ...] = ("master", "conf", "checkpoint_dir", "shuffle_partitions")


def spark_settings(table: Mapping[str, Any], *, base: Path,
                   where: Path | None = None) -> SparkSettings:
    """The ``[spark]`` table read and checked (relative ``checkpoint_dir`` from ``base``).

    >>> spark_settings({"master": "local[4]", "shuffle_partitions": 8}, base=Path("/x"))
    SparkSettings(master='local[4]', conf={}, checkpoint_dir=None, shuffle_partitions=8)
    >>> spark_settings({"workers": 3}, base=Path("/x"))
    Traceback (most recent call last):
    ...
    lastknown.errors.ConfigError: [spark]: unknown key `workers`; known keys: master, conf, \
checkpoint_dir, shuffle_partitions
    """
    at = f"{where}: [spark]" if where else "[spark]"
    for key in table:
        if key not in SPARK_KEYS:
            raise ConfigError(f"{at}: unknown key `{key}`; known keys: {', '.join(SPARK_KEYS)}")
    master = table.get("master")
    if master is not None and (not isinstance(master, str) or not master.strip()):
        raise ConfigError(f"{at}: `master` must be a Spark master URL, got {master!r}")
    conf = table.get("conf", {})
    if not isinstance(conf, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool))
            for k, v in conf.items()):
        raise ConfigError(f"{at}: `conf` must be a table of Spark settings, got {conf!r}")
    checkpoint = table.get("checkpoint_dir")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise ConfigError(f"{at}: `checkpoint_dir` must be a folder, got {checkpoint!r}")
    partitions = table.get("shuffle_partitions")
    if partitions is not None and (isinstance(partitions, bool)
                                   or not isinstance(partitions, int) or partitions < 1):
        raise ConfigError(f"{at}: `shuffle_partitions` must be a positive integer, "
                          f"got {partitions!r}")
    return SparkSettings(
        master=master.strip() if master else None,
        conf={k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in conf.items()},
        checkpoint_dir=_resolve(base, checkpoint) if checkpoint else None,
        shuffle_partitions=partitions)


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Where one deployment keeps its system of record."""

    #: SQLAlchemy URL or SQLite path of the disclosure ledger.
    ledger: str
    #: Folder of internal records (one sub-folder per batch) and held packages.
    archive: Path
    #: Append-only file of ledger heads, kept outside the database.
    anchors: Path
    #: ``"--config-file"``, ``"LASTKNOWN_CONFIG"``, ``"user config"`` or ``"default"``.
    source: str
    #: The file read, if any.
    path: Path | None = None
    #: The ``[service]`` table as read (checked by :mod:`lastknown.service.settings`).
    service: Mapping[str, Any] = field(default_factory=dict)
    #: The ``[spark]`` table, checked (:class:`SparkSettings`).
    spark: SparkSettings = field(default_factory=lambda: SparkSettings())

    def with_ledger(self, ledger: str | Path) -> Deployment:
        """The same deployment with an explicit ``--ledger`` override (named as the source).

        >>> d = Deployment(ledger="/a.sqlite", archive=Path("/ar"), anchors=Path("/an"),
        ...                source="default")
        >>> d.with_ledger("/tmp/l.sqlite").describe()
        'Ledger: /tmp/l.sqlite [from --ledger]'
        """
        return replace(self, ledger=str(ledger), source="--ledger", path=None)

    def describe(self) -> str:
        """One line saying which ledger is used and why (printed by commands that use it)."""
        where = f" ({self.path})" if self.path else ""
        return f"Ledger: {_redact(self.ledger)} [from {self.source}{where}]"


def _redact(url: str) -> str:
    """Hide a password in a database URL before it is printed."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def default_dirs() -> tuple[Path, Path]:
    """The user's config and data directories for lastknown."""
    import platformdirs

    return (Path(platformdirs.user_config_dir(APP_NAME)),
            Path(platformdirs.user_data_dir(APP_NAME)))


def load_deployment(config_file: Path | None = None, *, env: Mapping[str, str] | None = None,
                    user_config_dir: Path | None = None,
                    user_data_dir: Path | None = None) -> Deployment:
    """Find and read the deployment configuration (module docstring for the order).

    Raises :class:`ConfigError` naming the file and key when the file cannot be read, has
    an unknown key, or a value of the wrong type; a named file that does not exist is an
    error too (it is never created).
    """
    env = os.environ if env is None else env
    if user_config_dir is None or user_data_dir is None:
        cfg_dir, data_dir = default_dirs()
        user_config_dir = user_config_dir or cfg_dir
        user_data_dir = user_data_dir or data_dir
    path: Path | None
    if config_file is not None:
        path, source = Path(config_file), "--config-file"
    elif env.get(ENV_VAR):
        path, source = Path(env[ENV_VAR]), ENV_VAR
    else:
        candidate = user_config_dir / FILE_NAME
        path, source = (candidate, "user config") if candidate.is_file() else (None, "default")
    values: dict[str, str] = {}
    tables: dict[str, dict[str, Any]] = {}
    if path is not None:
        values, tables = _read(path, source)
    base = path.parent if path is not None else user_data_dir
    ledger = values.get("ledger") or str(user_data_dir / "ledger.sqlite")
    if "://" not in ledger:
        ledger = str(_resolve(base, ledger))
    return Deployment(
        ledger=ledger,
        archive=_resolve(base, values.get("archive") or str(user_data_dir / "archive")),
        anchors=_resolve(base, values.get("anchors") or str(user_data_dir / "anchors.jsonl")),
        source=source, path=path, service=tables.get("service", {}),
        spark=spark_settings(tables.get("spark", {}), base=base, where=path))


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _read(path: Path, source: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    if not path.is_file():
        raise ConfigError(f"deployment config {path} (from {source}) does not exist; create it "
                          f"or unset {source}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read deployment config {path}: {exc}") from exc
    values: dict[str, str] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: `{key}` must be a table ([{key}]), got {value!r}")
            tables[key] = value
            continue
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key `{key}`; known keys: "
                              f"{', '.join(KEYS)} and the table(s) [{'], ['.join(TABLES)}]")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: `{key}` must be a non-empty string, got {value!r}")
        values[key] = value.strip()
    return values, tables
