"""Controlled settings: non-default policy or matching settings need the batch's approval of
their exact values; the suggested lines, pasted into the batch file, are that approval."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lastknown.disclose.policy import Policy, check_policy, load_policy
from lastknown.disclose.settings import changed_settings, check_settings, settings_record
from lastknown.errors import ErrorCollector, PolicyError
from lastknown.match.config import MatchConfig
from test_ledger_fixtures import FakeBatch, ledger_at

STATUTES = '[statutes_by_agency]\n"U.S. Immigration and Customs Enforcement" = ["8 U.S.C. 1326"]\n'


def test_defaults_need_no_approval_and_are_still_recorded_whole(tmp_path: Path) -> None:
    same = tmp_path / "policy.toml"
    same.write_text("max_rows_per_batch = 10000\n", encoding="utf-8")  # the default, spelled out
    policy = load_policy(same)
    assert changed_settings(policy, MatchConfig()) == {}
    record = settings_record(policy, MatchConfig(comparison_budget=300))
    assert record["changed"] == {}
    assert record["in_force"]["policy"]["statutes_by_agency"] == {
        "U.S. Immigration and Customs Enforcement": ["8 U.S.C. 1253(a)(1)", "8 U.S.C. 1326",
                                                     "8 U.S.C. 1324"]}
    assert set(record["in_force"]["match"]) == set(MatchConfig().as_dict())


def test_the_suggested_lines_are_the_approval(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(STATUTES, encoding="utf-8")
    policy, match = load_policy(path), MatchConfig(min_name_weight=4.5)
    statutes = ("8 U.S.C. 1326",)
    batch = FakeBatch(authorised_statutes=statutes)
    with ledger_at("sqlite", tmp_path) as ledger:
        with pytest.raises(PolicyError) as refused:
            check_policy(policy, batch, row_count=3, ledger=ledger, match_config=match)
        asked = re.findall(r"add to the batch file (\[overrides\.\w+\]) (.+?), with reason",
                           str(refused.value))
        assert [table for table, _ in asked] == ["[overrides.match]", "[overrides.policy]"]
        text = "[overrides]\nreason = \"r\"\napproved_by = \"a\"\n" + "".join(
            f"{table}\n{line}\n" for table, line in asked)
        approval = tomllib.loads(text)
        decision = check_policy(policy, FakeBatch(authorised_statutes=statutes, extra=approval),
                                row_count=3, ledger=ledger, match_config=match)
    assert decision.settings["changed"] == {
        "match": {"min_name_weight": 4.5},
        "policy": {"statutes_by_agency": {
            "U.S. Immigration and Customs Enforcement": ["8 U.S.C. 1326"]}}}
    assert decision.as_summary()["settings"] == decision.settings


@pytest.mark.parametrize(("approved", "problem"), [
    ({"match": {"match_threshold": 0.9}},
     "matching setting match_threshold = 0.95 (default 0.99) changes who gets disclosed and is "
     "not approved; the batch approves match_threshold = 0.9: add to the batch file "
     "[overrides.match] match_threshold = 0.95"),
    ({"match": {"match_threshold": 0.95, "match_treshold": 0.95}},
     "[overrides.match] `match_treshold` is not a matching setting; known: match_threshold, "),
])
def test_an_approval_must_name_exactly_what_runs(approved: dict[str, dict[str, float]],
                                                 problem: str) -> None:
    errors = ErrorCollector()
    changed = changed_settings(Policy(), MatchConfig(match_threshold=0.95))
    check_settings(changed, approved, errors)
    assert len(errors.problems) == 1
    assert errors.problems[0].startswith(problem)
