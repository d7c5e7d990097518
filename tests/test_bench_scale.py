"""bench/bench_scale.py: the power-law fit, the projection, merging and rendering results,
and the request sample. Nothing here is timed: the points are made up."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import bench_scale as bs
import pytest

GRID = [(p, r) for p in (1e6, 3e6, 10e6) for r in (1e5, 1e6)]


def law(a: float, b: float, c: float) -> Any:
    return lambda p, r: a * p ** b * r ** c


def test_fit_recovers_a_known_power_law() -> None:
    f = law(3e-6, 0.8, 1.1)
    fit = bs.fit_power_law([(p, r, f(p, r)) for p, r in GRID])
    assert fit.persons_exp == pytest.approx(0.8, abs=1e-9)
    assert fit.requests_exp == pytest.approx(1.1, abs=1e-9)
    assert fit.coefficient == pytest.approx(3e-6, rel=1e-9)
    assert fit.rms_log_residual == pytest.approx(0.0, abs=1e-9)
    assert fit.predict(30e6, 7.3e6) == pytest.approx(f(30e6, 7.3e6), rel=1e-9)


def test_fit_is_least_squares_on_logarithms() -> None:
    # one point off the law by a factor e: the fit spreads it, residuals are not zero,
    # and the exponents move the way the disturbed point pulls them
    f = law(1e-3, 1.0, 0.5)
    pts = [(p, r, f(p, r) * (math.e if (p, r) == (10e6, 1e6) else 1.0)) for p, r in GRID]
    fit = bs.fit_power_law(pts)
    assert fit.rms_log_residual > 0.1
    assert fit.persons_exp is not None and fit.persons_exp > 1.0
    assert fit.requests_exp is not None and fit.requests_exp > 0.5
    # the log residuals of a least-squares fit with an intercept sum to zero
    res = [math.log(t) - math.log(fit.predict(p, r) or 0) for p, r, t in pts]
    assert sum(res) == pytest.approx(0.0, abs=1e-9)


def test_a_variable_never_varied_has_no_exponent_and_no_projection() -> None:
    fit = bs.fit_power_law([(1e6, 1e5, 2.0), (4e6, 1e5, 8.0)])
    assert fit.persons_exp == pytest.approx(1.0)
    assert fit.requests_exp is None
    assert fit.predict(8e6, 1e5) == pytest.approx(16.0)
    assert fit.predict(8e6, 1e6) is None


def _point(p: float, r: float, *, stages: dict[str, Any], rest: Any, exact: Any,
           index: Any = None) -> dict[str, Any]:
    st = {k: f(p, r) for k, f in stages.items()}
    total = sum(st.values()) + rest(p, r)
    point: dict[str, Any] = {
        "engine": "duckdb", "persons": int(p), "requests": int(r),
        "process": {"seconds": total, "cpu": sum(st.values()) / 2 + 3.0, "stage_timings": st,
                    "stage_cpu": {**{k: v / 2 for k, v in st.items()}, "publish": 1.0},
                    "match_timings": {"candidate_search": st["match"] * 0.6,
                                      "scoring": st["match"] * 0.3,
                                      "decision": st["match"] * 0.1},
                    "peak_rss_gib_before_evaluate": 1.5, "spill_gib": 0.25},
        "exact": {"seconds": exact(p, r), "cpu": exact(p, r) / 2},
        "index": None,
    }
    if index is not None:
        point["index"] = {"seconds": index(p) + 5.0, "cpu": index(p) + 2.0,
                          "peak_rss_gib": 4.0, "spill_gib": 1.0,
                          "steps": {"idx_record": index(p)},
                          "steps_cpu": {"idx_record": index(p)}}
    return point


STAGES = {"intake": law(1e-5, 0.0, 1.0), "match": law(2e-11, 0.7, 1.2)}
REST, EXACT = law(3e-6, 0.0, 1.0), law(1e-7, 1.0, 0.3)


def _points() -> list[dict[str, Any]]:
    return [_point(p, r, stages=STAGES, rest=REST, exact=EXACT,
                   index=(lambda x: 4e-5 * x) if r == 1e5 else None) for p, r in GRID]


def test_projection_is_the_sum_of_the_stage_fits() -> None:
    fits = bs.fit_all(_points())
    assert set(fits["process"]) == {"intake", "match", "publish+rest"}
    assert fits["process"]["match"].persons_exp == pytest.approx(0.7)
    assert fits["process"]["match"].requests_exp == pytest.approx(1.2)
    got = bs.project(fits, 30e6, 7.3e6)
    want = sum(f(30e6, 7.3e6) for f in STAGES.values()) + REST(30e6, 7.3e6)
    assert got["process_seconds"] == pytest.approx(want, rel=1e-9)
    assert got["exact_seconds"] == pytest.approx(EXACT(30e6, 7.3e6), rel=1e-9)
    assert got["match"]["scoring"] == pytest.approx(0.3 * STAGES["match"](30e6, 7.3e6))
    # the index: its step is linear in persons, the rest a constant 5 s
    assert got["index_steps"]["idx_record"] == pytest.approx(4e-5 * 30e6)
    assert got["index_steps"]["load+rest"] == pytest.approx(5.0)
    assert got["index_steps_cpu"] == pytest.approx({"idx_record": 4e-5 * 30e6, "load+rest": 2.0})
    # the fit of the total (a line plus a constant is not a power law) is near, not exact
    assert got["index_cpu_seconds"] == pytest.approx(4e-5 * 30e6 + 2.0, rel=0.05)
    assert got["index_cpu_seconds"] != pytest.approx(4e-5 * 30e6 + 2.0, rel=1e-6)
    # CPU: half of each stage's wall, publish 1 s and 2 s beyond them, all constant in size
    assert got["stages_cpu"]["publish"] == pytest.approx(1.0)
    assert got["stages_cpu"]["rest"] == pytest.approx(2.0)
    assert got["process_cpu_seconds"] == pytest.approx(
        sum(f(30e6, 7.3e6) for f in STAGES.values()) / 2 + 3.0, rel=1e-9)


def test_too_few_points_for_the_parameters_are_not_fitted() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        bs.fit_power_law([(1e6, 1e5, 2.0), (3e6, 1e6, 8.0)])
    fits = bs.fit_all(_points()[:2])      # one persons value: requests only
    assert fits["process"]["match"].persons_exp is None
    assert bs.project(fits)["process_seconds"] is None


def _doc(points: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": bs.RESULTS_VERSION, "points": points,
            "runs": [{"date": "2026-11-30", "command": "bench_scale.py --x", "threads": 2,
                      "memory_limit": "5GB", "note": "machine busy"}]}


def test_markdown_table_fit_and_verdict() -> None:
    text = bs.render_markdown(_doc(_points()))
    rows = [ln for ln in text.splitlines() if ln.startswith("| duckdb |")]
    assert len(rows) == 6
    p, r = 1e6, 1e5
    first = rows[0].split(" | ")
    assert first[1:3] == ["1M", "100k"]
    total = sum(f(p, r) for f in STAGES.values()) + REST(p, r)
    assert first[7] == f"{total:,.1f}"                      # process s
    assert first[13] == f"{total / EXACT(p, r):,.1f}"       # ratio to the exact lookup
    assert "| process wall: match | 2e-11 | 0.70 | 1.20 | 0.000 |" in text
    assert "| process CPU: match | 1e-11 | 0.70 | 1.20 | 0.000 |" in text
    assert "| index CPU: idx_record | 4e-05 | 1.00 | – | 0.000 | 1,200.0 |" in text
    assert "- run of 2026-11-30 (duckdb, threads 2, memory_limit 5GB): machine busy" in text
    minutes = bs.project(bs.fit_all(_points()))["process_seconds"] / 60
    assert f"process {minutes:,.1f} min wall" in text
    assert minutes < 90
    assert "under 90 minutes: the run should be done" in text
    assert "over 90 minutes" not in text


def test_verdict_over_ninety_minutes() -> None:
    slow = {"intake": STAGES["intake"], "match": law(2e-9, 0.7, 1.2)}
    pts = [_point(p, r, stages=slow, rest=REST, exact=EXACT) for p, r in GRID]
    text = bs.render_markdown(_doc(pts))
    assert "over 90 minutes, in wall time and in CPU per thread" in text
    # CPU a tenth of wall: an idle machine might make it, so the verdict says measure again
    for x in pts:
        x["process"]["stage_cpu"] = {k: v / 10 for k, v in x["process"]["stage_cpu"].items()}
        x["process"]["cpu"] = sum(x["process"]["stage_cpu"].values())
    assert "on an idle machine the run may be under 90 minutes" in bs.render_markdown(_doc(pts))


def test_a_measured_target_run_is_shown_against_the_projection_not_fitted() -> None:
    projected = bs.project(bs.fit_all(_points()))
    target = _point(30e6, 7.3e6 - 1000, stages=STAGES, rest=REST, exact=EXACT,
                    index=lambda x: 4e-5 * x)
    target["process"]["seconds"] = 2 * projected["process_seconds"]  # far off the law
    text = bs.render_markdown(_doc([*_points(), target]))
    assert "(least squares on logarithms, 6 DuckDB points, not the target run)" in text
    # the fit is the six grid points' alone, as if the target run were not there
    assert f"process {projected['process_seconds'] / 60:,.1f} min wall as the sum" in text
    assert ("Measured at 7.299M requests × 30M persons: process "
            f"{2 * projected['process_seconds'] / 60:,.1f} min (projected "
            f"{projected['process_seconds'] / 60:,.1f} min, 2.00× the projection) wall") in text
    assert "Verdict: the run was done on this machine; its process took" in text
    assert "the run should be done" not in text
    assert len([ln for ln in text.splitlines() if ln.startswith("| duckdb |")]) == 7
    assert not bs.is_target(_points()[-1])


def test_merge_later_point_wins_and_runs_are_kept(tmp_path: Path) -> None:
    a, b = _points()[:2], [dict(_points()[0], measured_at="later")]
    for name, pts in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(_doc(pts)), encoding="utf-8")
    doc = bs.merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert len(doc["points"]) == 2 and len(doc["runs"]) == 2
    assert doc["points"][0]["measured_at"] == "later"
    (tmp_path / "c.json").write_text(json.dumps({"version": 99, "points": []}))
    with pytest.raises(SystemExit, match="not a bench_scale results file"):
        bs.merge([tmp_path / "c.json"])


def test_generated_block_is_replaced_and_read_back() -> None:
    text = f"# Doc\nbefore\n{bs.BEGIN}\nold\n{bs.END}\nafter\n"
    new = bs.replace_block(text, "| new |\n")
    assert new == f"# Doc\nbefore\n{bs.BEGIN}\n| new |\n{bs.END}\nafter\n"
    assert bs.block_of(new) == "| new |\n"
    with pytest.raises(ValueError):
        bs.block_of("no markers")


def test_request_sample_keeps_its_truth_rows(tmp_path: Path) -> None:
    data = tmp_path / "synth-50-1"
    (data / "master").mkdir(parents=True)
    ids = [f"LKA-{i:07d}" for i in range(1, 51)]
    with (data / "request.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["request_row_id", "first_name", "street", "unit"])
        for i in ids:
            w.writerow([i, "ANN", f'1 "A", ST\n{i}', ""])  # quotes, a comma and a newline
    # empty (NULL to the reader) and "" (an empty string) must stay as they were
    text = (data / "request.csv").read_bytes().decode()
    (data / "request.csv").write_bytes(text.replace(",\r\n", ',""\r\n', 25).encode())
    with (data / "truth.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["request_row_id", "expected_outcome"])
        for i in ids:
            w.writerow([i, "M"])
    (data / "batch.toml").write_text("x = 1\n", encoding="utf-8")
    assert bs.requests_dir(data, 50) == data
    sub = bs.requests_dir(data, 20)
    with (sub / "request.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    with (sub / "truth.csv").open(newline="", encoding="utf-8") as fh:
        truth = [r[0] for r in list(csv.reader(fh))[1:]]
    got = [r[0] for r in rows]
    assert len(got) == 20 and got == truth == sorted(got)        # the file's order
    assert set(got) == bs.sample_ids(ids, 20)
    assert all(r[2] == f'1 "A", ST\n{r[0]}' for r in rows)       # values unchanged
    original = (data / "request.csv").read_bytes().decode()
    sampled = (sub / "request.csv").read_bytes().decode()
    records = sampled.split("\r\n")[1:-1]
    assert records and all(rec + "\r\n" in original for rec in records)  # byte for byte
    assert {rec.endswith('""') for rec in records} == {True, False}
    assert (sub / "master").resolve() == (data / "master").resolve()
    assert bs.requests_dir(data, 20) == sub                      # made once
    assert bs.requests_dir(data, 51) == data      # fewer rows than asked: all of them


def test_persons_read_from_a_dataset_name() -> None:
    assert bs.persons_of(Path("/x/synth-3000000-5")) == 3_000_000
    assert bs.persons_of(Path("/x/mydata")) is None


def test_cpu_and_memory_count_live_descendants() -> None:
    """A Spark run's JVM is a live child when the measurement is read: its CPU and peak
    memory count (getrusage sees only children that have been waited for)."""
    import subprocess
    import sys
    import time

    before = bs._cpu()
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\nb = b\"x\" * (300 << 20)\n"
                              "while time.process_time() - t < 0.5: pass\ntime.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while bs._cpu() - before < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child.pid in bs._descendants()
        assert bs._cpu() - before >= 0.5
        assert bs._peak_rss_gib() >= 0.29
    finally:
        child.kill()
        child.wait()
    assert child.pid not in bs._descendants()


def test_peak_memory_counts_an_ended_child() -> None:
    """A process run closes its engine, and Spark's JVM ends before the measurement is
    read: the largest ended child's peak still counts."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "b = b'x' * (400 << 20)"], check=True)
    assert bs._peak_rss_gib() >= 0.39


def test_peak_memory_samples_a_child_that_ends_unwaited() -> None:
    """Spark's JVM can end before the measurement is read and before anyone waits for it
    (a zombie has no memory to read, getrusage counts only waited children): the sampled
    peak of the live descendants still holds it."""
    import subprocess
    import sys
    import time

    tree = bs.TreePeak(every=0.05)
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nb = b'x' * (500 << 20)\ntime.sleep(1)"])
    deadline = time.monotonic() + 30
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # poll() reaps it once it ends: wait for that, then read
    peak = tree.stop()
    assert peak >= 0.45
