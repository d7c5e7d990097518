"""A second, independent model of requester errors: how data is *keyed and exported*.

Written without reading ``bench/corrupt`` or ``lastknown.synth`` (it shares no code, word
list or rate with either), from what real requester spreadsheets and fixed-width
exports carry:

* ZIP codes read as numbers (02134 -> 2134), ZIP+4 in any of its forms or dropped;
* states in full, in lower case or in the old GPO style (Massachusetts, ma, Mass.);
* names in one column (LAST, FIRST M), surname and given name swapped, a middle name or
  initial appended to the given name, two-part surnames keyed as one part or hyphenated,
  accents added, stripped or mangled by a code page, apostrophes dropped or spaced, a
  space after MC, a generational suffix in the surname column;
* units as #5 / APT 5 / UNIT 5 / 5, in the street line or left out; the city and state
  pasted into the street line; directions and ordinals spelled out or shortened; the
  street type in another form; SAINT/ST, MOUNT/MT, FORT/FT;
* stray punctuation and double spaces, the export's letter case, fields cut at the
  widths of a fixed-width layout.

A corrupted row gets 1, 2 or 3 errors (60/30/10 %) from different operators, drawn by
the weights in ``ops.OPERATORS`` among those that apply to it. Deterministic in
``seed``: the rows corrupted at a lower rate are among those at a higher one, and a row
gets the same errors at every rate. Truth never changes.
"""

from __future__ import annotations

import random

from .ops import OPERATORS, Row

__all__ = ["OPERATORS", "corrupt_row", "corrupt_rows"]

ERRORS_PER_ROW = ((1, 60), (2, 30), (3, 10))


def corrupt_row(row: Row, rng: random.Random) -> tuple[Row, list[str]]:
    """``row`` with 1-3 errors drawn with ``rng``; the row and the operators applied."""
    wanted = rng.choices([k for k, _ in ERRORS_PER_ROW], [w for _, w in ERRORS_PER_ROW])[0]
    left = dict(OPERATORS)
    applied: list[str] = []
    while left and len(applied) < wanted:
        name = rng.choices(list(left), [w for _, w in left.values()])[0]
        operator, _ = left.pop(name)
        new = operator(row, rng)
        if new is not None and new != row:
            row = new
            applied.append(name)
    return row, applied


def corrupt_rows(rows: list[Row], rate: float, seed: int) -> tuple[list[Row], dict[str, list[str]]]:
    """``rate`` of ``rows`` (rounded) corrupted; the rows in their order and, per
    corrupted ``request_row_id``, the operators applied."""
    def rank(row: Row) -> float:
        return random.Random(f"{seed}:field:pick:{row['request_row_id']}").random()

    chosen = {r["request_row_id"] for r in sorted(rows, key=rank)[:round(rate * len(rows))]}
    out, applied = [], {}
    for row in rows:
        rid = row["request_row_id"]
        if rid in chosen:
            new, ops = corrupt_row(dict(row), random.Random(f"{seed}:field:{rid}"))
            if ops:
                applied[rid] = ops
            row = new
        out.append(row)
    return out, applied
