"""An independent corruption model for measuring matchers (``bench/`` only, never shipped).

Written from published error taxonomies, not from ``lastknown.synth`` (it shares no code
and no rates with synth's defects):

* typing errors: Damerau (1964, CACM 7:171) — about 80 % of misspellings are one
  substitution, insertion, deletion or transposition; Pollock & Zamora (1984, CACM 27:358);
  keyboard-adjacent substitutions on a QWERTY layout (as in the GeCo corruptor, Tran,
  Vatsalan & Christen 2013, CIKM);
* OCR confusions: Rice, Jenkins & Nartker (1996, *The fifth annual test of OCR accuracy*):
  ``rn``/``m``, ``cl``/``d``, ``vv``/``w``, ``0``/``O``, ``1``/``l``/``I``, ``5``/``S`` …;
* phonetic respelling and romanisation variants: rules between standard transliterations
  (ee/i, ou/u, k/c, ph/f, a y-glide before an initial vowel, sh/sch, kh/h, eo/u …), see
  `phonetic`;
* record-level errors (Christen, *Data Matching*, 2012, ch. 3): swapped given/surname
  fields, missing values (middle name, unit, ZIP), truncated values, a wrong ZIP digit,
  a city typo, spaces inserted into or removed from street names and types.

`strings` holds the string operators, `phonetic` the respelling rules, `names` the
near-miss given names of a *different* person (the attack set), `rows` the row
operators and `corrupt_rows`, which picks the rows to corrupt (1–3 errors each),
deterministically from a seed. The weights in `rows.OPERATOR_WEIGHTS` are this model's
own choice (names typed most often wrong), stated there; none was tuned on a matcher.
"""

from .names import census_first_names, near_names
from .phonetic import respell, respellings
from .rows import OPERATOR_WEIGHTS, OPERATORS, corrupt_row, corrupt_rows
from .strings import (
    double_letter,
    drop_letter,
    insert_space,
    keyboard_neighbours,
    keyboard_substitute,
    ocr_confuse,
    remove_space,
    transpose,
    truncate,
)

__all__ = ["OPERATORS", "OPERATOR_WEIGHTS", "census_first_names", "corrupt_row",
           "corrupt_rows", "double_letter", "drop_letter", "insert_space",
           "keyboard_neighbours", "keyboard_substitute", "near_names", "ocr_confuse",
           "remove_space", "respell", "respellings", "transpose", "truncate"]
