"""The publish journal: the runs of `process` in flight, so an interrupted one can be settled.

A run writes one small record, ``<journal>/<key>.json`` (``key``: a digest of the batch
id, compared case-insensitively, so one batch has one record), before it creates
anything that holds people's data, and holds an exclusive ``flock`` on it until it has
finished and removed the record::

    {"batch_id": "B-1", "final_dir": "/abs/response", "staging": "/abs/.response.staging",
     "scratch": "/journal/<key>.scratch", "ledger": "sqlite:/abs/ledger.sqlite",
     "started_at": "2026-11-29T22:00:00+00:00", "pid": 4242}

``scratch`` is the run's private working folder (an index built from a raw master, a
copy of request rows), kept in the journal rather than in ``/tmp`` so that a killed
run's copy is found and removed. A record whose lock nobody holds belongs to a run that
died: :func:`lastknown.disclose.publish.recover_interrupted` settles it (a committed
package delivered, an uncommitted one removed, the scratch folder removed). The
operating system drops a dead process's lock, so a live run is never disturbed.

>>> journal_dir("ledgers/main.sqlite")
PosixPath('ledgers/publishing')
>>> journal_dir("postgresql+psycopg://lk@db/ledger", archive=Path("/srv/lk/archive"))
PosixPath('/srv/lk/archive/publishing')
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastknown.errors import LedgerError
from lastknown.outdirs import fsync_dir
from lastknown.request.batch import batch_key

if TYPE_CHECKING:
    from lastknown.disclose.ledger import Ledger

JOURNAL_FOLDER = "publishing"


def journal_dir(ledger: str, *, archive: Path | None = None) -> Path:
    """Where a deployment's publish journal lives.

    In the deployment's archive when there is one; else next to a SQLite ledger; else
    (a database server and no archive) under the user's data directory.
    """
    if archive is not None:
        return Path(archive) / JOURNAL_FOLDER
    target = ledger
    if target.startswith("sqlite:///"):
        target = target.removeprefix("sqlite:///")
    if "://" not in target:
        return Path(target).expanduser().parent / JOURNAL_FOLDER
    from lastknown.config import default_dirs

    return default_dirs()[1] / JOURNAL_FOLDER


def ledger_identity(ledger: Ledger) -> str:
    """The ledger a record belongs to: a SQLite file's absolute path, else the URL (no password)."""
    url = ledger.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite:{Path(str(url.database)).expanduser().resolve()}"
    return ledger.display_url


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run in flight (see the module docstring)."""

    batch_id: str
    final_dir: str
    staging: str
    scratch: str
    ledger: str
    started_at: str
    pid: int

    @classmethod
    def parse(cls, text: str) -> RunRecord | None:
        """The record in ``text``; None when empty or cut short (a run killed mid-write)."""
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(batch_id=str(data["batch_id"]), final_dir=str(data["final_dir"]),
                       staging=str(data["staging"]), scratch=str(data["scratch"]),
                       ledger=str(data["ledger"]), started_at=str(data["started_at"]),
                       pid=int(data["pid"]))
        except (ValueError, KeyError, TypeError):
            return None


def record_path(journal: Path, batch_id: str) -> Path:
    """The record file of a batch (one per batch id, compared case-insensitively)."""
    key = hashlib.sha256(batch_key(batch_id).encode()).hexdigest()[:24]
    return journal / f"{key}.json"


def record_paths(journal: Path) -> list[Path]:
    """Every record file in the journal, oldest first."""
    if not journal.is_dir():
        return []
    return sorted(journal.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))


class HeldRecord:
    """A record file this process holds the lock of; :meth:`release` removes it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        #: What the file held when locked: a dead run's record, or None (new or unreadable).
        self.found = RunRecord.parse(raw.decode("utf-8", "replace"))

    def write(self, record: RunRecord) -> None:
        """Replace the file's content with ``record``, durably."""
        data = json.dumps(asdict(record), indent=2, sort_keys=True).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.fsync(self._fd)
        fsync_dir(self.path.parent)

    def release(self, *, remove: bool = True) -> None:
        """Remove the record (and, with it, the run's claim), then drop the lock."""
        try:
            if remove:
                self.path.unlink(missing_ok=True)
                fsync_dir(self.path.parent)
        finally:
            os.close(self._fd)


def lock_record(path: Path) -> HeldRecord | None:
    """Lock a record file (creating it empty if missing); None when a live run holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise LedgerError(f"publish journal {path.parent} cannot be created: {exc.strerror}; "
                          "make the folder writable or choose another ledger/archive") from exc
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder removed while we waited to open it
            return HeldRecord(path, fd)
        os.close(fd)


def remove_scratch(record: RunRecord) -> None:
    """Remove a run's scratch folder (idempotent)."""
    shutil.rmtree(record.scratch, ignore_errors=True)

