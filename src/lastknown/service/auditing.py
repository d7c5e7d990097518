"""What the auditor reads: ledger verify with the deployment's anchors, the yearly report,
one taxpayer's accounting. Thin calls into :mod:`lastknown.disclose.ledger`.

Each opens the deployment's ledger read-only (it is never created here) and lets the
ledger record its own audit event (``ledger_verified``, ``report_run``,
``taxpayer_report_run``) naming the signed-in auditor and their address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from lastknown.config import Deployment
from lastknown.disclose.ledger import Ledger, open_ledger
from lastknown.disclose.ledger.anchors import Anchor, anchors_for, read_anchors
from lastknown.disclose.ledger.reports import report, taxpayer_disclosures
from lastknown.disclose.ledger.verify import verify_ledger
from lastknown.errors import LedgerError, LedgerTamperedError
from lastknown.service.errors import ApiError


@contextmanager
def deployment_ledger(deployment: Deployment) -> Iterator[Ledger]:
    """The deployment's ledger, or a 503 saying why it cannot be opened."""
    try:
        ledger = open_ledger(deployment.ledger)
    except LedgerError as exc:
        raise ApiError(503, "ledger_unavailable", str(exc)) from None
    try:
        yield ledger
    finally:
        ledger.close()


def verify(deployment: Deployment, *, user: str, origin: str) -> dict[str, Any]:
    """Recompute the chain and check every anchor of this ledger in the anchor file.

    Returns ``{"ok": bool, ...}``: a tampered ledger is a finding, not an error.
    """
    with deployment_ledger(deployment) as ledger:
        anchors: list[Anchor] = []
        if deployment.anchors.is_file():
            anchors, _ = anchors_for(ledger, read_anchors(deployment.anchors))
        try:
            result = verify_ledger(ledger, anchors=anchors, record=False)
        except LedgerTamperedError as exc:
            ledger.audit(event_type="ledger_verified", success=False, obj="ledger",
                         detail="tampered", user=user, origin=origin)
            return {"ok": False, "ledger": ledger.display_url, "problem": str(exc),
                    "anchor_file": str(deployment.anchors)}
        ledger.audit(event_type="ledger_verified", success=True, obj="ledger",
                     detail=f"{result.entries} entries, head #{result.head_seq}", user=user,
                     origin=origin)
        return {**asdict(result), "anchor_file": str(deployment.anchors)}


def yearly_report(deployment: Deployment, year: int, *, user: str,
                  origin: str) -> list[dict[str, Any]]:
    """The 6103(p)(3)(C) figures per agency for one calendar year."""
    with deployment_ledger(deployment) as ledger:
        return [asdict(r) for r in report(ledger, year=year, user=user, origin=origin)]


def accounting(deployment: Deployment, tin: str, *, user: str,
               origin: str) -> list[dict[str, Any]]:
    """One taxpayer's disclosures, keyed by batch and date; the TIN itself is not returned.

    Raises :class:`~lastknown.errors.InputError` (a message without the value) when the
    TIN is not 9 digits.
    """
    with deployment_ledger(deployment) as ledger:
        found = taxpayer_disclosures(ledger, tin, user=user, origin=origin)
        return [asdict(d) for d in found]
