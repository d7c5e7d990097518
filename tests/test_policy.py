"""Policy: fixed disclosed fields, caps that wait for recorded overrides, statute allowlists."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastknown.disclose.ledger import Ledger
from lastknown.disclose.ledger.models import audit_events, batches
from lastknown.disclose.policy import (
    DISCLOSED_FIELDS,
    Policy,
    check_policy,
    load_policy,
)
from lastknown.disclose.publish import publish
from lastknown.errors import ConfigError, PolicyError
from test_ledger_fixtures import (
    AGENCY,
    BACKENDS,
    FakeBatch,
    engine_with_results,
    ledger_at,
    publish_kwargs,
    synthetic_tin,
)

OVERRIDE = {"overrides": {"max_rows_per_batch": 50, "reason": "Task force caseload review",
                          "approved_by": "Chief Counsel"}}


def approving(**policy_settings: object) -> dict[str, object]:
    """A batch's approval of non-default policy settings (every one needs it)."""
    return {"overrides": {"reason": "Office policy under test", "approved_by": "Chief Counsel",
                          "policy": policy_settings}}


def _events(ledger: Ledger, event_type: str) -> list[sa.Row[object]]:
    with ledger.connect() as conn:
        return list(conn.execute(sa.select(audit_events)
                                 .where(audit_events.c.event_type == event_type)))


def test_disclosed_fields_are_addresses_and_tax_year_only() -> None:
    assert set(DISCLOSED_FIELDS) == {"street", "unit", "city", "state", "zip",
                                     "address_tax_year"}


