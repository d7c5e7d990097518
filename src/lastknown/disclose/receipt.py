"""receipt.json: what the requester can check the package, and the ledger, against.

The one file of the package that is not data: the batch id, the totals (matched,
rejected, not matched — never an outcome code), the ledger head after the batch and
the SHA-256 of every data file. The ledger head lets anyone holding a receipt check
that the ledger was not truncated or rewritten after the batch
(``lastknown ledger verify --anchor receipt.json``). Written by publish, fsynced,
before the ledger transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lastknown.disclose.cells import sha256_file
from lastknown.errors import InputError
from lastknown.outdirs import write_json

RECEIPT_JSON = "receipt.json"


def receipt(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The content of receipt.json, taken from the batch summary.

    The batch id, the totals (matched, rejected, not matched: no outcome codes), the
    ledger head after the batch as ``{"sequence": N, "hash": "..."}`` and the SHA-256
    of every data file. Nothing else: the summary's other keys stay in the record.

    >>> receipt({"batch_id": "B-1", "rows_total": 3, "rows_matched": 1, "rows_rejected": 1,
    ...          "rows_unmatched": 1, "ledger_head": {"sequence": 9, "hash": "ab"},
    ...          "model_id": "internal", "files_sha256": {"matched.csv": "00"}})["totals"]
    {'rows': 3, 'matched': 1, 'rejected': 1, 'not_matched': 1}
    """
    files = summary.get("files_sha256") or {}
    return {
        "batch_id": summary.get("batch_id"),
        "totals": {"rows": summary.get("rows_total"), "matched": summary.get("rows_matched"),
                   "rejected": summary.get("rows_rejected"),
                   "not_matched": summary.get("rows_unmatched")},
        "ledger_head": summary.get("ledger_head"),
        "files_sha256": dict(files),
    }


def write_receipt(out_dir: Path, summary: Mapping[str, Any]) -> str:
    """Write receipt.json (durably) into ``out_dir``; return its SHA-256."""
    write_json(out_dir / RECEIPT_JSON, receipt(summary))
    return sha256_file(out_dir / RECEIPT_JSON)


def read_json_object(path: Path, *, what: str, missing: str) -> dict[str, Any]:
    """A JSON object lastknown wrote (a receipt, a record); InputError naming the file,
    with ``missing`` as the fix when it is not there."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path} is missing: {missing}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not the {what} lastknown writes: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not the {what} lastknown writes (not a JSON object)")
    return data


def read_receipt(out_dir: Path) -> dict[str, Any]:
    """The receipt.json of a package folder; InputError naming the file if unreadable."""
    path = out_dir / RECEIPT_JSON
    data = read_json_object(path, what="receipt",
                            missing="point at a complete response package")
    if not isinstance(data.get("batch_id"), str):
        raise InputError(f"{path} has no batch_id: it is not the receipt lastknown writes")
    return data


def receipt_head(out_dir: Path) -> tuple[int, str] | None:
    """(sequence, hash) of the ledger head a folder's receipt.json names; None if it has none."""
    try:
        head = read_receipt(out_dir)["ledger_head"]
        return int(head["sequence"]), str(head["hash"])
    except (InputError, KeyError, TypeError, ValueError):
        return None


def summary_from_receipt(out_dir: Path) -> dict[str, Any]:
    """The batch summary's counts and head, read back from a package's receipt.json.

    For a package recovered after its internal record was already delivered.
    """
    data = read_receipt(out_dir)
    totals = data.get("totals") or {}
    return {"batch_id": data["batch_id"], "ledger_head": data.get("ledger_head"),
            "rows_total": totals.get("rows"), "rows_matched": totals.get("matched"),
            "rows_rejected": totals.get("rejected"),
            "rows_unmatched": totals.get("not_matched")}
