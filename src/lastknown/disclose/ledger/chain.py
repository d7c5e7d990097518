"""The hash chain: canonical payloads and entry hashes, shared by writer and verifier.

Every ledger record (batch, disclosure, audit event) is one *entry*: a strictly
increasing ``seq``, a ``kind``, a canonical JSON ``payload`` and
``hash = SHA-256(prev_hash \\n seq \\n kind \\n payload)``, where ``prev_hash``
is the hash of the entry before it (:data:`GENESIS_HASH` for the first).
The payload's keys are exactly the columns of the entry's typed table, so the
typed row can be rebuilt from the payload and checked against it.

>>> payload = canonical_payload({"b": 1, "a": "x"})
>>> payload
'{"a":"x","b":1}'
>>> entry_hash(GENESIS_HASH, 1, "audit", payload)[:12]
'4232e1b5abbc'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import repeat
from json.encoder import encode_basestring
from typing import Any, Literal

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""

EntryKind = Literal["batch", "disclosure", "audit"]

#: How each typed column is written into the canonical payload.
ColumnKind = Literal["str", "int", "bool", "time", "json"]

BATCH_COLUMNS: dict[str, ColumnKind] = {
    "batch_id": "str", "agency": "str", "requesting_official": "str",
    "official_title": "str", "certified": "bool", "certification": "str",
    "statutes": "json", "reason": "str", "source_file": "str", "source_sha256": "str",
    "rows_total": "int", "rows_valid": "int", "rows_rejected": "int",
    "rows_disclosed": "int", "rows_unmatched": "int", "rejections_by_reason": "json",
    "policy": "json", "received_at": "time", "finished_at": "time", "operator": "str",
    "origin": "str", "package": "str",
}
DISCLOSURE_COLUMNS: dict[str, ColumnKind] = {
    "batch_id": "str", "request_row_id": "str", "tin": "str", "fields": "json",
    "address_tax_year": "int", "address_sha256": "str", "legal_authority": "str",
    "request_statute": "str", "recipient": "str", "disclosed_at": "time",
}
AUDIT_COLUMNS: dict[str, ColumnKind] = {
    "event_time": "time", "user_name": "str", "event_type": "str", "success": "bool",
    "origin": "str", "object": "str", "detail": "str",
}
COLUMNS_BY_KIND: dict[EntryKind, dict[str, ColumnKind]] = {
    "batch": BATCH_COLUMNS, "disclosure": DISCLOSURE_COLUMNS, "audit": AUDIT_COLUMNS,
}


@lru_cache(maxsize=1024)  # a batch's disclosures share one time: format it once
def canonical_time(value: datetime) -> str:
    """UTC, microseconds, ``Z``: one spelling per instant. Naive times are taken as UTC.

    >>> canonical_time(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    '2026-03-01T12:00:00.000000Z'
    """
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=1024)
def parse_time(text: str) -> datetime:
    """The inverse of :func:`canonical_time` (an aware UTC datetime)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text kept as is: the bytes that are hashed."""
    return _CANONICAL.encode(value)


def canonical_payload(values: Mapping[str, Any]) -> str:
    """The canonical JSON of one entry's payload (see :func:`canonical_json`)."""
    return canonical_json(dict(values))


def entry_hash(prev_hash: str, seq: int, kind: str, payload: str) -> str:
    """SHA-256 over the previous hash, the sequence number, the kind and the payload."""
    digest = hashlib.sha256()
    digest.update(f"{prev_hash}\n{seq}\n{kind}\n".encode())
    digest.update(payload.encode("utf-8"))
    return digest.hexdigest()


def payload_value(kind: ColumnKind, value: Any) -> Any:
    """A typed column's value as it appears in the canonical payload."""
    if value is None:
        return None
    if kind == "time":
        return canonical_time(value)
    if kind == "json":
        return json.loads(value) if isinstance(value, str) else value
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def column_value(kind: ColumnKind, value: Any) -> Any:
    """A payload value as it is stored in the typed column."""
    if value is None:
        return None
    if kind == "time":  # always stored as UTC, so every backend reads back the same instant
        return parse_time(value if isinstance(value, str) else canonical_time(value))
    if kind == "json":
        return canonical_json(value)
    return value


def payload_of(kind: EntryKind, typed_row: Mapping[str, Any]) -> str:
    """The canonical payload of a typed row (column values as stored or as given)."""
    columns = COLUMNS_BY_KIND[kind]
    return canonical_payload({name: payload_value(k, typed_row[name])
                              for name, k in columns.items()})


def typed_row_of(kind: EntryKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """The typed-table row for a record given in payload form (times as datetimes ok)."""
    columns = COLUMNS_BY_KIND[kind]
    unknown = set(values) - set(columns)
    missing = set(columns) - set(values)
    if unknown or missing:
        from lastknown.errors import PipelineError

        raise PipelineError(f"ledger {kind} record: unknown fields {sorted(unknown)}, "
                            f"missing fields {sorted(missing)}")
    return {name: column_value(k, values[name]) for name, k in columns.items()}


def _fragment(kind: ColumnKind, value: Any) -> tuple[Any, str]:
    """A value's typed form and its canonical JSON, as the generic path makes them."""
    typed = column_value(kind, value)
    return typed, canonical_json(payload_value(kind, typed))


def typed_rows_of_columns(kind: EntryKind, constants: Mapping[str, Any],
                          columns: Mapping[str, Sequence[Any]],
                          ) -> list[tuple[tuple[Any, ...], str]]:
    """``(typed values, payload)`` per row of records given column-wise, the same as
    :func:`typed_row_of` and :func:`payload_of` give for each record
    ``{**constants, name: columns[name][i]}`` — about five times faster: the constants are
    typed and encoded once, and each payload is one ``%`` format of its JSON fragments.

    >>> typed_rows_of_columns("audit", {"event_time": "2026-01-01T00:00:00.000000Z",
    ...     "user_name": "u", "event_type": "t", "success": True, "origin": "o",
    ...     "object": "x"}, {"detail": ['say "hi"', None]})[0][1]
    '{"detail":"say \\\\"hi\\\\"","event_time":"2026-01-01T00:00:00.000000Z",...}'
    """
    names = COLUMNS_BY_KIND[kind]
    lengths = {len(values) for values in columns.values()}
    if set(constants) & set(columns) or set(constants) | set(columns) != set(names) or len(
            lengths) > 1:
        from lastknown.errors import PipelineError

        raise PipelineError(f"ledger {kind} columns: constants {sorted(constants)} and "
                            f"columns {sorted(columns)} (of lengths {sorted(lengths)}) must "
                            f"split the fields {list(names)} between them")
    rows = lengths.pop() if lengths else 1
    typed: dict[str, Any] = {}  # per field: the typed values (a constant's repeated)
    fragments: dict[str, Any] = {}  # per field: JSON text (a constant's, once) or a list
    for name, kind_of in names.items():
        if name in constants:
            value, text = _fragment(kind_of, constants[name])
            typed[name], fragments[name] = repeat(value, rows), text.replace("%", "%%")
        elif kind_of == "str":  # as column_value and payload_value, without the calls
            values = columns[name]
            typed[name] = values
            fragments[name] = ["null" if v is None else encode_basestring(str(v))
                               for v in values]
        elif kind_of == "int":
            values = columns[name]
            typed[name] = values
            fragments[name] = ["null" if v is None else str(int(v)) for v in values]
        else:
            pairs = [_fragment(kind_of, v) for v in columns[name]]
            typed[name] = [p[0] for p in pairs]
            fragments[name] = [p[1] for p in pairs]
    template = "{" + ",".join(
        f"{encode_basestring(name)}:" + (text if isinstance(text := fragments[name], str)
                                          else "%s") for name in sorted(names)) + "}"
    varying = [fragments[name] for name in sorted(names) if not isinstance(fragments[name], str)]
    payloads = ([template % values for values in zip(*varying, strict=True)] if varying
                else [template % ()] * rows)
    return list(zip(zip(*(typed[name] for name in names), strict=True), payloads, strict=True))
