"""Robustness benchmark: lastknown, the exact baseline and plain Splink on requests carrying
errors from an independent model (bench/corrupt), not from the generator lastknown is tuned on.

    python bench/bench_robust.py --persons 50000 --requests 5000 --seed 101 --work /tmp/lkr
    python bench/bench_robust.py --seed 101 --single-year --romanisation --attack
    python bench/bench_robust.py --seed 101 --model field   # keying/export errors

Steps: synthesise with ``lastknown.synth.generate`` and build the index (both cached in
``--work``, laid out as bench_match.py does, so the two share them); keep the expected-M
rows whose name and address are exactly as on file (the clean rows), the N and the U
rows; then

* the sweep (default): corrupt 0, 5, 10, 20 and 40 % of those rows with 1–3 errors each
  (seeded by ``--seed``; the rows corrupted at a lower rate are among those at a higher
  one) and print precision, recall and false disclosures per rate. ``--model`` picks the
  error model: ``default`` (bench/corrupt: typos, OCR, respelling) or ``field``
  (bench/corrupt_field: how requester spreadsheets key and export data — ZIPs that lost
  a leading zero, full state names, LAST, FIRST in one column, units in the street line
  …), two models written apart from each other and from synth;
* ``--single-year`` / ``--romanisation`` / ``--attack``: the hard sets of
  bench/robust_sets.py, one table row per set and approach; the single-year requests are
  also run against the full master ("same rows, all years on file": the reference of
  issue 11's single-year recall bar).

Truth never changes with the errors: a corrupted M row still expects its address. The
approaches are bench_match.py's (``run_lastknown``, ``crude_exact_lookup``,
``plain_splink``), run in this process one after another. Keep tuning seeds (1–99) and
reporting seeds (≥ 100) apart: docs/MATCHING.md, "Robustness (independent corruption)".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import bench_match as bm
import corrupt
import corrupt_field
import robust_sets as rs

RATES = (0, 5, 10, 20, 40)
#: --model -> (corrupt_rows, operator names, work directory suffix).
MODELS: dict[str, tuple[rs.Corruptor, tuple[str, ...], str]] = {
    "default": (corrupt.corrupt_rows, tuple(corrupt.OPERATORS), ""),
    "field": (corrupt_field.corrupt_rows, tuple(corrupt_field.OPERATORS), "-field"),
}


def prepare(persons: int, requests: int, seed: int, work: Path,
            limits: dict[str, Any]) -> Path:
    """The synth base and its index, built once per (persons, seed) in ``work``."""
    data = work / f"synth-{persons}-{seed}"
    if not (data / "truth.csv").exists():
        from lastknown.synth import generate

        generate(persons=persons, requests=requests, seed=seed, out=data,
                 shard_persons=bm.SHARD_PERSONS)
    if not bm.index_is_current(data / "index"):
        build_index(data / "master", data / "index", limits)
    return data


def build_index(master: Path, index: Path, limits: dict[str, Any]) -> str | None:
    """Build the lastknown index; None, or why lastknown refused the master."""
    from lastknown.errors import LastknownError
    from lastknown.pipeline import build_master_index

    try:
        build_master_index(master, out=index, **limits)
    except LastknownError as exc:
        return "refused the master: " + _one_line(exc)
    return None


def measure(data: Path, index: Path, limits: dict[str, Any], skip: list[str],
            refused: str | None = None) -> dict[str, dict[str, Any]]:
    """Each approach on one set: precision, recall, false disclosures, disclosures on N."""
    from lastknown.errors import LastknownError

    results: dict[str, dict[str, Any]] = {}
    for approach in bm.APPROACHES:
        if approach in skip:
            continue
        if approach == "lastknown":
            if refused:
                results[approach] = {"error": refused}
                continue
            try:
                got = bm.run_lastknown(data, index, data, limits)
            except LastknownError as exc:
                results[approach] = {"error": _one_line(exc)}
                continue
            got["disclosed_when_expected_n"] = got["metrics"]["confusion"].get(
                "N", {}).get("M", 0)
        elif approach == "plain splink":
            got = bm.plain_splink(data, limits)
        else:
            got = bm.crude_exact_lookup(data, limits)
        results[approach] = got
    return results


def _one_line(exc: Exception, limit: int = 240) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def sweep(base: rs.Base, args: argparse.Namespace, limits: dict[str, Any]) -> None:
    approaches = [a for a in bm.APPROACHES if a not in args.skip]
    corrupt_rows, operators, suffix = MODELS[args.model]
    lines = []
    for rate in args.rates:
        data, applied = rs.sweep_set(
            base, rate / 100, args.seed,
            args.work / f"robust-{args.persons}-{args.seed}-{rate}{suffix}", corrupt_rows)
        got = measure(data, base.path / "index", limits, args.skip)
        cells = [f"{rate} %", f"{len(applied):,}"]
        for a in approaches:
            r = got[a]
            cells += ([r["error"], "", ""] if "error" in r else
                      [_num(r["precision"]), _num(r["recall"]), _num(r["false_disclosures"])])
        lines.append("| " + " | ".join(cells) + " |")
    out = sys.stdout
    out.write(f"persons {args.persons:,}, requests {args.requests:,}, seed {args.seed} "
              f"(synth and corruption), model {args.model}; {len(base.clean_m):,} clean M "
              f"+ {len(base.n_ids):,} N + {len(base.u_ids):,} U rows\n")
    out.write("| corrupted | rows | " + " | ".join(
        f"{a} precision | {a} recall | {a} false" for a in approaches) + " |\n")
    out.write("|" + "---|" * (2 + 3 * len(approaches)) + "\n")
    out.write("\n".join(lines) + "\n")
    if "lastknown" not in args.skip and applied:
        by_operator(base, applied, rs.package_outcomes(data), max(args.rates), operators)


def by_operator(base: rs.Base, applied: dict[str, list[str]], outcomes: dict[str, str],
                rate: int, operators: tuple[str, ...]) -> None:
    """lastknown's outcomes on the corrupted expected-M rows, per operator applied."""
    out = sys.stdout
    kinds = ("M", "N", "A", "U", "R")
    out.write(f"\nlastknown at {rate} %: outcomes of corrupted expected-M rows by operator "
              "(any: rows with it among their 1-3 errors; alone: rows with only it)\n"
              "| operator | rows (any) | " + " | ".join(kinds) + " | rows (alone) "
              "| M (alone) |\n|" + "---|" * (4 + len(kinds)) + "\n")
    m_rows = {i: ops for i, ops in applied.items() if base.truth[i]["expected_outcome"] == "M"}
    for name in operators:
        anyof = [i for i, ops in m_rows.items() if name in ops]
        alone = [i for i, ops in m_rows.items() if ops == [name]]
        counts = [sum(outcomes.get(i) == k for i in anyof) for k in kinds]
        out.write(f"| {name} | {len(anyof)} | " + " | ".join(map(str, counts))
                  + f" | {len(alone)} | {sum(outcomes.get(i) == 'M' for i in alone)} |\n")


