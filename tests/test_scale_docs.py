"""The cost-curve table in README.md and docs/SCALE.md is what bench_scale renders from the
committed results (bench/results/scale*.json), not typed by hand. After a new measurement:
``python bench/bench_scale.py --merge bench/results/scale*.json --write-docs``."""

from __future__ import annotations

from pathlib import Path

import bench_scale as bs
import pytest


def test_there_are_committed_results() -> None:
    doc = bs.committed_results()
    assert [x for x in doc["points"] if x.get("process") and x.get("exact")]


@pytest.mark.parametrize("path", bs.DOCS, ids=[p.name for p in bs.DOCS])
def test_doc_holds_the_rendered_results(path: Path) -> None:
    want = bs.render_markdown(bs.committed_results())
    got = bs.block_of(path.read_text(encoding="utf-8"))
    assert got == want, (f"{path.name}'s cost-curve block differs from the committed results: "
                         "python bench/bench_scale.py --merge bench/results/scale*.json "
                         "--write-docs")
