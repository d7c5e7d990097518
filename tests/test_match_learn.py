"""Learning the requester's error rates: EM with u fixed, bounds, pooling per agency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import World
from lastknown.engines import DuckDBEngine
from lastknown.errors import ConfigError
from lastknown.match.learn import (
    EstimateStore,
    LevelCounts,
    _request_side,
    delta_sql,
    em,
    learn,
    level_bounds,
)
from lastknown.match.model import (
    ADDRESS_COMPARISONS,
    NAME_COMPARISONS,
    REQUEST_LEVEL_MAX,
    gammas,
    load_model,
)

HALF = {1: 0.5, 0: 0.5}


def _mixture(lam: float, m: float, u: float, n: float = 10_000.0) -> list[tuple[tuple[int, ...],
                                                                              float]]:
    """Pattern counts of two binary comparisons drawn from a known mixture."""
    out = []
    for a in (1, 0):
        for b in (1, 0):
            pm = (m if a else 1 - m) * (m if b else 1 - m)
            pu = (u if a else 1 - u) * (u if b else 1 - u)
            out.append(((a, b), n * (lam * pm + (1 - lam) * pu)))
    return out


@pytest.mark.parametrize(("lam", "m"), [(0.05, 0.8), (0.3, 0.95), (0.6, 0.7)])
def test_em_recovers_a_known_mixture(lam: float, m: float) -> None:
    u = {1: 0.05, 0: 0.95}
    got, counts, got_lam = em(_mixture(lam, m, 0.05), m={"a": HALF, "b": HALF},
                              u={"a": u, "b": u}, comparisons=["a", "b"], lam=0.5,
                              iterations=200)
    assert got["a"][1] == pytest.approx(m, abs=0.01)
    assert got_lam == pytest.approx(lam, abs=0.01)
    assert sum(counts["a"].values()) == pytest.approx(lam * 10_000, rel=0.02)


def test_em_skips_null_levels_and_empty_input() -> None:
    u = {1: 0.05, 0: 0.95}
    m, counts, lam = em([], m={"a": HALF}, u={"a": u}, comparisons=["a"], lam=0.2)
    assert m == {"a": HALF} and lam == 0.2
    _m, counts, _lam = em([((-1,), 50.0)], m={"a": HALF}, u={"a": u}, comparisons=["a"])
    assert counts["a"] == {1: 0.0, 0: 0.0}


def _model_with(levels: dict[str, list[tuple[str, float, float]]]) -> dict[str, object]:
    comps = []
    for name, lv in levels.items():
        comps.append({"output_column_name": name, "comparison_levels": [
            {"label_for_charts": label, "m_probability": m, "u_probability": u}
            for label, m, u in lv]})
    return {"comparisons": comps}


FIRST = [("exact", 0.95, 0.003), ("nickname", 0.04, 0.002), ("other name", 0.001, 0.0016),
         ("initial", 0.005, 0.0001), ("different", 0.004, 0.99)]


def test_a_batch_cannot_make_weak_or_contrary_evidence_count() -> None:
    model = _model_with({"first_name": FIRST})
    m_model = {4: 0.95, 3: 0.04, 2: 0.001, 1: 0.005, 0: 0.004}
    u = {4: 0.003, 3: 0.002, 2: 0.0016, 1: 0.0001, 0: 0.99}
    # what a batch built to inflate them would teach: half its matches "other name",
    # a fifth "different", a fifth nicknames
    taught = {4: 0.1, 3: 0.2, 2: 0.5, 1: 0.0, 0: 0.2}
    got = _request_side(model, "first_name", taught, m_model, u)
    assert got[2] <= u[2]                      # "other name" is never evidence for
    assert got[3] <= REQUEST_LEVEL_MAX         # a nickname rate stays inside its bound
    assert got[0] == pytest.approx(m_model[0], rel=0.1)  # "different" does not learn
    assert got[4] >= m_model[4] / 2 / sum(got.values())  # exact keeps at least half
    assert sum(got.values()) == pytest.approx(1.0)


def test_bounds_of_request_side_and_other_levels() -> None:
    low, high = level_bounds("first_name", "nickname")
    assert 0 < low < 0.04 < high == REQUEST_LEVEL_MAX
    assert level_bounds("first_name", "exact")[1] > 0.99


def test_store_pools_per_agency_case_and_spacing_aside(tmp_path: Path) -> None:
    store = EstimateStore(tmp_path / "estimates")
    assert store.load("ICE").counts == {}
    one = LevelCounts(counts={"first_name": {"nickname": 3.0, "exact": 17.0}}, batches=["b1"])
    store.save("U.S. Immigration  and Customs Enforcement", one)
    two = LevelCounts(counts={"first_name": {"nickname": 1.0}}, batches=["b2"])
    pooled = store.load("u.s. immigration and customs enforcement").add(two)
    assert pooled.counts["first_name"] == {"nickname": 4.0, "exact": 17.0}
    assert pooled.batches == ["b1", "b2"]
    assert store.load("Another agency").counts == {}
    saved = json.loads(next((tmp_path / "estimates").iterdir()).read_text())
    assert "tin" not in json.dumps(saved).lower()


def test_a_damaged_store_file_is_a_clear_error(tmp_path: Path) -> None:
    store = EstimateStore(tmp_path)
    store.save("A", LevelCounts())
    next(tmp_path.iterdir()).write_text("{not json")
    with pytest.raises(ConfigError, match="move the file away"):
        store.load("A")


def test_delta_sql_is_a_case_over_the_level() -> None:
    assert delta_sql(None, "first_name") == "0.0"
    sql = delta_sql({"first_name": {3: 1.5, 4: 0.0}}, "first_name")
    assert sql == "(CASE gamma_first_name WHEN 3 THEN 1.5 ELSE 0.0 END)"


@pytest.fixture(scope="module")
def synth_index(medium_world: World) -> Path:
    """The session's shared population; its index is ``index/`` inside it (read only)."""
    return medium_world.data


