"""Pruning candidates whose names cannot agree never changes an outcome (synthetic run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from lastknown.engines import DuckDBEngine
from lastknown.master import load_master
from lastknown.match.candidates import (
    _PRETEST_REQUESTS,
    _can_weigh_above_zero,
    candidate_steps,
    names_can_agree_sql,
    names_may_agree_sql,
)
from lastknown.match.config import MatchConfig
from lastknown.match.index import IndexInfo, build_index
from lastknown.match.model import load_model
from lastknown.match.run import MatchSummary, match_requests
from lastknown.match.score import SWAP_SQL, requests_with_swapped_groups
from lastknown.normalize.nicknames import first_groups_sql, register_nicknames
from lastknown.normalize.phonetic import name_keys_sql, register_given_names
from lastknown.request.batch import load_batch
from lastknown.request.intake import read_request
from lastknown.request.validate import validate_request
from lastknown.synth import generate

Runs = tuple[DuckDBEngine, MatchSummary, MatchSummary, IndexInfo]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    tmp = tmp_path_factory.mktemp("prune")
    data = tmp / "synth"
    generate(persons=30_000, requests=3_000, seed=21, out=data)
    engine = DuckDBEngine()
    load_master(engine, data / "master")
    info = build_index(engine, master_table="master", out=tmp / "index")
    read_request(engine, data / "request.csv")
    validate_request(engine, load_batch(data / "batch.toml"),
                     master_years=(info.year_min, info.year_max), today=date(2026, 11, 1))
    config = MatchConfig(chunk_size=1_000)  # several chunks: pruning works per chunk
    full = match_requests(engine, index=info, config=config, prune=False)
    engine.execute("CREATE TABLE r_full AS SELECT * FROM match_result")
    pruned = match_requests(engine, index=info, config=config, prune=True)
    engine.execute("CREATE TABLE r_pruned AS SELECT * FROM match_result")
    yield engine, full, pruned, info
    engine.close()


def test_pruning_drops_pairs(runs: Runs) -> None:
    _, full, pruned, _ = runs
    assert full.pairs["pruned"] == 0
    assert pruned.pairs["pruned"] > 0
    assert pruned.pairs["scored"] + pruned.pairs["pruned"] == full.pairs["scored"]


def test_pruning_changes_no_outcome_and_no_disclosure(
        runs: Runs) -> None:
    engine, full, pruned, _ = runs
    assert full.outcome_counts == pruned.outcome_counts
    assert sum(full.outcome_counts.values()) == engine.count("r_full") > 2_000
    differ = engine.fetchall("""
        SELECT count(*) FROM r_full AS a FULL JOIN r_pruned AS b USING (source_row)
        WHERE a.outcome IS DISTINCT FROM b.outcome OR a.tin IS DISTINCT FROM b.tin
           OR a.address_tax_year IS DISTINCT FROM b.address_tax_year
           OR a.street IS DISTINCT FROM b.street OR a.unit IS DISTINCT FROM b.unit
           OR a.zip IS DISTINCT FROM b.zip
           OR (a.outcome <> 'N' AND NOT abs(a.match_probability - b.match_probability) < 1e-9)
    """)[0][0]
    assert differ == 0


def test_every_outcome_occurs(runs: Runs) -> None:
    """The comparison above means something only if the run has each kind of answer."""
    _, _, pruned, _ = runs
    assert all(pruned.outcome_counts[o] > 0 for o in ("M", "N", "U", "P", "A"))


def test_similar_given_name_is_pruned_exact_nickname_initial_kept() -> None:
    """The keep-test comes from the model: levels with m > u; a tf exact level always."""
    model = {"comparisons": [{"output_column_name": "first_name", "comparison_levels": [
        {"sql_condition": '"first_n_l" IS NULL', "is_null_level": True},
        {"sql_condition": '"first_n_l" = "first_n_r"', "m_probability": 0.9,
         "u_probability": 0.95, "tf_adjustment_column": "first_n"},
        {"sql_condition": 'jaro_winkler_similarity("first_n_l", "first_n_r") >= 0.9',
         "m_probability": 0.001, "u_probability": 0.002},
        {"sql_condition": 'length("first_n_l") = 1', "m_probability": 0.01,
         "u_probability": 1e-6},
        {"sql_condition": "ELSE", "m_probability": 1e-6, "u_probability": 0.99},
    ]}]}
    sql = _can_weigh_above_zero(model, "first_name")
    pairs = [("JOHN", "JOHN", True), ("JON", "JOHN", False), ("J", "JOHN", True),
             ("MARY", "JOHN", False)]  # exact, similar (m < u: pruned), initial, other
    values = ", ".join(f"({i}, '{q}', '{r}')" for i, (q, r, _) in enumerate(pairs))
    with DuckDBEngine() as engine:
        kept = engine.fetchall(f"SELECT {sql} FROM (SELECT id, {{'first_n': qn}} AS q, "
                               f"{{'first_n': rn}} AS r FROM (VALUES {values}) v(id, qn, rn)) "
                               "ORDER BY id")
    assert [k for (k,) in kept] == [keep for _, _, keep in pairs]
    assert _can_weigh_above_zero(model, "surname") == "TRUE"  # not in this model
    model["comparisons"][0]["comparison_levels"][-1]["m_probability"] = 1.0
    assert _can_weigh_above_zero(model, "first_name") == "TRUE"


def test_saved_model_prunes_other_given_names(tmp_path: Path) -> None:
    """A trained model caps "other name" at u, so its condition is never a reason to keep;
    request-side levels (typo, phonetic) keep a pair whatever their trained m, since
    learning may raise m up to their upper bound.

    The keep-test is run on name pairs (request ``q``, record ``r``) normalised the way the
    index does it: exact, nickname, phonetic, typo and initial keep a pair; a close known
    name (KEVIN/KELVIN) or a nickname of the other sex (LOUISE/LOUIS) does not.
    """
    generate(persons=3_000, requests=100, seed=3, out=tmp_path / "s")
    pairs = [("JOHN", "JOHN", True), ("BILL", "WILLIAM", True), ("WILLIAM", "BILL", True),
             ("J", "JOHN", True), ("KEVIN", "KELVIN", False), ("MARISOL", "MARISELA", False),
             ("HAKEEM", "HAKIM", True), ("CHIRSTOPHER", "CHRISTOPHER", True),
             ("LOUISE", "LOUIS", False)]
    engine = DuckDBEngine()
    try:
        load_master(engine, tmp_path / "s" / "master")
        info = build_index(engine, master_table="master", out=tmp_path / "i")
        given = _can_weigh_above_zero(load_model(info.model_path), "first_name")
        register_nicknames(engine)
        register_given_names(engine)
        for side, column in (("q", 0), ("r", 1)):
            values = ", ".join(f"({i}, '{p[column]}')" for i, p in enumerate(pairs))
            engine.execute(f"CREATE TABLE {side}_names AS SELECT id, first_n, "
                           "left(first_n, 1) AS first_initial, [] :: VARCHAR[] AS surname_tokens, "
                           f"NULL :: VARCHAR AS surname_n FROM (VALUES {values}) "
                           "AS v(id, first_n)")
            keyed = name_keys_sql(f"{side}_names")
            engine.execute(f"CREATE TABLE {side} AS {first_groups_sql(f'({keyed})')}")
        kept = engine.fetchall(f"SELECT q.id, {given} FROM q JOIN r USING (id) ORDER BY q.id")
    finally:
        engine.close()
    assert [(pairs[i][0], pairs[i][1], bool(k)) for i, k in kept] == pairs


def test_narrow_pretest_changes_no_candidate(
        runs: Runs) -> None:
    """The judge's narrow name pre-test (``names_may_agree_sql``) only spares the full test
    pairs it could not keep: candidates, their columns and the pruned counts are the same
    as with the full test on every pair, and the pre-test does spare most pairs."""
    engine, _, _, info = runs
    model = load_model(info.model_path)
    may = names_may_agree_sql(model)
    assert may != "TRUE"
    for name, pretest in (("full", "TRUE"), ("narrow", may)):
        engine.run_steps(candidate_steps(
            requests="lk_requests", records=info.table("idx_record"),
            key_table=info.table("idx_block_key"), size_table=info.table("idx_block_size"),
            block_limit=MatchConfig().block_limit,
            comparison_budget=MatchConfig().comparison_budget, out=f"c_{name}",
            can_agree=names_can_agree_sql(model), may_agree=pretest))
    for suffix in ("", "_pruned", "_capped"):
        a, b = f"c_full{suffix}", f"c_narrow{suffix}"
        assert engine.count(a) == engine.count(b)
        assert engine.fetchall(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL "
                               f"SELECT * FROM {b})")[0][0] == 0
    assert engine.count("c_full") > 1_000
    judged, spared = engine.fetchall(
        "SELECT count(*), count_if(NOT may_agree) FROM c_narrow_judged")[0]
    assert spared > judged / 3


def test_pretest_passes_every_name_pair_the_full_test_keeps_or_swaps(runs: Runs) -> None:
    """Over every pairing of awkward names (nicknames both ways, initials, typos, a
    respelling, swapped given and surnames, a missing given name), a pair the pre-test
    fails can neither agree nor read swapped; and it fails the plainly different ones."""
    engine, _, _, info = runs
    model = load_model(info.model_path)
    names = [("JOHN", "SMITH"), ("SMITH", "JOHN"), ("BILL", "JONES"), ("WILLIAM", "JONES"),
             ("J", "JONES"), ("JHON", "SMITH"), ("KAREEM", "ALI"), ("KARIM", "ALI"),
             ("MARY", "JONES"), ("JONES", "MARY"), ("LOUISE", "SMITH"), ("LOUIS", "SMITH"),
             ("JO", "JOHNSON"), (None, "SMITH"), ("MARY", "SMITH JONES"), ("ANN", "MARIE")]
    values = ", ".join(f"({i}, {'NULL' if f is None else repr(f)}, '{s}')"
                       for i, (f, s) in enumerate(names))
    engine.execute(f"""CREATE OR REPLACE TABLE pt_names AS
        SELECT id, first_n, left(first_n, 1) AS first_initial,
               string_split(surname_n, ' ') AS surname_tokens, surname_n
        FROM (VALUES {values}) AS v(id, first_n, surname_n)""")
    keyed = name_keys_sql("pt_names")
    engine.execute(f"CREATE OR REPLACE TABLE pt AS {first_groups_sql(f'({keyed})')}")
    engine.execute(f"CREATE OR REPLACE TABLE ptq AS "
                   f"SELECT * FROM {_PRETEST_REQUESTS.format(requests='pt')}")
    verdicts = engine.fetchall(f"""
        SELECT q.id, r.id, {names_can_agree_sql(model)}, {SWAP_SQL},
               {names_may_agree_sql(model)}
        FROM {requests_with_swapped_groups('ptq')} CROSS JOIN pt AS r""")
    assert len(verdicts) == len(names) ** 2
    # the swap's pre-test is SWAP_SQL's middle term: it must still be there
    assert "contains(r.surname_n, q.first_n)" in SWAP_SQL
    assert "q.surname_tokens[1] = r.first_n" in SWAP_SQL
    missed = [(names[a], names[b]) for a, b, agree, swap, may in verdicts
              if (agree or swap) and not may]
    assert missed == []
    may = {(names[a], names[b]): bool(m) for a, b, _, _, m in verdicts}
    assert may[("SMITH", "JOHN"), ("JOHN", "SMITH")]  # swapped
    assert may[("BILL", "JONES"), ("WILLIAM", "JONES")]
    assert may[("WILLIAM", "JONES"), ("BILL", "JONES")]
    assert may[("J", "JONES"), ("WILLIAM", "JONES")]
    assert may[(None, "SMITH"), ("JOHN", "SMITH")]  # NULL: may
    assert not may[("MARY", "JONES"), ("WILLIAM", "JONES")]
    assert not may[("LOUIS", "SMITH"), ("JOHN", "SMITH")]
    agreeing = sum(1 for _, _, agree, _, _ in verdicts if agree)
    assert 0 < agreeing < sum(may.values()) < len(verdicts)


def test_pretest_stands_aside_for_a_level_it_does_not_know(runs: Runs) -> None:
    """A model in which "other name" can weigh above 0, or a level spelt differently from
    this version, gets no pre-test: every pair goes to the full test."""
    _, _, _, info = runs
    model = load_model(info.model_path)
    assert names_may_agree_sql(model) != "TRUE"
    given = next(c for c in model["comparisons"] if c["output_column_name"] == "first_name")
    other = next(lv for lv in given["comparison_levels"]
                 if lv["label_for_charts"] == "other name")
    saved = dict(other)
    other["tf_adjustment_column"] = "first_n"  # now it can weigh above 0
    assert names_may_agree_sql(model) == "TRUE"
    other.clear()
    other.update(saved)
    assert names_may_agree_sql(model) != "TRUE"
    exact = next(lv for lv in given["comparison_levels"] if lv["label_for_charts"] == "exact")
    exact["sql_condition"] = '"first_n_l" = "first_n_r" OR "first_n_l" IS NULL'
    assert names_may_agree_sql(model) == "TRUE"
