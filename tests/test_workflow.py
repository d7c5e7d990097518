"""prepare → review → release / deny at the library level (lastknown.workflow)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from lastknown.config import Deployment
from lastknown.disclose.held import PACKAGE, TABLES, held_dir
from lastknown.disclose.journal import journal_dir
from lastknown.disclose.ledger import open_ledger
from lastknown.disclose.ledger.models import audit_events, batches, disclosures
from lastknown.disclose.publish import publish_run
from lastknown.errors import InputError, NotFoundError, PolicyError
from lastknown.pipeline import ProcessOptions, build_master_index, process_request
from lastknown.synth import generate
from lastknown.workflow import (
    PREPARE_STAGES,
    deny,
    get_batch,
    list_batches,
    prepare,
    release,
    review,
)

TODAY = date(2026, 11, 1)
BATCH = "2026-S0003"
MASKED = re.compile(r"^[^*\s]\**( [^*\s]\**)*$")


@dataclass(frozen=True)
class Synth:
    folder: Path
    index: Path
    tins: frozenset[str]


def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """500 people, a 40-row request, and its index (made once per module)."""
    folder = tmp_path_factory.mktemp("wf") / "s"
    generate(persons=500, requests=40, seed=3, out=folder)
    index = folder.parent / "index"
    build_master_index(folder / "master", out=index)
    tins = duckdb.sql(f"SELECT DISTINCT tin FROM read_parquet('{folder}/master/*.parquet')")
    return Synth(folder=folder, index=index, tins=frozenset(str(t[0]) for t in tins.fetchall()))


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return make_synth(tmp_path_factory)


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment(ledger=str(tmp_path / "ledger.sqlite"), archive=tmp_path / "archive",
                      anchors=tmp_path / "anchors.jsonl", source="test")


def held_batch(synth: Synth, deployment: Deployment, *, batch: Path | None = None,
               stages: list[str] | None = None) -> str:
    state = prepare(synth.folder / "request.csv", master=synth.index,
                    batch_path=batch or synth.folder / "batch.toml", submitted_by="alice",
                    options=ProcessOptions(deployment=deployment, today=TODAY),
                    on_stage=None if stages is None else stages.append)
    assert state.status == "held"
    return state.batch_id


def ledger_rows(deployment: Deployment) -> tuple[int, int]:
    """(batches, disclosures) in the ledger."""
    ledger = open_ledger(deployment.ledger)
    try:
        with ledger.connect() as conn:
            return (conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one(),
                    conn.execute(sa.select(sa.func.count()).select_from(disclosures))
                    .scalar_one())
    finally:
        ledger.close()


def audit(deployment: Deployment, event: str) -> list[tuple[str, bool, str]]:
    ledger = open_ledger(deployment.ledger)
    try:
        with ledger.connect() as conn:
            return [(r.user_name, r.success, r.detail) for r in conn.execute(
                sa.select(audit_events).where(audit_events.c.event_type == event))]
    finally:
        ledger.close()


def second_batch(synth: Synth, tmp_path: Path, batch_id: str) -> Path:
    path = tmp_path / f"{batch_id}.toml"
    path.write_text((synth.folder / "batch.toml").read_text().replace(BATCH, batch_id))
    return path


def test_prepare_holds_the_package_and_discloses_nothing(synth: Synth, deployment: Deployment,
                                                         tmp_path: Path) -> None:
    stages: list[str] = []
    batch_id = held_batch(synth, deployment, stages=stages)
    assert stages == PREPARE_STAGES
    assert ledger_rows(deployment) == (0, 0)
    assert [(u, ok) for u, ok, _ in audit(deployment, "batch_prepared")] == [("alice", True)]
    folder = held_dir(deployment.archive, batch_id)
    assert sorted(p.name for p in (folder / PACKAGE).iterdir()) == [
        "matched.csv", "matched.xlsx", "rejected.csv", "unmatched.csv"]
    assert not list(tmp_path.rglob("receipt.json"))  # nothing is deliverable
    state = get_batch(batch_id.lower(), deployment)
    assert (state.status, state.submitted_by, state.decided_by) == ("held", "alice", None)
    assert state.rows_matched + state.rows_unmatched + state.rows_rejected == state.rows_total
    assert state.rows_total == 40 and state.rows_matched > 0
    with pytest.raises(PolicyError, match="already prepared"):
        held_batch(synth, deployment)
    with pytest.raises(PolicyError, match="prepared with --hold and waits for review"):
        process_request(synth.folder / "request.csv", master=synth.index,
                        batch_path=synth.folder / "batch.toml", out=tmp_path / "resp",
                        options=ProcessOptions(deployment=deployment, today=TODAY))
    assert ledger_rows(deployment) == (0, 0) and not (tmp_path / "resp").exists()


def test_review_shows_counts_policy_and_a_reproducible_masked_sample_without_a_tin(
        synth: Synth, deployment: Deployment) -> None:
    batch_id = held_batch(synth, deployment)
    state = get_batch(batch_id, deployment)
    first, again = review(batch_id, deployment), review(batch_id, deployment, sample=20)
    data = first.as_dict()
    assert data["batch"] == state.as_dict()
    assert sum(first.outcome_counts.values()) == state.rows_matched + state.rows_unmatched
    assert first.outcome_counts["M"] == state.rows_matched
    assert sum(first.unmatched_outcomes.values()) == state.rows_unmatched
    # every unmatched row listed (fewer than UNMATCHED_ROWS_SHOWN), with its internal outcome
    listed = Counter(r["outcome"] for r in first.unmatched_rows)
    assert listed == Counter({k: v for k, v in first.unmatched_outcomes.items() if v})
    assert len({r["request_row_id"] for r in first.unmatched_rows}) == state.rows_unmatched > 0
    assert all(r["requested_name"] for r in first.unmatched_rows)
    assert sum(first.rejections_by_reason.values()) >= state.rows_rejected > 0
    assert first.policy["caps"]["max_rows_per_batch"] == 10_000
    assert first.policy["remaining_after_release"]["max_rows_per_batch"] == 10_000 - 40
    assert first.metadata["authorised_statutes"] == ["8 U.S.C. 1253(a)(1)"]
    assert first.metadata["certification"].startswith("Each row is the subject")
    assert 0 <= first.expected_false_matches < 1
    assert first.repeat_disclosures["rows"] == 0 and first.same_file_answered == []
    assert len(first.sample) == min(20, state.rows_matched)
    assert first.sample == again.sample  # seeded by the batch id
    assert [r["request_row_id"] for r in review(batch_id, deployment, sample=3).sample] != []
    names = [c["name_masked"] for row in first.sample for c in row["candidates"]]
    assert names and all(MASKED.match(n) for n in names), names
    assert all(row["candidates"][0]["role"] == "match" for row in first.sample)
    text = json.dumps(data) + json.dumps(state.as_dict())
    assert not [t for t in synth.tins if t in text]


def test_release_by_the_submitter_is_refused_and_recorded(synth: Synth,
                                                          deployment: Deployment,
                                                          tmp_path: Path) -> None:
    batch_id = held_batch(synth, deployment)
    with pytest.raises(PolicyError, match="another person must approve"):
        release(batch_id, approver="  ALICE ", out=tmp_path / "resp", deployment=deployment)
    assert audit(deployment, "batch_release_refused") == [
        ("ALICE", False, "the approver is the submitter; another person must approve")]
    assert get_batch(batch_id, deployment).status == "held"
    assert ledger_rows(deployment) == (0, 0) and not (tmp_path / "resp").exists()


def test_release_by_another_person_publishes_and_records_both(
        synth: Synth, deployment: Deployment, tmp_path: Path) -> None:
    batch_id = held_batch(synth, deployment)
    result = release(batch_id, approver="Bob", out=tmp_path / "resp", deployment=deployment)
    state = get_batch(batch_id, deployment)
    assert (state.status, state.decided_by) == ("released", "Bob")
    assert state.released_to == str((tmp_path / "resp").absolute())
    assert result.rows_matched == state.rows_matched == ledger_rows(deployment)[1]
    assert (tmp_path / "resp" / "receipt.json").is_file()
    ledger = open_ledger(deployment.ledger)
    try:
        with ledger.connect() as conn:
            row = conn.execute(sa.select(batches.c.operator, batches.c.policy)).one()
        assert row.operator == "Bob"
        assert json.loads(row.policy)["release"] == {
            "submitted_by": "alice", "approved_by": "Bob", "single_operator": False}
        assert ledger.verify(record=False).ok
    finally:
        ledger.close()
    folder = held_dir(deployment.archive, batch_id)
    assert not (folder / PACKAGE).exists() and not (folder / TABLES).exists()
    assert review(batch_id, deployment).batch["status"] == "released"  # as decided
    with pytest.raises(PolicyError, match="only a held batch can be released"):
        release(batch_id, approver="Carol", out=tmp_path / "resp2", deployment=deployment)
    with pytest.raises(PolicyError, match="only a held batch can be denied"):
        deny(batch_id, officer="Carol", reason="too late", deployment=deployment)
    assert ledger_rows(deployment)[0] == 1 and not (tmp_path / "resp2").exists()


def test_deny_discloses_nothing_deletes_the_package_and_blocks_release(
        synth: Synth, deployment: Deployment, tmp_path: Path) -> None:
    batch_id = held_batch(synth, deployment)
    for reason in ("", "   "):
        with pytest.raises(InputError, match="needs a reason"):
            deny(batch_id, officer="Carol", reason=reason, deployment=deployment)
    with pytest.raises(InputError, match="shaped like a TIN"):
        deny(batch_id, officer="Carol", reason="person 123-45-6789", deployment=deployment)
    state = deny(batch_id, officer="Carol", reason="statute does not cover removal",
                 deployment=deployment)
    assert (state.status, state.decided_by, state.deny_reason) == (
        "denied", "Carol", "statute does not cover removal")
    assert get_batch(batch_id, deployment) == state
    assert audit(deployment, "batch_denied") == [
        ("Carol", True, "statute does not cover removal")]
    folder = held_dir(deployment.archive, batch_id)
    assert not (folder / PACKAGE).exists() and not (folder / TABLES).exists()
    with pytest.raises(PolicyError, match="was denied by Carol"):
        release(batch_id, approver="Bob", out=tmp_path / "resp", deployment=deployment)
    assert ledger_rows(deployment) == (0, 0) and not (tmp_path / "resp").exists()
    assert [s.batch_id for s in list_batches(deployment, status="denied")] == [batch_id]
    assert list_batches(deployment, status="held") == []


def test_a_repeated_file_and_repeat_disclosures_are_flagged(synth: Synth,
                                                            deployment: Deployment,
                                                            tmp_path: Path) -> None:
    first = held_batch(synth, deployment)
    second = held_batch(synth, deployment, batch=second_batch(synth, tmp_path, "2026-S0004"))
    assert [f["batch_id"] for f in review(second, deployment).same_file_answered] == [first]
    released = release(first, approver="Bob", out=tmp_path / "resp", deployment=deployment)
    later = review(second, deployment)
    assert [(f["batch_id"], f["status"]) for f in later.same_file_answered] == [
        (first, "released")]
    assert later.repeat_disclosures["rows"] == released.rows_matched
    assert later.policy["official_rows_in_period_now"] == 40
    assert [s.batch_id for s in list_batches(deployment)] == [first, second]


def test_a_batch_being_released_elsewhere_is_refused_and_stays_held(
        synth: Synth, deployment: Deployment, tmp_path: Path) -> None:
    batch_id = held_batch(synth, deployment)
    ledger = open_ledger(deployment.ledger)
    journal = journal_dir(deployment.ledger, archive=deployment.archive)
    try:
        with publish_run(ledger, journal, batch_id=batch_id, final_dir=tmp_path / "other"):
            with pytest.raises(PolicyError, match="being answered by another run"):
                release(batch_id, approver="Bob", out=tmp_path / "resp", deployment=deployment)
            with pytest.raises(PolicyError, match="being answered by another run"):
                deny(batch_id, officer="Bob", reason="no", deployment=deployment)
    finally:
        ledger.close()
    assert get_batch(batch_id, deployment).status == "held"
    assert ledger_rows(deployment) == (0, 0)


def test_an_unknown_batch_is_a_clear_error(deployment: Deployment) -> None:
    assert list_batches(deployment) == []
    with pytest.raises(NotFoundError, match="`lastknown batches` lists"):
        get_batch("NOPE", deployment)
    with pytest.raises(InputError, match="status 'open' is not one of"):
        list_batches(deployment, status="open")


@pytest.fixture
def strict_policy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "policy.toml"
    path.write_text("single_operator_release = false\n")
    yield path


def test_process_is_refused_where_the_policy_wants_two_people(
        synth: Synth, deployment: Deployment, strict_policy: Path, tmp_path: Path) -> None:
    options = ProcessOptions(deployment=deployment, today=TODAY, policy=strict_policy)
    with pytest.raises(PolicyError, match="process --hold") as refused:
        process_request(synth.folder / "request.csv", master=synth.index,
                        batch_path=synth.folder / "batch.toml", out=tmp_path / "resp",
                        options=options)
    assert f"lastknown release {BATCH} --approver" in str(refused.value)
    assert not (tmp_path / "resp").exists()
    # the stricter setting needs no approval in the batch file: --hold runs under it
    state = prepare(synth.folder / "request.csv", master=synth.index,
                    batch_path=synth.folder / "batch.toml", submitted_by="alice",
                    options=options)
    assert state.status == "held"


def test_two_held_batches_of_one_official_never_exceed_the_cap_at_release(
        synth: Synth, deployment: Deployment, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("max_rows_per_official_per_period = 60\n")
    approval = ('\n[overrides]\nreason = "cap under test"\napproved_by = "Counsel"\n'
                '[overrides.policy]\nmax_rows_per_official_per_period = 60\n')
    ids = []
    for batch_id in ("CAP-A", "CAP-B"):  # each passes the early check: nothing released yet
        path = second_batch(synth, tmp_path, batch_id)
        path.write_text(path.read_text() + approval)
        ids.append(prepare(synth.folder / "request.csv", master=synth.index, batch_path=path,
                           submitted_by="alice", options=ProcessOptions(
                               deployment=deployment, today=TODAY, policy=policy)).batch_id)
    assert review(ids[1], deployment).policy["remaining_after_release"][
        "max_rows_per_official_per_period"] == 20
    release(ids[0], approver="Bob", out=tmp_path / "a", deployment=deployment)
    assert review(ids[1], deployment).policy["remaining_after_release"][
        "max_rows_per_official_per_period"] == -20  # the officer sees it before trying
    with pytest.raises(PolicyError, match="at commit the disclosure policy refuses it"):
        release(ids[1], approver="Bob", out=tmp_path / "b", deployment=deployment)
    assert get_batch(ids[1], deployment).status == "held"  # the officer may still deny it
    assert not (tmp_path / "b").exists() and ledger_rows(deployment)[0] == 1
    assert deny(ids[1], officer="Bob", reason="over the official's cap",
                deployment=deployment).status == "denied"


def test_the_review_sample_explains_the_match_and_masks_the_rival(tmp_path: Path) -> None:
    from lastknown.disclose.held import BatchState
    from lastknown.disclose.review import COMPARISONS, NAMES_TABLE, build_review, names_sql
    from test_ledger_fixtures import engine_with_results, synthetic_tin

    engine = engine_with_results(matched=[synthetic_tin(i) for i in range(3)], unmatched=1)
    engine.execute("CREATE OR REPLACE TABLE request_valid AS SELECT source_row, request_row_id, "
                   "'JOHN' AS first_name, NULL AS middle_name, 'SMITH' AS last_name, "
                   "'8 U.S.C. 1253(A)(1)' AS statute FROM match_result")
    weights = ", ".join(f"1.5 AS mw_{c}" for c in COMPARISONS)
    engine.execute(f"CREATE TABLE match_explanation AS SELECT m.source_row, r.tin_rank, "
                   f"CASE r.tin_rank WHEN 1 THEN m.tin ELSE '{synthetic_tin(99)}' END AS tin, "
                   "m.source_row * 10 + r.tin_rank AS record_id, 20.0 AS match_weight, "
                   f"0.999 AS match_probability, 9.0 AS name_weight, {weights}, "
                   "r.tin_rank = 1 AS address_confirmed, false AS name_swapped "
                   "FROM match_result m, (VALUES (1), (2)) r(tin_rank) WHERE m.outcome = 'M'")
    engine.execute("CREATE TABLE idx_record AS SELECT record_id, CASE WHEN record_id % 10 = 1 "
                   "THEN 'JOHN' ELSE 'JANE MARIE' END AS first_n, 'SMITH' AS surname_n "
                   "FROM match_explanation")
    engine.execute(f"CREATE TABLE {NAMES_TABLE} AS {names_sql('idx_record')}")
    state = BatchState(batch_id="B-1", status="held", requesting_agency="ICE",
                       requesting_official="Dana", submitted_by="alice", submitted_at="t",
                       rows_total=4, rows_matched=3, rows_unmatched=1, request_sha256="ab")
    prepared = {"batch": {k: "x" for k in ("requesting_agency", "requesting_official",
                                            "official_title", "reason", "certification")}
                | {"authorised_statutes": ["s"], "certified": True},
                "decision": {"caps": {"max_rows_per_batch": 10, "max_rows_per_official_per_period":
                                      10}, "overrides": {}, "override_reason": None,
                             "override_approved_by": None, "period_days": 365,
                             "official_rows_in_period": 0, "statutes_allowed": ["s"],
                             "policy_source": "p", "policy_sha256": "", "settings": {},
                             "recent_disclosure_days": 90},
                "summary": {}, "package": {"outcome_counts": {"M": 3, "N": 1},
                                           "reason_counts": {}, "expected_false_matches": 0.003}}
    ledger = open_ledger(tmp_path / "l.sqlite", create=True)
    try:
        page = build_review(engine, ledger, state=state, prepared=prepared, others=[], sample=2)
    finally:
        ledger.close()
        engine.close()
    assert len(page.sample) == 2
    row = page.sample[0]
    assert row["requested_name"] == "JOHN SMITH"
    assert [(c["role"], c["name_masked"]) for c in row["candidates"]] == [
        ("match", "J*** S****"), ("rival", "J*** M**** S****")]
    assert row["candidates"][1]["weights"] == dict.fromkeys(COMPARISONS, 1.5)
    assert page.outcome_counts == {"M": 3, "N": 1, "A": 0, "U": 0, "P": 0}
    assert synthetic_tin(99) not in json.dumps(page.as_dict())


def test_a_review_that_would_show_a_tin_is_stopped() -> None:
    from lastknown.disclose.review import assert_no_tin
    from lastknown.errors import PipelineError
    from test_ledger_fixtures import engine_with_results, synthetic_tin

    engine = engine_with_results(matched=[synthetic_tin(7)])
    try:
        assert_no_tin(engine, {"sample": [{"note": "no TIN here"}]})
        tin = synthetic_tin(7)
        for shown in (tin, f"{tin[:3]}-{tin[3:5]}-{tin[5:]}"):
            with pytest.raises(PipelineError, match="would show a TIN"):
                assert_no_tin(engine, {"sample": [{"note": f"see {shown}"}]})
    finally:
        engine.close()
