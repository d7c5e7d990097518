"""The service's settings: the ``[service]`` table of ``lastknown.toml``, then CLI flags.

::

    # lastknown.toml
    [service]
    app_db = "postgresql+psycopg://lk@db/lastknown_app"  # users, sessions, access log
    secure_cookies = true      # false only behind plain http on a laptop (--demo)
    upload_limit_mb = 200      # largest request file accepted
    session_hours = 8          # a session ends this long after login
    master = "master-index"    # the master index requests are matched against
    policy = "policy.toml"     # the base disclosure policy (agency caps/statutes go over it)
    queue = "redis://127.0.0.1:6379/0"  # production job queue; default: embedded SQLite

Without ``app_db`` the app database is a SQLite file beside the deployment's archive
(``service.sqlite``), never in the working directory; the service's own files
(uploads, released packages, the embedded queue) go in ``service-files`` beside it.

>>> from lastknown.config import Deployment
>>> d = Deployment(ledger="/d/ledger.sqlite", archive=Path("/d/archive"),
...                anchors=Path("/d/anchors.jsonl"), source="default")
>>> s = ServiceSettings.from_deployment(d)
>>> s.app_db, s.secure_cookies, s.session_hours, str(s.files_dir)
('/d/service.sqlite', True, 8, '/d/service-files')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from lastknown.config import Deployment
from lastknown.errors import ConfigError

#: ``[service]`` keys and their type; anything else in the table is an error.
SERVICE_KEYS: Mapping[str, type] = {"app_db": str, "secure_cookies": bool,
                                    "upload_limit_mb": int, "session_hours": int,
                                    "master": str, "policy": str, "queue": str,
                                    "failed_input_days": int}
#: ``[service]`` keys that name a file, relative to the deployment file.
_PATH_KEYS = ("master", "policy")


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Everything :func:`lastknown.service.app.create_app` needs."""

    #: The lastknown deployment: ledger, archive, anchors.
    deployment: Deployment
    #: SQLAlchemy URL or SQLite path of the app database (users, sessions, access log).
    app_db: str
    #: Session cookies carry ``Secure``; off only with ``--demo`` on loopback http.
    secure_cookies: bool = True
    #: Largest request upload accepted, in MiB.
    upload_limit_mb: int = 200
    #: A session expires this many hours after login.
    session_hours: int = 8
    #: Demo mode: say so on every page; cookies without ``Secure``.
    demo: bool = False
    #: Argon2 cost: ``"standard"`` (pwdlib's recommended parameters) always in service;
    #: ``"minimal"`` is still Argon2id, with the smallest cost, for the test suite only.
    password_cost: Literal["standard", "minimal"] = "standard"
    #: The master index batches are matched against (None: submitting is refused).
    master: Path | None = None
    #: The base disclosure policy file (None: the built-in defaults); an agency's
    #: statutes and caps (set by the administrator) are laid over it per batch.
    policy: Path | None = None
    #: The production job queue (``redis://HOST:PORT/DB``, run by ``lastknown worker``);
    #: None: an embedded SQLite queue run by threads of the web process.
    queue: str | None = None
    #: Folder of uploads, released packages and the embedded queue (None: ``service-files``
    #: beside the archive).
    files: Path | None = None
    #: A submission whose preparation failed keeps its uploaded file this many days (it
    #: can be retried until then), then the file is deleted (docs/JOBS.md).
    failed_input_days: int = 30

    @property
    def files_dir(self) -> Path:
        """Where the service keeps its own files (:attr:`files`)."""
        return self.files or self.deployment.archive.parent / "service-files"

    @classmethod
    def from_deployment(cls, deployment: Deployment, **overrides: Any) -> ServiceSettings:
        """Read ``[service]`` of the deployment file; ``overrides`` (CLI flags) win when not
        None."""
        values: dict[str, Any] = {}
        where = deployment.path or "the deployment config"
        for key, value in deployment.service.items():
            kind = SERVICE_KEYS.get(key)
            if kind is None:
                raise ConfigError(f"{where}: unknown key `{key}` in [service]; known keys: "
                                  f"{', '.join(SERVICE_KEYS)}")
            if type(value) is not kind or (kind is int and isinstance(value, int) and value <= 0):
                raise ConfigError(f"{where}: [service] `{key}` must be a "
                                  f"{'positive integer' if kind is int else kind.__name__}, "
                                  f"got {value!r}")
            values[key] = value
        if "app_db" in values and "://" not in values["app_db"] and deployment.path:
            path = Path(values["app_db"]).expanduser()
            values["app_db"] = str(path if path.is_absolute() else deployment.path.parent / path)
        values.setdefault("app_db", str(deployment.archive.parent / "service.sqlite"))
        for key in _PATH_KEYS:
            if key in values:
                path = Path(values[key]).expanduser()
                base = deployment.path.parent if deployment.path else Path.cwd()
                values[key] = path if path.is_absolute() else base / path
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(deployment=deployment, **values)

    def with_(self, **changes: Any) -> ServiceSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def worker_targets(self) -> tuple[str, str]:
        """(job database URL, queue URL) for ``lastknown worker``: the app database and
        the production queue of ``[service]``.

        >>> from lastknown.config import Deployment
        >>> d = Deployment(ledger="l.sqlite", archive=Path("/srv/a"), anchors=Path("/srv/n"),
        ...                source="default")
        >>> ServiceSettings.from_deployment(d, queue="redis://127.0.0.1:6379/0").worker_targets()
        ('sqlite:////srv/service.sqlite', 'redis://127.0.0.1:6379/0')
        """
        if not self.queue:
            where = self.deployment.path or "the deployment config"
            raise ConfigError(f"{where} names no [service] queue: the embedded queue runs "
                              "inside `lastknown serve`; for separate workers set `queue = "
                              "\"redis://HOST:PORT/DB\"` under [service] or pass --queue")
        database = self.app_db if "://" in self.app_db else f"sqlite:///{self.app_db}"
        return database, self.queue
