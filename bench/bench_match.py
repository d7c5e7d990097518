"""Benchmark and accuracy run of the matcher, side by side with a crude exact lookup.

    python bench/bench_match.py --persons 200000 --requests 20000 --seed 7 --work /tmp/lkb

Steps: synthesise (``lastknown.synth.generate``), build the index (timed), run
``process`` end to end (timed, peak RSS), evaluate against truth.csv; then the crude
approach (exact first+last name+state, latest return) on the same data. Prints one
table of time, precision, recall and false disclosures.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def crude_exact_lookup(data: Path) -> dict[str, float]:
    """Exact upper(first)+upper(last)+state; disclose the latest return of a unique hit."""
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(f"""
        CREATE TABLE hits AS
        WITH req AS (SELECT * FROM read_csv('{data / "request.csv"}', all_varchar = true)),
             m AS (SELECT * FROM read_parquet('{data / "master"}/**/*.parquet')),
             j AS (SELECT q.request_row_id, m.tin, m.tax_year, m.street, m.zip
                   FROM req q JOIN m ON upper(trim(q.first_name)) = upper(m.first_name)
                    AND upper(trim(q.last_name)) = upper(m.last_name)
                    AND upper(trim(q.state)) = m.state),
             u AS (SELECT request_row_id FROM j GROUP BY 1 HAVING count(DISTINCT tin) = 1)
        SELECT j.* FROM j JOIN u USING (request_row_id)
        QUALIFY row_number() OVER (PARTITION BY j.request_row_id ORDER BY tax_year DESC) = 1
    """)
    seconds = time.perf_counter() - start
    truth = f"read_csv('{data / 'truth.csv'}', all_varchar = true)"
    tp, disclosed, expected = con.execute(f"""
        SELECT count_if(t.expected_outcome = 'M'
                        AND upper(trim(h.street)) = upper(trim(t.expected_street))
                        AND left(h.zip, 5) = left(t.expected_zip, 5)),
               count(h.request_row_id),
               (SELECT count_if(expected_outcome = 'M') FROM {truth})
        FROM hits h JOIN {truth} t USING (request_row_id)
    """).fetchone() or (0, 0, 0)
    return {"seconds": round(seconds, 2), "precision": tp / disclosed if disclosed else 0.0,
            "recall": tp / expected if expected else 0.0, "false_disclosures": disclosed - tp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-bench"))
    args = parser.parse_args()

    from lastknown.evaluate import evaluate

    from lastknown.pipeline import ProcessOptions, build_master_index, process_request
    from lastknown.synth import generate

    data = args.work / f"synth-{args.persons}-{args.seed}"
    if not data.exists():
        generate(persons=args.persons, requests=args.requests, seed=args.seed, out=data)
    index = data / "index"
    start = time.perf_counter()
    if not index.exists():
        build_master_index(data / "master", out=index)
    index_seconds = time.perf_counter() - start

    out = args.work / f"response-{time.strftime('%H%M%S')}"
    start = time.perf_counter()
    result = process_request(data / "request.csv", master=index, batch_path=data / "batch.toml",
                             out=out, options=ProcessOptions(ledger=str(args.work / "l.sqlite")))
    seconds = time.perf_counter() - start
    metrics = evaluate(out, data / "truth.csv")
    crude = crude_exact_lookup(data)
    rows = [
        ("lastknown", seconds, metrics.get("precision"), metrics.get("recall"),
         metrics.get("false_disclosures")),
        ("exact first+last+state", crude["seconds"], crude["precision"], crude["recall"],
         crude["false_disclosures"]),
    ]
    print(f"index build: {index_seconds:.1f} s; process: {seconds:.1f} s "
          f"({result.rows_total / seconds:,.0f} rows/s); peak RSS {_peak_rss_gib():.2f} GiB")
    print("| approach | seconds | precision | recall | false disclosures |")
    print("|---|---|---|---|---|")
    for name, secs, prec, rec, false in rows:
        print(f"| {name} | {secs:.1f} | {prec} | {rec} | {false} |")
    print(json.dumps({"summary": result.summary, "metrics": metrics}, indent=2, default=str))


if __name__ == "__main__":
    main()
