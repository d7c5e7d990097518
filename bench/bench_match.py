"""Benchmark: lastknown next to a crude exact lookup and a plain Splink script, one dataset.

    python bench/bench_match.py --persons 200000 --requests 20000 --seed 2 --work /tmp/lkb

Steps: synthesise (``lastknown.synth.generate``, cached in ``--work``), build the index
(timed, once), then each approach in its own child process (so peak RSS is its own):

* ``lastknown`` — ``process_request`` end to end on the index (intake, validation,
  matching, package, ledger), scored by ``lastknown.evaluate``;
* ``exact first+last+state`` — the crude lookup: upper-cased exact names and state,
  a unique TIN gets its latest return inside the requested tax periods;
* ``plain splink`` — Splink 5 with its default name/address comparisons, u by random
  sampling, EM on two blocking rules, predictions ≥ 0.99, a unique TIN above it gets its
  latest return inside the requested tax periods.

The two baselines neither validate nor confirm the address: a disclosure to a row that
should have been rejected is counted as false, as it would be in real life. Prints one
Markdown table: seconds, rows/s, peak RSS, precision, recall, false disclosures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

APPROACHES = ("lastknown", "exact first+last+state", "plain splink")


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _norm(col: str) -> str:
    return f"upper(trim(regexp_replace(coalesce({col}, ''), '\\s+', ' ', 'g')))"


def _score_hits(con: duckdb.DuckDBPyConnection, data: Path) -> dict[str, float]:
    """Precision/recall of table ``hits(request_row_id, street, unit, zip)`` vs truth.csv."""
    truth = f"read_csv('{data / 'truth.csv'}', all_varchar = true)"
    tp, disclosed, expected = con.execute(f"""
        SELECT count_if(t.expected_outcome = 'M'
                        AND {_norm('h.street')} = {_norm('t.expected_street')}
                        AND {_norm('h.unit')} = {_norm('t.expected_unit')}
                        AND left(h.zip, 5) = left(t.expected_zip, 5)),
               count(h.request_row_id),
               (SELECT count_if(expected_outcome = 'M') FROM {truth})
        FROM hits AS h JOIN {truth} AS t USING (request_row_id)
    """).fetchall()[0]
    return {"precision": tp / disclosed if disclosed else 0.0,
            "recall": tp / expected if expected else 0.0, "false_disclosures": disclosed - tp}


def _master(data: Path) -> str:
    return f"read_parquet('{data / 'master'}/**/*.parquet')"


def _years_sql(col: str) -> str:
    """`2023`, `2021-2024`, `2022;2024` → a list of years (the baselines' only parsing)."""
    return (f"flatten(list_transform(string_split(coalesce({col}, ''), ';'), lambda x: CASE "
            "WHEN contains(x, '-') THEN range(TRY_CAST(split_part(x, '-', 1) AS INT), "
            "TRY_CAST(split_part(x, '-', 2) AS INT) + 1) "
            "ELSE [TRY_CAST(trim(x) AS INT)] END))")


def crude_exact_lookup(data: Path) -> dict[str, Any]:
    """Exact upper(first)+upper(last)+state; disclose the latest return of a unique hit."""
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(f"""
        CREATE TABLE hits AS
        WITH req AS (SELECT *, {_years_sql('tax_periods')} AS years
                     FROM read_csv('{data / "request.csv"}', all_varchar = true)),
             j AS (SELECT q.request_row_id, q.years, m.tin, m.tax_year, m.street, m.unit, m.zip
                   FROM req q JOIN {_master(data)} m
                     ON upper(trim(q.first_name)) = upper(m.first_name)
                    AND upper(trim(q.last_name)) = upper(m.last_name)
                    AND upper(trim(q.state)) = m.state),
             u AS (SELECT request_row_id FROM j GROUP BY 1 HAVING count(DISTINCT tin) = 1)
        SELECT j.* FROM j JOIN u USING (request_row_id)
        WHERE list_contains(j.years, j.tax_year)
        QUALIFY row_number() OVER (PARTITION BY j.request_row_id ORDER BY tax_year DESC) = 1
    """)
    return {"seconds": time.perf_counter() - start, **_score_hits(con, data)}


def plain_splink(data: Path) -> dict[str, Any]:
    """Splink 5 out of the box: default comparisons, EM training, threshold 0.99."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    start = time.perf_counter()
    clean = ", ".join(f"NULLIF(upper(trim({c})), '') AS {c}"
                      for c in ("first_name", "last_name", "street", "city", "state"))
    con.execute(f"""
        CREATE TABLE l AS SELECT 'q' || request_row_id AS unique_id, request_row_id, {clean},
               left(zip, 5) AS zip5
        FROM read_csv('{data / "request.csv"}', all_varchar = true)""")
    con.execute(f"""
        CREATE TABLE ly AS SELECT request_row_id, {_years_sql('tax_periods')} AS years
        FROM read_csv('{data / "request.csv"}', all_varchar = true)""")
    con.execute(f"""
        CREATE TABLE r AS SELECT 'r' || CAST(row_number() OVER () AS VARCHAR) AS unique_id,
               tin AS request_row_id, * EXCLUDE (request_row_id, tin) FROM (
            SELECT DISTINCT tin, tin AS request_row_id, {clean}, left(zip, 5) AS zip5
            FROM {_master(data)})""")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[cl.NameComparison("first_name"), cl.NameComparison("last_name"),
                     cl.LevenshteinAtThresholds("street", 2), cl.ExactMatch("city"),
                     cl.ExactMatch("zip5")],
        blocking_rules_to_generate_predictions=[block_on("last_name", "state"),
                                                block_on("zip5", "first_name")],
        retain_matching_columns=False, retain_intermediate_calculation_columns=False)
    db_api = DuckDBAPI(connection=con)
    linker = Linker([db_api.register("l"), db_api.register("r")], settings, log_level=40)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("zip5"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("last_name"))
    pred = linker.inference.predict(threshold_match_probability=0.99).physical_name
    con.execute(f"""
        CREATE TABLE best AS
        SELECT l.request_row_id, ly.years, r.request_row_id AS tin, p.match_probability
        FROM {pred} AS p JOIN l ON l.unique_id = p.unique_id_l
        JOIN ly ON ly.request_row_id = l.request_row_id
        JOIN r ON r.unique_id = p.unique_id_r""")
    con.execute(f"""
        CREATE TABLE hits AS
        WITH u AS (SELECT request_row_id, any_value(tin) AS tin, any_value(years) AS years
                   FROM best GROUP BY 1 HAVING count(DISTINCT tin) = 1)
        SELECT u.request_row_id, m.street, m.unit, m.zip
        FROM u JOIN {_master(data)} AS m ON m.tin = u.tin AND list_contains(u.years, m.tax_year)
        QUALIFY row_number() OVER (PARTITION BY u.request_row_id ORDER BY m.tax_year DESC) = 1
    """)
    return {"seconds": time.perf_counter() - start, **_score_hits(con, data)}


def run_lastknown(data: Path, index: Path, work: Path) -> dict[str, Any]:
    from lastknown.evaluate import evaluate
    from lastknown.pipeline import ProcessOptions, process_request

    stamp = time.strftime('%Y%m%d-%H%M%S')
    out = work / f"response-{stamp}"
    policy = work / "bench-policy.toml"  # a benchmark batch is larger than the default cap
    policy.write_text("max_rows_per_batch = 100000000\n"
                      "max_rows_per_official_per_period = 100000000\n", encoding="utf-8")
    start = time.perf_counter()
    result = process_request(data / "request.csv", master=index, batch_path=data / "batch.toml",
                             out=out, options=ProcessOptions(
                                 ledger=str(work / f"ledger-{stamp}.sqlite"), policy=policy))
    seconds = time.perf_counter() - start
    metrics = evaluate(out, data / "truth.csv")
    return {"seconds": seconds, "precision": metrics.get("precision"),
            "recall": metrics.get("recall"), "false_disclosures": metrics.get("false_disclosures"),
            "expected_false_matches": result.summary.get("expected_false_matches"),
            "match_timings": result.summary.get("timings"), "metrics": metrics}


def _child(approach: str, data: Path, work: Path) -> None:
    if approach == "lastknown":
        out = run_lastknown(data, data / "index", work)
    elif approach == "plain splink":
        out = plain_splink(data)
    else:
        out = crude_exact_lookup(data)
    out["peak_rss_gib"] = _peak_rss_gib()
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-bench"))
    parser.add_argument("--skip", action="append", default=[], choices=APPROACHES)
    parser.add_argument("--one", choices=APPROACHES, help=argparse.SUPPRESS)
    parser.add_argument("--synth", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.work / f"synth-{args.persons}-{args.seed}"
    if args.one:
        _child(args.one, data, args.work)
        return
    if args.synth:
        from lastknown.synth import generate

        generate(persons=args.persons, requests=args.requests, seed=args.seed, out=data)
        return
    if args.index:
        from lastknown.pipeline import build_master_index

        build_master_index(data / "master", out=data / "index")
        return

    # Synthesis and the index build run in children too: a child's peak RSS starts from its
    # parent's resident size at fork, so the parent must stay small.
    common = ["--persons", str(args.persons), "--seed", str(args.seed), "--work", str(args.work)]
    if not (data / "truth.csv").exists():
        subprocess.run([sys.executable, __file__, "--synth", "--requests", str(args.requests),
                        *common], check=True)
    index_seconds = None
    if not (data / "index").exists():
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--index", *common], check=True)
        index_seconds = time.perf_counter() - start
    rows = int(duckdb.sql(f"SELECT count(*) FROM read_csv('{data / 'request.csv'}', "
                          "all_varchar = true)").fetchall()[0][0])
    results: dict[str, dict[str, Any]] = {}
    for approach in APPROACHES:
        if approach in args.skip:
            continue
        proc = subprocess.run([sys.executable, __file__, "--one", approach, "--persons",
                               str(args.persons), "--seed", str(args.seed), "--work",
                               str(args.work)], capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.stderr.write(f"{approach} failed:\n{proc.stderr[-3000:]}\n")
            continue
        results[approach] = json.loads(lines[-1][len("RESULT "):])
    out = sys.stdout
    out.write(f"persons {args.persons:,}, requests {rows:,}, seed {args.seed}; index build "
              + (f"{index_seconds:.1f} s" if index_seconds is not None else "(cached)") + "\n")
    out.write("| approach | seconds | rows/s | peak RSS GiB | precision | recall "
              "| false disclosures |\n|---|---|---|---|---|---|---|\n")
    for name, r in results.items():
        out.write(f"| {name} | {r['seconds']:.1f} | {rows / r['seconds']:,.0f} "
                  f"| {r['peak_rss_gib']:.2f} | {r['precision']:.4f} | {r['recall']:.4f} "
                  f"| {r['false_disclosures']} |\n")
    if "lastknown" in results:
        lk = results["lastknown"]
        out.write(json.dumps({"expected_false_matches": lk["expected_false_matches"],
                              "match_timings": lk["match_timings"],
                              "metrics": lk["metrics"]}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