def hard_sets(base: rs.Base, args: argparse.Namespace, limits: dict[str, Any]) -> None:
    stem = args.work / f"hard-{args.persons}-{args.seed}"
    table = []
    if args.single_year:
        data, info = rs.single_year_set(base, args.seed, stem / "single-year", args.hard_rate,
                                        args.imperfect)
        refused = build_index(data / "master", data / "index", limits)
        table.append(("single year", info, measure(data, data / "index", limits, args.skip,
                                                   refused)))
        full = rs.with_base_master(data, base, stem / "single-year-all-years")
        table.append(("same rows, all years on file", {},
                      measure(full, base.path / "index", limits, args.skip)))
    if args.romanisation:
        data, info = rs.romanisation_set(base, args.seed, stem / "romanisation")
        table.append(("romanisation", info, measure(data, base.path / "index", limits,
                                                     args.skip)))
    if args.attack:
        data, info = rs.attack_set(base, args.seed, stem / "attack", args.attack_rows)
        table.append(("attack", info, measure(data, base.path / "index", limits, args.skip)))
    out = sys.stdout
    out.write(f"persons {args.persons:,}, requests {args.requests:,}, seed {args.seed}\n"
              "| set | approach | precision | recall | false disclosures "
              "| disclosed when expected N |\n|---|---|---|---|---|---|\n")
    for name, _, got in table:
        for approach, r in got.items():
            if "error" in r:
                out.write(f"| {name} | {approach} | {r['error']} | | | |\n")
                continue
            out.write(f"| {name} | {approach} | {_num(r['precision'])} | {_num(r['recall'])} "
                      f"| {r['false_disclosures']} | {r['disclosed_when_expected_n']} |\n")
    for name, info, _ in table:
        if info:
            out.write(f"{name}: " + ", ".join(f"{k} {v}" for k, v in info.items()
                                              if isinstance(v, int)) + "\n")
    if args.romanisation and "lastknown" not in args.skip:
        outcomes = rs.package_outcomes(stem / "romanisation")
        ids = next(info["ids"] for name, info, _ in table if name == "romanisation")
        out.write("romanisation, lastknown disclosed: " + ", ".join(
            f"{sum(outcomes.get(i) == 'M' for i in rows)} of {len(rows)} with the {label} "
            "respelled" for label, rows in (("given name", ids["first_name"]),
                                            ("surname", ids["last_name"]))) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=101,
                        help="synth and corruption seed; report on seeds >= 100")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lastknown-robust"))
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                        default=list(RATES), help="percentages of rows corrupted, e.g. 0,20")
    parser.add_argument("--model", choices=tuple(MODELS), default="default",
                        help="the sweep's error model: default (bench/corrupt) or field "
                             "(bench/corrupt_field: keying and export errors)")
    parser.add_argument("--single-year", action="store_true",
                        help="hard set: one tax year, ~2 %% imperfect master rows")
    parser.add_argument("--romanisation", action="store_true",
                        help="hard set: respelled names at confirmed addresses")
    parser.add_argument("--attack", action="store_true",
                        help="hard set: near-miss given names at filers' own addresses")
    parser.add_argument("--attack-rows", type=int, default=500)
    parser.add_argument("--imperfect", type=float, default=rs.IMPERFECT_SHARE,
                        help="share of single-year master rows damaged (0-1; default 0.02)")
    parser.add_argument("--hard-rate", type=float, default=0.0,
                        help="share of single-year request rows also corrupted (0-1)")
    parser.add_argument("--skip", action="append", default=[], choices=bm.APPROACHES)
    parser.add_argument("--threads", type=int, help="DuckDB threads for every approach")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for every approach")
    args = parser.parse_args()
    limits = {"threads": args.threads, "memory_limit": args.memory_limit}
    args.work.mkdir(parents=True, exist_ok=True)
    base = rs.load_base(prepare(args.persons, args.requests, args.seed, args.work, limits))
    if args.single_year or args.romanisation or args.attack:
        hard_sets(base, args, limits)
    else:
        sweep(base, args, limits)


if __name__ == "__main__":
    main()