def _scored_pairs(engine: DuckDBEngine, model: dict[str, object], rows: list[dict[str, int]],
                  ) -> None:
    """``lk_scored_addr`` of hand-chosen levels: every pair confirmed, names as given."""
    comps = [*NAME_COMPARISONS, *ADDRESS_COMPARISONS]
    best = {c["output_column_name"]: max(g for g, _ in gammas(c))  # type: ignore[index]
            for c in model["comparisons"]}  # type: ignore[attr-defined]
    values = []
    for i, row in enumerate(rows):
        levels = [row.get(c, best[c]) for c in comps]
        values.append(f"({i}, {i}, 'T{i}', 10.0, true, {', '.join(map(str, levels))})")
    engine.execute(f"""CREATE TABLE lk_scored_addr AS SELECT * FROM (VALUES {', '.join(values)})
        v(source_row, record_id, tin, match_weight, address_confirmed,
          {', '.join(f'gamma_{c}' for c in comps)})""")


def test_a_requester_who_writes_nicknames_teaches_it_within_bounds(synth_index: Path) -> None:
    model = load_model(synth_index / "index" / "model.json")
    nick = next(g for g, lv in gammas(next(c for c in model["comparisons"]
                                           if c["output_column_name"] == "first_name"))
                if lv["label_for_charts"] == "nickname")
    # 300 confirmed requests, a third asked by nickname; 600 housemates whose names differ
    rows = [{"first_name": nick} if i % 3 == 0 else {} for i in range(300)]
    rows += [{"first_name": 0, "middle_name": 0} for _ in range(600)]
    with DuckDBEngine() as engine:
        _scored_pairs(engine, model, rows)
        learned = learn(engine, model, table="lk_scored_addr", pooled=LevelCounts(),
                        batch_id="B1")
        again = learn(engine, model, table="lk_scored_addr", pooled=learned.batch_counts,
                      batch_id="B2")
    prior_m = next(lv["m_probability"] for _g, lv in gammas(next(
        c for c in model["comparisons"] if c["output_column_name"] == "first_name"))
        if lv["label_for_charts"] == "nickname")
    assert learned.pairs["names"] == 900
    assert prior_m < learned.m["first_name"][nick] <= REQUEST_LEVEL_MAX
    assert learned.deltas["first_name"][nick] > 0        # nicknames now weigh more
    assert again.m["first_name"][nick] > learned.m["first_name"][nick]  # pooling adds up
    assert again.batches_pooled == 1 and again.estimates_id != learned.estimates_id
    assert learned.deltas["first_name"][0] == 0.0        # "different" never learns


