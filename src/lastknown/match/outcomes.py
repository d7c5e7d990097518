"""The outcome codes of a request row (internal record only; DESIGN.md, "Outcome codes").

``M`` matched and disclosed · ``N`` no match · ``A`` ambiguous (two or more candidates
too close to call) · ``U`` a name match whose supplied address no return confirms ·
``P`` matched, but no return in the requested tax periods. Defined here once: matching
counts them, the package checks them, evaluation reads them.

>>> UNMATCHED_OUTCOMES, OUTCOMES_WITH_REJECTED[-1]
(('N', 'A', 'U', 'P'), 'R')
"""

from __future__ import annotations

OUTCOMES: tuple[str, ...] = ("M", "N", "A", "U", "P")
#: Every outcome but ``M``: the row reads *not matched* in unmatched.csv.
UNMATCHED_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "M")
#: ... and ``R``, a row rejected for its own data (truth.csv, evaluation).
OUTCOMES_WITH_REJECTED: tuple[str, ...] = (*OUTCOMES, "R")
