"""Reports: yearly per-agency figures and one taxpayer's disclosures match what was disclosed."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger.models import audit_events
from lastknown.disclose.ledger.reports import (
    render_report,
    render_taxpayer,
    report,
    taxpayer_disclosures,
    write_report_csv,
)
from lastknown.disclose.policy import Policy
from lastknown.disclose.publish import publish
from lastknown.errors import InputError
from test_ledger_fixtures import (
    AGENCY,
    BACKENDS,
    FakeBatch,
    decision_for,
    engine_with_results,
    ledger_at,
    publish_kwargs,
    synthetic_tin,
)

OTHER = "Agency B"
POLICY = Policy(statutes_by_agency={AGENCY: ("8 U.S.C. 1253(a)(1)",),
                                    OTHER: ("8 U.S.C. 1253(a)(1)",)})
#: A non-default policy runs only with the batch's approval of its exact values.
APPROVED = {"overrides": {"reason": "Second agency under test", "approved_by": "Chief Counsel",
                          "policy": {"statutes_by_agency": {
                              AGENCY: ["8 U.S.C. 1253(a)(1)"], OTHER: ["8 U.S.C. 1253(a)(1)"]}}}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_reports_match_the_disclosures_made(backend: str, tmp_path: Path) -> None:
    year = datetime.now(UTC).year
    shared = synthetic_tin(1)
    with ledger_at(backend, tmp_path) as ledger:
        runs = [  # (batch, matched TINs, unmatched, rejected reason codes)
            (FakeBatch(batch_id="A1", extra=APPROVED), [shared, synthetic_tin(2)], 1,
             ("INVALID_ZIP",)),
            (FakeBatch(batch_id="A2", extra=APPROVED),
             [shared, synthetic_tin(3), synthetic_tin(4)], 0, ("INVALID_ZIP;MISSING_NAME",)),
            (FakeBatch(batch_id="B1", requesting_agency=OTHER, extra=APPROVED), [shared], 2, ()),
        ]
        for batch, tins, unmatched, rejected in runs:
            engine = engine_with_results(matched=tins, unmatched=unmatched, rejected=rejected)
            kwargs = publish_kwargs(ledger, engine, FakeBatch(batch_id="probe"),
                                    tmp_path / f"probe-{batch.batch_id}")
            decision = decision_for(ledger, batch, len(tins) + unmatched, POLICY)
            publish(**{**kwargs, "batch": batch, "policy_decision": decision,
                       "final_dir": tmp_path / batch.batch_id})
        rows = {r.agency: r for r in report(ledger, year=year)}
        a, b = rows[AGENCY], rows[OTHER]
        assert (a.requests, a.rows, a.disclosures, a.distinct_taxpayers) == (2, 6, 5, 4)
        assert a.rejections_by_reason == {"INVALID_ZIP": 2, "MISSING_NAME": 1}
        assert (b.requests, b.rows, b.disclosures, b.distinct_taxpayers) == (1, 3, 1, 1)
        assert report(ledger, year=year - 1) == []

        csv_path = tmp_path / "report.csv"
        write_report_csv(list(rows.values()), csv_path)
        with csv_path.open(encoding="utf-8") as handle:
            table = {r["agency"]: r for r in csv.DictReader(handle)}
        assert table[AGENCY]["disclosures"] == "5"
        assert table[AGENCY]["rejected_INVALID_ZIP"] == "2"
        assert table[OTHER]["rejected_MISSING_NAME"] == "0"
        assert AGENCY in render_report(list(rows.values()))

        found = taxpayer_disclosures(ledger, shared)
        assert [(d.recipient, d.batch_id) for d in found] == [
            (AGENCY, "A1"), (AGENCY, "A2"), (OTHER, "B1")]
        assert all(d.legal_authority == "26 U.S.C. 6103(i)(2)" for d in found)
        assert "A2" in render_taxpayer(found) and shared not in render_taxpayer(found)
        assert taxpayer_disclosures(ledger, synthetic_tin(99)) == []
        with ledger.connect() as conn:
            objects = conn.execute(sa.select(audit_events.c.object)).scalars().all()
        assert "report " + str(year) in objects
        assert not any(shared in o for o in objects)  # audit events never carry the TIN
        assert ledger.verify(record=False).ok


def test_a_malformed_tin_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with ledger_at("sqlite", tmp_path) as ledger, pytest.raises(InputError) as caught:
        taxpayer_disclosures(ledger, "12345678X")
    assert "12345678X" not in str(caught.value)