def test_policy_file_overrides_defaults_and_is_fingerprinted(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('max_rows_per_batch = 20\n[statutes_by_agency]\n"Agency A" = ["18 U.S.C. 1"]\n',
                    encoding="utf-8")
    policy = load_policy(path)
    assert policy.max_rows_per_batch == 20
    assert policy.max_rows_per_official_per_period == Policy().max_rows_per_official_per_period
    assert policy.statutes_for("agency  a") == ("18 U.S.C. 1",)
    assert len(policy.source_sha256) == 64


@pytest.mark.parametrize(("text", "message"), [
    ('disclosed_fields = ["income"]\n', "fixed in code"),
    ("max_rows_per_batch = 0\n", "whole number above 0"),
    ("max_rows = 5\n", "not a policy setting"),
    ('[statutes_by_agency]\n"A" = []\n', "non-empty list"),
    ("max_rows_per_batch = \n", "not valid UTF-8 TOML"),
])
def test_a_bad_policy_file_says_what_to_fix(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_policy(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_over_the_batch_cap_the_batch_waits_and_the_refusal_is_audited(
        backend: str, tmp_path: Path) -> None:
    policy = Policy(max_rows_per_batch=10)
    with ledger_at(backend, tmp_path) as ledger:
        with pytest.raises(PolicyError) as caught:
            check_policy(policy, FakeBatch(extra=approving(max_rows_per_batch=10)), row_count=11,
                         ledger=ledger)
        message = str(caught.value)
        assert "max_rows_per_batch = 10" in message and "11 rows" in message
        assert "[overrides] max_rows_per_batch = 11" in message
        (event,) = _events(ledger, "batch_rejected")
        assert event.success is False and event.object == "batch B-1"
        assert check_policy(policy, FakeBatch(extra=approving(max_rows_per_batch=10)),
                            row_count=10, ledger=ledger).caps[
            "max_rows_per_batch"] == 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_override_lets_the_batch_run_and_is_recorded_in_the_batch(
        backend: str, tmp_path: Path) -> None:
    with ledger_at(backend, tmp_path) as ledger:
        batch = FakeBatch(extra={"overrides": {**OVERRIDE["overrides"],
                                               "policy": {"max_rows_per_batch": 2}}})
        decision = check_policy(Policy(max_rows_per_batch=2), batch, row_count=9, ledger=ledger)
        assert decision.overrides == {"max_rows_per_batch": 50}
        engine = engine_with_results(matched=[synthetic_tin(i) for i in range(4)], unmatched=5)
        kwargs = publish_kwargs(ledger, engine, FakeBatch(batch_id="other"), tmp_path / "x")
        publish(**{**kwargs, "batch": batch, "policy_decision": decision,
                   "final_dir": tmp_path / "response"})
        with ledger.connect() as conn:
            recorded = json.loads(conn.execute(sa.select(batches.c.policy)
                                               .where(batches.c.batch_id == "B-1")).scalar_one())
        assert recorded["overrides"] == {"max_rows_per_batch": 50}
        assert recorded["override_approved_by"] == "Chief Counsel"
        assert recorded["caps"]["max_rows_per_batch"] == 50
        assert recorded["settings"]["changed"] == {"policy": {"max_rows_per_batch": 2}}
        assert recorded["settings"]["in_force"]["match"]["match_threshold"] == 0.99
        assert ledger.verify(record=False).ok


@pytest.mark.parametrize(("overrides", "message"), [
    ({"max_rows_per_batch": 50}, "needs a reason"),
    ({"max_rows_per_batch": 50, "reason": "r"}, "needs an approver"),
    ({"disclosed_fields": 3, "reason": "r", "approved_by": "a"}, "not allowed"),
])
def test_an_incomplete_override_is_refused(overrides: dict[str, object], message: str,
                                           tmp_path: Path) -> None:
    with ledger_at("sqlite", tmp_path) as ledger, pytest.raises(PolicyError, match=message):
        check_policy(Policy(max_rows_per_batch=2), FakeBatch(extra={"overrides": overrides}),
                     row_count=9, ledger=ledger)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_official_cap_counts_earlier_batches_in_the_period(backend: str,
                                                              tmp_path: Path) -> None:
    policy = Policy(max_rows_per_official_per_period=12)
    with ledger_at(backend, tmp_path) as ledger:
        engine = engine_with_results(matched=[synthetic_tin(i) for i in range(3)], unmatched=4)
        publish(**publish_kwargs(ledger, engine, FakeBatch(), tmp_path / "r1"))  # 7 rows
        approval = approving(max_rows_per_official_per_period=12)
        later = FakeBatch(batch_id="B-2", extra=approval)
        with pytest.raises(PolicyError, match="already has 7 rows"):
            check_policy(policy, later, row_count=6, ledger=ledger)
        assert check_policy(policy, later, row_count=5,
                            ledger=ledger).official_rows_in_period == 7
        other_official = FakeBatch(batch_id="B-3", requesting_official="Someone Else",
                                   extra=approval)
        assert check_policy(policy, other_official, row_count=12,
                            ledger=ledger).official_rows_in_period == 0
        future = datetime(2100, 1, 1, tzinfo=UTC)  # the period has passed
        assert check_policy(policy, later, row_count=12, ledger=ledger,
                            now=future).official_rows_in_period == 0


def test_statutes_are_allowlisted_per_agency(tmp_path: Path) -> None:
    with ledger_at("sqlite", tmp_path) as ledger:
        spelled = FakeBatch(authorised_statutes=("8 usc § 1253 (a)(1)",))
        decision = check_policy(Policy(), spelled, row_count=1, ledger=ledger)
        assert (decision.batch_id, decision.row_count) == ("B-1", 1)  # let through, as spelled
        assert decision.statutes_allowed == Policy().statutes_for(AGENCY)
        with pytest.raises(PolicyError, match="statute '26 U.S.C. 7201' is not allowed"):
            check_policy(Policy(), FakeBatch(authorised_statutes=("26 U.S.C. 7201",)),
                         row_count=1, ledger=ledger)
        with pytest.raises(PolicyError, match="has no statutes in the policy"):
            check_policy(Policy(), FakeBatch(requesting_agency="Agency Z"), row_count=1,
                         ledger=ledger)


def test_a_batch_is_answered_once_and_must_be_certified(tmp_path: Path) -> None:
    with ledger_at("sqlite", tmp_path) as ledger:
        engine = engine_with_results(matched=[synthetic_tin(1)])
        publish(**publish_kwargs(ledger, engine, FakeBatch(), tmp_path / "r1"))
        with pytest.raises(PolicyError, match="already in the ledger"):
            check_policy(Policy(), FakeBatch(), row_count=1, ledger=ledger)
        with pytest.raises(PolicyError, match="'b-1' is already in the ledger"):
            check_policy(Policy(), FakeBatch(batch_id="b-1"), row_count=1, ledger=ledger)
        with pytest.raises(PolicyError, match="not certified"):
            check_policy(Policy(), FakeBatch(batch_id="B-9", certified=False), row_count=1,
                         ledger=ledger)
        refusals = [e for e in _events(ledger, "batch_rejected") if e.object == "batch B-9"]
        assert [e.detail for e in refusals] == [
            "not certified (certified = false); agency U.S. Immigration and Customs "
            "Enforcement; official Dana Example"]
