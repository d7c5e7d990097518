"""Held batches: matched, waiting for a disclosure officer (prepare → review → release).

One folder per batch in the deployment's archive, created by
:func:`lastknown.workflow.prepare` (written in a staging sibling, then renamed)::

    <archive>/held/<batch>/     <batch> = record_name(batch_id), as for the internal record
        state.json      BatchState: held | released | denied, who submitted, who decided, when
        prepared.json   what release needs besides the tables: the batch metadata, the
                        policy decision, the batch summary, the package's own summary
                        (counts, file digests), intake and validation counts, the ledger
                        it was checked against, what the batch taught the matcher
        release.json    written just before a release starts publishing: approver, --out
        package/        matched.csv, matched.xlsx, unmatched.csv, rejected.csv (the data
                        files; receipt.json is written at release, with the ledger head)
        tables/         Parquet (internal, TINs included, never sent): match_result,
                        request_valid, request_rejected, match_explanation, lk_scored
                        (source_row, tin), review_names (masked names, no TIN)
        review.json     the review as the officer saw it when deciding (no TIN)

``state.json`` is written atomically (temporary file, fsync, rename, fsync of the folder).
A denied batch loses ``package/`` and ``tables/`` (nothing can ever leave); a released
one too, once its package and internal record are delivered. The folder is owner-only:
its tables hold TINs.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from lastknown.disclose.receipt import read_json_object
from lastknown.disclose.record import record_name
from lastknown.engines.base import Engine
from lastknown.errors import InputError, PolicyError
from lastknown.outdirs import write_json

HELD_FOLDER = "held"
STATE_JSON, PREPARED_JSON, RELEASE_JSON = "state.json", "prepared.json", "release.json"
REVIEW_JSON = "review.json"
PACKAGE, TABLES = "package", "tables"
STATUSES = ("held", "released", "denied")
Status = Literal["held", "released", "denied"]
#: Engine tables a release reads back, and the columns kept of each (``*``: all).
HELD_TABLES: dict[str, str] = {
    "match_result": "*", "request_valid": "*", "request_rejected": "*",
    "match_explanation": "*", "lk_scored": "DISTINCT source_row, tin",
    "review_names": "*",
}


@dataclass(frozen=True, kw_only=True)
class BatchState:
    """Where a prepared batch stands. Never holds a TIN or a requested person's name.

    >>> s = BatchState(batch_id="B-1", status="held", requesting_agency="ICE",
    ...                requesting_official="Dana", submitted_by="alice",
    ...                submitted_at="2026-11-30T01:00:00+00:00", rows_total=3)
    >>> BatchState.from_dict(s.as_dict()) == s
    True
    """

    batch_id: str
    status: Status
    requesting_agency: str
    requesting_official: str
    submitted_by: str
    submitted_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    deny_reason: str | None = None
    rows_total: int = 0
    rows_matched: int = 0
    rows_unmatched: int = 0
    rows_rejected: int = 0
    request_sha256: str = ""
    #: The released package's folder (absolute), once released.
    released_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchState:
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        if state.status not in STATUSES:
            raise InputError(f"held batch {state.batch_id}: unknown status {state.status!r}")
        return state

    def decided(self, status: Status, *, by: str, at: str, **changes: Any) -> BatchState:
        """The state after a decision."""
        return replace(self, status=status, decided_by=by, decided_at=at, **changes)


def held_root(archive: Path) -> Path:
    """The folder of every held batch of a deployment."""
    return archive / HELD_FOLDER


def held_dir(archive: Path, batch_id: str) -> Path:
    """The folder of one held batch (batch ids compare case-insensitively)."""
    return held_root(archive) / record_name(batch_id)


def read_state(folder: Path) -> BatchState:
    return BatchState.from_dict(read_json_object(folder / STATE_JSON, what="held batch state",
                                                 missing="not a held batch"))


def write_state(folder: Path, state: BatchState) -> None:
    """Replace state.json atomically and durably (:func:`write_json`)."""
    write_json(folder / STATE_JSON, state.as_dict())


def require_held(state: BatchState, action: str) -> BatchState:
    """PolicyError (exit 3) unless the batch is still held."""
    if state.status != "held":
        by = f" by {state.decided_by}" if state.decided_by else ""
        raise PolicyError(f"batch {state.batch_id} was {state.status}{by} on "
                          f"{state.decided_at}: only a held batch can be {action}")
    return state


def check_reason(reason: str) -> str:
    """A denial's reason: required, one paragraph, no TIN-like number (it goes in the ledger).

    >>> check_reason("  statute  not covered ")
    'statute not covered'
    """
    text = " ".join(str(reason or "").split())
    if not text:
        raise InputError("a denial needs a reason: say why the batch is refused (recorded)")
    if re.search(r"\d{3}-?\d{2}-?\d{4}", text):
        raise InputError("the reason contains a number shaped like a TIN; leave it out (the "
                         "reason is recorded in the ledger and shown on the batch)")
    return text


def read_review(folder: Path) -> dict[str, Any] | None:
    """The review kept when the batch was decided, if any."""
    if not (folder / REVIEW_JSON).is_file():
        return None
    return read_json_object(folder / REVIEW_JSON, what="kept review", missing="")


def write_review(folder: Path, review: dict[str, Any]) -> None:
    write_json(folder / REVIEW_JSON, review)


def read_prepared(folder: Path) -> dict[str, Any]:
    return read_json_object(folder / PREPARED_JSON, what="prepared batch",
                            missing="the held batch is incomplete; prepare it again under a "
                                    "new batch id")


def write_prepared(folder: Path, data: dict[str, Any]) -> None:
    write_json(folder / PREPARED_JSON, data)


def read_release(folder: Path) -> dict[str, Any] | None:
    """The release intent, if a release of this batch was started."""
    if not (folder / RELEASE_JSON).is_file():
        return None
    return read_json_object(folder / RELEASE_JSON, what="release intent", missing="")


def write_release(folder: Path, data: dict[str, Any]) -> None:
    write_json(folder / RELEASE_JSON, data)


def all_held(archive: Path) -> list[Path]:
    """Every held batch folder (complete ones: with a state.json), by name."""
    root = held_root(archive)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / STATE_JSON).is_file()
                  and not p.name.startswith("."))


def save_tables(engine: Engine, folder: Path) -> None:
    """Write the tables a release and a review need into ``folder/tables`` (Parquet)."""
    target = folder / TABLES
    target.mkdir(mode=0o700)
    for table, columns in HELD_TABLES.items():
        if engine.table_exists(table):
            engine.copy_to_parquet(f"SELECT {columns} FROM {table}", target / f"{table}.parquet")


def load_tables(engine: Engine, folder: Path) -> None:
    """Create the held tables in a fresh engine, under the names the publish protocol reads."""
    source = folder / TABLES
    if not source.is_dir():
        raise InputError(f"{source} is missing: the held batch's tables are gone (released "
                         "or denied already?)")
    for table in HELD_TABLES:
        path = source / f"{table}.parquet"
        if path.is_file():
            engine.register_parquet(f"{table}_held", path)
            engine.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_held")


def drop_data(folder: Path) -> None:
    """Delete the held package and tables (after a release, or at a denial)."""
    for name in (PACKAGE, TABLES):
        shutil.rmtree(folder / name, ignore_errors=True)
