"""Benchmark: lastknown next to a crude exact lookup and a plain Splink script, one dataset.

    python bench/bench_match.py --persons 200000 --requests 20000 --seed 2 --work /tmp/lkb
    # the scale bar: 10M persons, 1M requests, 2 threads, DuckDB held to 5 GB (spills to
    # --work/.tmp), plain Splink skipped (infeasible at that size, see PLAIN_SPLINK_MAX)
    python bench/bench_match.py --persons 10000000 --requests 1000000 --seed 5 \
        --work /tmp/lks --threads 2 --memory-limit 5GB

Steps: synthesise (``lastknown.synth.generate`` in shards of a million persons, cached in
``--work``), build the index (timed, once, its own child: seconds and peak RSS), then each
approach in its own child process (so peak RSS is its own):

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
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

APPROACHES = ("lastknown", "exact first+last+state", "plain splink")
SHARD_PERSONS = 1_000_000
#: Plain Splink is skipped above this many persons: at 2M its EM and prediction on
#: (last name, state) blocks already need more than the whole machine's time budget
#: (58.6 s and 4.7 GiB at 200k persons / 20k requests; the pairs grow with
#: requests × block size, i.e. ~50 × at 10M / 1M).
PLAIN_SPLINK_MAX = 2_000_000


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _norm(col: str) -> str:
    return f"upper(trim(regexp_replace(coalesce({col}, ''), '\\s+', ' ', 'g')))"


def _score_hits(con: duckdb.DuckDBPyConnection, data: Path) -> dict[str, float]:
    """Precision/recall of table ``hits(request_row_id, street, unit, zip)`` vs truth.csv,
    and how many hits truth expected `N` for (bench_robust.py's attack rows)."""
    truth = f"read_csv('{data / 'truth.csv'}', all_varchar = true)"
    tp, disclosed, expected, to_n = con.execute(f"""
        SELECT count_if(t.expected_outcome = 'M'
                        AND {_norm('h.street')} = {_norm('t.expected_street')}
                        AND {_norm('h.unit')} = {_norm('t.expected_unit')}
                        AND left(h.zip, 5) = left(t.expected_zip, 5)),
               count(h.request_row_id),
               (SELECT count_if(expected_outcome = 'M') FROM {truth}),
               count_if(t.expected_outcome = 'N')
        FROM hits AS h JOIN {truth} AS t USING (request_row_id)
    """).fetchall()[0]
    tp, to_n = tp or 0, to_n or 0  # count_if over no hits is NULL
    return {"precision": tp / disclosed if disclosed else 0.0,
            "recall": tp / expected if expected else 0.0, "false_disclosures": disclosed - tp,
            "disclosed_when_expected_n": to_n}


def _master(data: Path) -> str:
    return f"read_parquet('{data / 'master'}/**/*.parquet')"


def _years_sql(col: str) -> str:
    """`2023`, `2021-2024`, `2022;2024` → a list of years (the baselines' only parsing)."""
    return (f"flatten(list_transform(string_split(coalesce({col}, ''), ';'), lambda x: CASE "
            "WHEN contains(x, '-') THEN range(TRY_CAST(split_part(x, '-', 1) AS INT), "
            "TRY_CAST(split_part(x, '-', 2) AS INT) + 1) "
            "ELSE [TRY_CAST(trim(x) AS INT)] END))")


def _connect(limits: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if limits.get("threads"):
        con.execute(f"SET threads = {int(limits['threads'])}")
    if limits.get("memory_limit"):
        con.execute(f"SET memory_limit = '{limits['memory_limit']}'")
    return con


def crude_exact_lookup(data: Path, limits: dict[str, Any]) -> dict[str, Any]:
    """Exact upper(first)+upper(last)+state; disclose the latest return of a unique hit."""
    con = _connect(limits)
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


def plain_splink(data: Path, limits: dict[str, Any]) -> dict[str, Any]:
    """Splink 5 out of the box: default comparisons, EM training, threshold 0.99."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = _connect(limits)
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


class _PairCounts(logging.Handler):
    """Keeps the matcher's "scored N candidate pairs; pruned M" log line (counts only)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.pairs: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("scored ") and isinstance(record.args, tuple):
            self.pairs = {"scored": int(str(record.args[0])), "pruned": int(str(record.args[1]))}


def index_is_current(index: Path) -> bool:
    """True when ``index`` holds an index this lastknown can open; a cached index built
    by another version (``INDEX_VERSION``) is removed so that it is built again."""
    import shutil

    from lastknown.match.index import INDEX_VERSION, MANIFEST

    try:
        manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("index_version") == INDEX_VERSION:
        return True
    shutil.rmtree(index, ignore_errors=True)
    return False


def benchmark_batch(data: Path, work: Path, approver: str = "bench_match.py") -> tuple[Path, Path]:
    """(batch file, policy file) in ``work`` for ``data``'s batch: a benchmark batch is
    larger than the default caps, and a raised cap needs a recorded approval."""
    policy = work / "bench-policy.toml"
    caps = ("max_rows_per_batch = 100000000\n"
            "max_rows_per_official_per_period = 100000000\n")
    policy.write_text(caps, encoding="utf-8")
    batch = work / "bench-batch.toml"
    batch.write_text((data / "batch.toml").read_text(encoding="utf-8")
                     + f'\n[overrides]\nreason = "benchmark"\napproved_by = "{approver}"\n'
                     + "[overrides.policy]\n" + caps, encoding="utf-8")
    return batch, policy


def run_lastknown(data: Path, index: Path, work: Path, limits: dict[str, Any], *,
                  engine: str = "duckdb") -> dict[str, Any]:
    from lastknown.evaluate import evaluate
    from lastknown.pipeline import ProcessOptions, process_request

    stamp = time.strftime('%Y%m%d-%H%M%S')
    out = work / f"response-{stamp}"
    batch, policy = benchmark_batch(data, work)
    counts = _PairCounts()
    match_log = logging.getLogger("lastknown.match")
    match_log.addHandler(counts)
    match_log.setLevel(logging.INFO)
    start = time.perf_counter()
    result = process_request(data / "request.csv", master=index, batch_path=batch,
                             out=out, options=ProcessOptions(
                                 ledger=str(work / f"ledger-{stamp}.sqlite"), policy=policy,
                                 archive=work / f"archive-{stamp}",
                                 threads=limits.get("threads"), engine=engine,
                                 memory_limit=limits.get("memory_limit")))
    seconds = time.perf_counter() - start
    peak_match = _peak_rss_gib()  # before evaluation (not part of answering the request)
    metrics = evaluate(out, data / "truth.csv", record_dir=result.record)
    return {"seconds": seconds, "precision": metrics.get("precision"),
            "recall": metrics.get("recall"), "false_disclosures": metrics.get("false_disclosures"),
            "expected_false_matches": result.summary.get("expected_false_matches"),
            "match_timings": result.summary.get("match_timings_seconds"), "pairs": counts.pairs,
            "stage_timings": result.summary.get("timings_seconds"),
            "peak_rss_gib_before_evaluate": peak_match, "metrics": metrics}


def _child(approach: str, data: Path, work: Path, limits: dict[str, Any]) -> None:
    if approach == "lastknown":
        out = run_lastknown(data, data / "index", work, limits)
    elif approach == "plain splink":
        out = plain_splink(data, limits)
    else:
        out = crude_exact_lookup(data, limits)
    out["peak_rss_gib"] = _peak_rss_gib()
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-bench"))
    parser.add_argument("--skip", action="append", default=[], choices=APPROACHES)
    parser.add_argument("--threads", type=int, help="DuckDB threads for every approach")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for every approach, "
                        "e.g. 5GB (it spills to --work/.tmp beyond it)")
    parser.add_argument("--one", choices=APPROACHES, help=argparse.SUPPRESS)
    parser.add_argument("--synth", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.work / f"synth-{args.persons}-{args.seed}"
    limits = {"threads": args.threads, "memory_limit": args.memory_limit}
    if args.one:
        _child(args.one, data, args.work, limits)
        return
    if args.synth:
        from lastknown.synth import generate

        # Shards of at most a million persons keep synthesis under ~4 GB at any size.
        generate(persons=args.persons, requests=args.requests, seed=args.seed, out=data,
                 shard_persons=SHARD_PERSONS)
        return
    if args.index:
        from lastknown.pipeline import build_master_index

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        logging.getLogger("lastknown.match").setLevel(logging.INFO)  # step timings, counts
        start = time.perf_counter()
        info = build_master_index(data / "master", out=data / "index", **limits)
        sys.stdout.write("RESULT " + json.dumps({
            "seconds": time.perf_counter() - start, "peak_rss_gib": _peak_rss_gib(),
            "return_rows": info.return_rows, "record_count": info.record_count}) + "\n")
        return

    # Synthesis and the index build run in children too: a child's peak RSS starts from its
    # parent's resident size at fork, so the parent must stay small.
    common = ["--persons", str(args.persons), "--seed", str(args.seed), "--work", str(args.work)]
    for flag, value in (("--threads", args.threads), ("--memory-limit", args.memory_limit)):
        if value:
            common += [flag, str(value)]
    args.work.mkdir(parents=True, exist_ok=True)
    if not (data / "truth.csv").exists():
        subprocess.run([sys.executable, __file__, "--synth", "--requests", str(args.requests),
                        *common], check=True)
    built: dict[str, Any] | None = None
    if not index_is_current(data / "index"):
        built = _run_child([sys.executable, __file__, "--index", *common], args.work, "index")
    if args.persons > PLAIN_SPLINK_MAX and "plain splink" not in args.skip:
        sys.stderr.write(f"plain splink skipped: more than {PLAIN_SPLINK_MAX:,} persons "
                         "(see PLAIN_SPLINK_MAX)\n")
        args.skip.append("plain splink")
    rows = int(duckdb.sql(f"SELECT count(*) FROM read_csv('{data / 'request.csv'}', "
                          "all_varchar = true)").fetchall()[0][0])
    results: dict[str, dict[str, Any]] = {}
    for approach in APPROACHES:
        if approach in args.skip:
            continue
        got = _run_child([sys.executable, __file__, "--one", approach, *common], args.work,
                         approach)
        if got is not None:
            results[approach] = got
    out = sys.stdout
    out.write(f"persons {args.persons:,}, requests {rows:,}, seed {args.seed}; threads "
              f"{args.threads or 'all'}, memory_limit {args.memory_limit or 'DuckDB default'}; "
              "index build " + (f"{built['seconds']:.1f} s, peak RSS {built['peak_rss_gib']:.2f}"
                                f" GiB, {built['return_rows']:,} returns, "
                                f"{built['record_count']:,} records" if built else "(cached)")
              + "\n")
    out.write("| approach | seconds | rows/s | peak RSS GiB | precision | recall "
              "| false disclosures |\n|---|---|---|---|---|---|---|\n")
    for name, r in results.items():
        out.write(f"| {name} | {r['seconds']:.1f} | {rows / r['seconds']:,.0f} "
                  f"| {r['peak_rss_gib']:.2f} | {r['precision']:.4f} | {r['recall']:.4f} "
                  f"| {r['false_disclosures']} |\n")
    if "lastknown" in results:
        lk = results["lastknown"]
        out.write(json.dumps({"expected_false_matches": lk["expected_false_matches"],
                              "match_timings": lk["match_timings"], "pairs": lk.get("pairs"),
                              "stage_timings": lk.get("stage_timings"),
                              "peak_rss_gib_before_evaluate":
                                  lk.get("peak_rss_gib_before_evaluate"),
                              "metrics": lk["metrics"]}, indent=2, default=str) + "\n")


def _run_child(cmd: list[str], work: Path, what: str) -> dict[str, Any] | None:
    """Run a child in ``work`` (DuckDB spills to ``work/.tmp``); its RESULT line, or None."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(f"{what} failed:\n{proc.stderr[-3000:]}\n")
        return None
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    return result


if __name__ == "__main__":
    main()