def test_process_pools_what_each_batch_taught(synth_index: Path, tmp_path: Path) -> None:
    from lastknown.pipeline import ProcessOptions, process_request

    store = tmp_path / "estimates"
    summaries = []
    for k in (1, 2):
        batch = tmp_path / f"batch{k}.toml"
        batch.write_text((synth_index / "batch.toml").read_text().replace(
            'batch_id = "', f'batch_id = "L{k}-'))
        result = process_request(synth_index / "request.csv", master=synth_index / "index",
                                 batch_path=batch, out=tmp_path / f"out{k}",
                                 options=ProcessOptions(ledger=str(tmp_path / "l.sqlite"),
                                                        archive=tmp_path / "archive",
                                                        estimates=store))
        summaries.append(result.summary["estimates"])
    assert [s["batches_pooled"] for s in summaries] == [0, 1]
    assert summaries[0]["pairs"]["names"] > 0
    assert len(list(store.iterdir())) == 1


def _near_miss_requests(data: Path, out: Path, *, rows: int = 150) -> int:
    """Rows asking, at a filer's own address and surname, for a *different* person whose
    given name is a real name one or two letters from the filer's (RONALD / RONDA kind).

    A name the nickname lists join to the filer's (LOU / LOUIS, JUDI / JUDITH) is left out:
    that is how a requester may write the filer's own name.
    """
    import csv
    import gzip
    from importlib import resources

    import jellyfish
    import pyarrow.parquet as pq

    from lastknown.normalize.nicknames import nickname_rows

    groups: dict[str, set[str]] = {}
    for name, group in nickname_rows():
        groups.setdefault(name, set()).add(group)

    with gzip.open(resources.files("lastknown") / "data" / "first_names.csv.gz", "rt") as fh:
        known = sorted({r["name"] for r in csv.DictReader(fh)})
    by_len: dict[int, list[str]] = {}
    for name in known:
        by_len.setdefault(len(name), []).append(name)
    master = pq.read_table(data / "master").to_pylist()
    names_at: dict[tuple[str, str], set[str]] = {}
    for r in master:
        names_at.setdefault((r["street"], r["zip"]), set()).add(r["first_name"].upper())
    written = 0
    with (out).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["request_row_id", "first_name", "middle_name", "last_name", "street",
                    "unit", "city", "state", "zip", "removal_order_date",
                    "removal_order_case_number", "statute", "tax_periods"])
        seen: set[str] = set()
        for r in master:
            first = r["first_name"].upper()
            if r["tin"] in seen or len(first) < 4 or written >= rows:
                continue
            options = [n for k in range(len(first) - 2, len(first) + 3)
                       for n in by_len.get(k, [])
                       if n != first and n not in names_at[(r["street"], r["zip"])]
                       and n[0] == first[0]
                       and not (groups.get(n, set()) & (groups.get(first, set()) | {first}))
                       and first not in groups.get(n, set())
                       and jellyfish.damerau_levenshtein_distance(n, first) <= 2]
            if not options:
                continue
            seen.add(r["tin"])
            w.writerow([f"NM-{written:04d}", options[0].title(), "", r["last_name"],
                        r["street"], r["unit"], r["city"], r["state"], r["zip"],
                        "2021-03-01", f"A{written:09d}", "8 U.S.C. 1253(a)(1)",
                        str(r["tax_year"])])
            written += 1
    return written


def test_a_batch_of_near_miss_names_at_filers_addresses_discloses_none(
        synth_index: Path, tmp_path: Path) -> None:
    from lastknown.pipeline import ProcessOptions, process_request

    request = tmp_path / "near_miss.csv"
    n = _near_miss_requests(synth_index, request)
    assert n >= 100
    batch = tmp_path / "batch.toml"
    batch.write_text((synth_index / "batch.toml").read_text().replace(
        'batch_id = "', 'batch_id = "NM-'))
    result = process_request(request, master=synth_index / "index", batch_path=batch,
                             out=tmp_path / "out", options=ProcessOptions(
                                 ledger=str(tmp_path / "l.sqlite"), estimates=tmp_path / "e",
                                 archive=tmp_path / "archive"))
    assert result.rows_rejected == 0
    assert result.rows_matched == 0
    # and what this batch taught does not make the next requester's near-misses count
    assert result.summary["estimates"]["pairs"]["names"] >= n
