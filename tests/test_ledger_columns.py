"""Entries prepared column-wise (publish's disclosures) are the rows and payloads the generic,
record-at-a-time preparation makes: the same typed values, byte-for-byte the same JSON."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lastknown.disclose.ledger.chain import COLUMNS_BY_KIND, EntryKind, canonical_json
from lastknown.disclose.ledger.store import prepare_columns, prepare_entries
from lastknown.disclose.publish import address_sha256
from lastknown.errors import PipelineError

AWKWARD = ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline\r", "ctrl \x00\x01\x1f\x7f",
           "Ñandú 漢字 😀", "\u2028\u2029 separators", "per%cent %s %%", "\ud7ff\ue000", "/slash/"]
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _disclosures(n: int) -> dict[str, list[Any]]:
    return {"request_row_id": [AWKWARD[i % len(AWKWARD)] + f"#{i}" for i in range(n)],
            "tin": [f"{900_000_000 + i:09d}" for i in range(n)],
            "address_tax_year": [2000 + i % 30 for i in range(n)],
            "address_sha256": [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)],
            "request_statute": [None if i % 4 == 0 else AWKWARD[-1 - i % len(AWKWARD)]
                                for i in range(n)]}


def _records(constants: dict[str, Any], columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    n = len(next(iter(columns.values())))
    return [{**constants, **{k: v[i] for k, v in columns.items()}} for i in range(n)]


DISCLOSURE_CONSTANTS = {"batch_id": "B-%1 \"x\"", "fields": ["street", "unit", "city"],
                        "legal_authority": "26 U.S.C. 6103(i)(2)", "recipient": "Agency Ä",
                        "disclosed_at": T0}


@pytest.mark.parametrize(("kind", "constants", "columns"), [
    ("disclosure", DISCLOSURE_CONSTANTS, _disclosures(60)),
    # a time given in another zone, and as its canonical text
    ("disclosure", {**DISCLOSURE_CONSTANTS,
                    "disclosed_at": T0.astimezone(timezone(timedelta(hours=-5)))},
     _disclosures(7)),
    ("disclosure", {**DISCLOSURE_CONSTANTS, "disclosed_at": "2026-03-01T12:00:00.123456Z"},
     _disclosures(3)),
    # every kind of column varying: times, bools, JSON, ints, text
    ("audit", {"origin": "host"}, {
        "event_time": [T0 + timedelta(seconds=i) for i in range(len(AWKWARD))],
        "user_name": AWKWARD, "event_type": ["t"] * len(AWKWARD),
        "success": [i % 2 == 0 for i in range(len(AWKWARD))],
        "object": list(reversed(AWKWARD)), "detail": [None, *AWKWARD[1:]]}),
    ("batch", {k: None for k in COLUMNS_BY_KIND["batch"] if k not in (
        "batch_id", "statutes", "rows_total", "policy", "received_at", "certified")}, {
        "batch_id": ["B1", "B2"], "statutes": [["8 U.S.C. 1326"], []], "rows_total": [0, 10**12],
        "policy": [{"b": 1, "a": [1.5, None, "x"]}, '{"z": 1, "a": true}'],
        "received_at": [T0, None], "certified": [True, False]}),
    ("disclosure", DISCLOSURE_CONSTANTS, {k: [] for k in _disclosures(1)}),
])
def test_column_wise_preparation_is_the_record_wise_one(
        kind: EntryKind, constants: dict[str, Any], columns: dict[str, list[Any]]) -> None:
    fast = prepare_columns(kind, constants, columns)
    slow = prepare_entries(kind, _records(constants, columns))
    assert fast.kind == slow.kind == kind
    assert len(fast.rows) == len(next(iter(columns.values())))
    assert fast.rows == slow.rows  # typed values and payload text alike


@pytest.mark.parametrize(("constants", "columns"), [
    ({"batch_id": "B"}, {"tin": ["1"]}),  # fields missing
    ({**DISCLOSURE_CONSTANTS, "tin": "1"}, {"tin": ["1"], **{k: ["x"] for k in (
        "request_row_id", "address_tax_year", "address_sha256", "request_statute")}}),
    (DISCLOSURE_CONSTANTS, {**_disclosures(2), "tin": ["1"]}),  # columns of unequal length
])
def test_columns_that_do_not_split_the_fields_are_refused(
        constants: dict[str, Any], columns: dict[str, list[Any]]) -> None:
    with pytest.raises(PipelineError, match="must split the fields"):
        prepare_columns("disclosure", constants, columns)


@pytest.mark.parametrize("address", [
    ["1 Main St", None, "Town", "IL", "62701"], AWKWARD[:5], [None] * 5, ["x", 5, 1.5, None, "z"]])
def test_the_address_digest_is_sha256_of_the_canonical_json(address: list[Any]) -> None:
    assert address_sha256(address) == hashlib.sha256(
        canonical_json(address).encode()).hexdigest()
