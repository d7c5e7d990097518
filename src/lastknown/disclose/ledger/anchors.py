"""Ledger heads kept outside the database: the deployment's anchor file and receipts.

A hash chain alone cannot tell that its newest entries were cut off, or that every
hash after an edit was recomputed. Heads written down *elsewhere* can: each one says
"entry #N of this ledger had hash H", and :mod:`.verify` checks that it still has.

Two places hold them:

* the deployment's **anchor file** (``Deployment.anchors``), one JSON object per
  line, appended after every committed batch by :func:`append_anchor`::

      {"hash":"9f…","ledger":"3c…","sequence":1042,"time":"2026-03-01T12:00:00.000000Z"}

  ``ledger`` is :func:`ledger_id`, a digest naming the database (never its password),
  so one file can serve a deployment whose ledger moved without mixing heads up;
* every delivered **receipt** (``receipt.json``; formerly ``summary.json``), whose
  ``ledger_head`` is :func:`head_record` (or, in older packages, a hash string beside
  ``ledger_seq``).

>>> a = anchor_from_receipt({"ledger_head": {"sequence": 7, "hash": "ab" * 32}}, "r.json")
>>> a.sequence, a.hash[:6], a.source, a.ledger
(7, 'ababab', 'r.json', None)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastknown.disclose.ledger.chain import canonical_json, canonical_time
from lastknown.errors import InputError, LedgerError

if TYPE_CHECKING:
    from lastknown.disclose.ledger.store import EntryRef, Ledger

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """One ledger head known from outside: entry ``sequence`` had ``hash``."""

    sequence: int
    hash: str
    #: Where it was read ("anchors.jsonl line 3", "receipt.json"), for messages.
    source: str
    #: :func:`ledger_id` of the ledger it belongs to; None when the source does not say.
    ledger: str | None = None


def head_record(head: EntryRef) -> dict[str, Any]:
    """The ``ledger_head`` value a receipt carries: ``{"sequence": N, "hash": "…"}``."""
    return {"sequence": head.seq, "hash": head.hash}


def ledger_id(ledger: Ledger) -> str:
    """A digest naming the ledger's database (and PostgreSQL schema), never its password.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> len(ledger_id(open_ledger("sqlite:///:memory:")))
    16
    """
    url = ledger.engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database or ":memory:"
        name = database if database == ":memory:" else str(Path(database).resolve())
        identity = f"sqlite:{name}"
    else:
        with ledger.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        identity = (f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/"
                    f"{url.database or ''}?schema={schema}")
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def append_anchor(path: Path, ledger: Ledger, head: EntryRef, *,
                  at: datetime | None = None) -> Anchor:
    """Append ``head`` to the anchor file (created if missing), fsynced before returning.

    Raises :class:`LedgerError` naming the file when it cannot be written; the ledger
    commit it follows stands (a later anchor covers it, the chain links the two).
    """
    lid = ledger_id(ledger)
    line = canonical_json({"ledger": lid, "sequence": head.seq, "hash": head.hash,
                           "time": canonical_time(at or datetime.now(UTC))}) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(path):
                line = "\n" + line  # a torn last line from a crash stays on its own line
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise LedgerError(f"anchor file {path}: could not append the ledger head "
                          f"#{head.seq}: {exc.strerror}; the batch is recorded in the ledger. "
                          "Make the file writable (the next batch anchors both)") from exc
    return Anchor(sequence=head.seq, hash=head.hash, source=f"{path.name}", ledger=lid)


def anchor_once(path: Path, ledger: Ledger, head: EntryRef) -> Anchor | None:
    """Append ``head`` unless the anchor file already holds it for this ledger.

    For recovery, which delivers a package whose run may or may not have anchored its
    head before dying. Returns the new anchor, or None when it was there already. A file
    that cannot be read as anchors is appended to all the same (verification reports it).

    >>> import tempfile
    >>> from lastknown.disclose.ledger import open_ledger
    >>> ledger, folder = open_ledger("sqlite:///:memory:"), Path(tempfile.mkdtemp())
    >>> head = ledger.audit(event_type="report_run", success=True, obj="report")
    >>> anchor_once(folder / "anchors.jsonl", ledger, head).sequence
    1
    >>> anchor_once(folder / "anchors.jsonl", ledger, head) is None
    True
    """
    if path.is_file():
        try:
            known, _other = anchors_for(ledger, read_anchors(path))
        except InputError:
            known = []
        if any((a.sequence, a.hash) == (head.seq, head.hash) for a in known):
            return None
    return append_anchor(path, ledger, head)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _bad(source: str, problem: str) -> InputError:
    return InputError(f"{source}: {problem}; give the deployment's anchor file (JSON lines "
                      "with sequence and hash) or a package's receipt.json/summary.json")


def _anchor(sequence: Any, digest: Any, source: str, ledger: Any = None) -> Anchor:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise _bad(source, f"the ledger sequence must be a positive whole number, got "
                           f"{sequence!r}")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise _bad(source, f"the ledger head hash must be 64 lowercase hex digits, got "
                           f"{str(digest)[:80]!r}")
    if ledger is not None and not isinstance(ledger, str):
        raise _bad(source, f"`ledger` must be a string, got {ledger!r}")
    return Anchor(sequence=sequence, hash=digest, source=source, ledger=ledger)


def anchor_from_receipt(data: Mapping[str, Any], source: str) -> Anchor:
    """The head a receipt.json (``ledger_head`` a dict) or summary.json (a hash string
    beside ``ledger_seq``) carries."""
    head = data.get("ledger_head")
    if isinstance(head, Mapping):
        return _anchor(head.get("sequence", head.get("seq")), head.get("hash"), source)
    if isinstance(head, str):
        return _anchor(data.get("ledger_seq"), head, source)
    raise _bad(source, "has no `ledger_head`")


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in an anchor file, receipt.json or summary.json.

    A last line cut short by a crash (no newline, not JSON) is skipped; any other bad
    line is an :class:`InputError` naming the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"anchor file {path} does not exist; give the deployment's anchor "
                         "file or a delivered receipt.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"anchor file {path} cannot be read: {exc}") from exc
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, Mapping) and "ledger_head" in whole:
        return [anchor_from_receipt(whole, path.name)]
    return list(_anchor_lines(path.name, text))


def _anchor_lines(name: str, text: str) -> Iterable[Anchor]:
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        source = f"{name} line {number}"
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # unterminated last line: a write torn by a crash
                continue
            raise _bad(source, "is not JSON") from None
        if not isinstance(record, Mapping):
            raise _bad(source, "is not a JSON object")
        yield _anchor(record.get("sequence"), record.get("hash"), source, record.get("ledger"))


def anchors_for(ledger: Ledger, anchors: Iterable[Anchor]) -> tuple[list[Anchor], int]:
    """The anchors that apply to ``ledger`` (its id, or no id given) and how many did not."""
    lid = ledger_id(ledger)
    kept, skipped = [], 0
    for anchor in anchors:
        if anchor.ledger is None or anchor.ledger == lid:
            kept.append(anchor)
        else:
            skipped += 1
    return kept, skipped
