"""Phonetic respelling and romanisation variants: one rule rewrites one spot of a name
into another standard spelling of the same sound.

The rules are general sound correspondences between transliteration systems (Arabic,
Slavic, Korean, German and Spanish-to-English conventions), not a table of names:
long vowels (``ee``/``i``, ``oo``/``u``, ``ou``/``u``, ``aa``/``a``), ``k``/``c``/``q``,
``ph``/``f``, ``kh``/``h``, initial ``chr``/``kr``, ``sh``/``sch``, ``ch``/``tch``,
``j``/``y``/``dj``, ``w``/``v``, ``ts``/``tz``, ``x``/``ks``, ``th``/``t``, ``ei``/``ey``,
``ai``/``ay``, ``ya``/``ia``, final ``i``/``y`` and ``ie``/``y``,
a ``y`` glide before an initial vowel
(Ekaterina/Yekaterina), doubled/single consonants, Korean ``eo``/``o``/``u``, final ``h``,
non-rhotic ``ar``/``a`` before a final consonant, initial ``b``/``p``, ``g``/``k``,
``d``/``t``, and the unstressed vowels ``o``/``u`` and ``e``/``a`` between consonants.
"""

from __future__ import annotations

import random
import re

_S = r"(?<![a-z])"  # start of a word
_E = r"(?![a-z])"  # end of a word
_C = "bcdfghjklmnpqrstvwxz"

#: (pattern, replacement) on lower-case text; each correspondence is listed both ways.
RULES: tuple[tuple[str, str], ...] = (
    ("ee", "i"), (f"(?<=[{_C}])i(?=[{_C}])", "ee"),
    ("ou", "u"), (f"(?<=[{_C}])u(?=[{_C}])", "ou"),
    ("oo", "u"), (f"(?<=[{_C}])u(?=[{_C}]{_E})", "oo"),
    ("aa", "a"), (f"{_S}a(?=[{_C}])", "aa"),
    ("ph", "f"), ("f", "ph"),
    ("ck", "k"), ("(?<=[aeiou])k", "ck"),
    (f"c(?=[aou]|{_E})", "k"), ("k(?=[aou])", "c"),
    ("q(?!u)", "k"), ("k(?=[ai])", "q"),
    ("kh", "h"), (f"{_S}h(?=[aeiou])", "kh"), ("kh", "ch"), ("ch(?=r)", "kh"),
    (f"{_S}chr", "kr"), (f"{_S}kr", "chr"),
    ("sch", "sh"), ("sh", "sch"), ("tch", "ch"), ("(?<!t)ch", "tch"),
    (f"{_S}j", "y"), (f"{_S}y(?=[aeou])", "j"), ("dj", "j"), ("(?<!d)j", "dj"),
    ("w", "v"), ("v", "w"), ("tz", "ts"), ("ts", "tz"), ("x", "ks"), ("ks", "x"),
    ("th", "t"), ("t(?!h)", "th"), ("dh", "d"), ("gh", "g"),
    ("ei", "ey"), ("ey", "ei"), ("ai", "ay"), ("ay", "ai"),
    (f"(?<=[{_C}])ya", "ia"), (f"(?<=[{_C}])ia", "ya"), (f"(?<=[{_C}])yu", "iu"),
    (f"i{_E}", "y"), (f"(?<=[{_C}])y{_E}", "i"), (f"ie{_E}", "y"),
    (f"{_S}(?=[eau])", "y"), (f"{_S}y(?=[eau])", ""),
    (f"([{_C}])\\1", r"\1"), ("(?<=[aeiou])([bdfgklmnprst])(?=[aeiou])", r"\1\1"),
    ("eo", "o"), ("eo", "u"), (f"(?<=[{_C}])o(?=(?:ng|n|k|l)?{_E})", "eo"),
    (f"(?<=[{_C}])u(?=h?{_E})", "eo"),
    (f"(?<=[aeiou])h{_E}", ""), (f"(?<=[{_C}][aeiou])(?={_E})", "h"),
    (f"ar(?=[{_C}]{_E})", "a"), (f"a(?=[kt]{_E})", "ar"),
    (f"{_S}b", "p"), (f"{_S}p(?!h)", "b"), (f"{_S}g", "k"), (f"{_S}k(?!h)", "g"),
    (f"{_S}d", "t"), (f"{_S}t(?!h)", "d"),
    (f"(?<=[{_C}])o(?=[{_C}])", "u"), (f"(?<=[{_C}])u(?=[{_C}])", "o"),
    (f"(?<=[{_C}])e(?=[{_C}]{_E})", "a"), (f"(?<=[{_C}])a(?=[{_C}]{_E})", "e"),
)
_COMPILED = tuple((re.compile(p), r) for p, r in RULES)


def _recase(new: str, like: str) -> str:
    if like.isupper():
        return new.upper()
    if like[:1].isupper():
        return re.sub(r"(?<![a-z])[a-z]", lambda m: m.group(0).upper(), new)
    return new


def respellings(name: str) -> list[str]:
    """Every spelling one rule away from ``name``, in ``name``'s case, sorted.

    >>> [v for v in respellings("KAREEM") if v in ("KARIM", "CAREEM")]
    ['CAREEM', 'KARIM']
    """
    low = name.lower()
    out: set[str] = set()
    for pattern, repl in _COMPILED:
        for m in pattern.finditer(low):
            new = low[:m.start()] + m.expand(repl) + low[m.end():]
            if new != low and len(new.replace(" ", "")) >= 2:
                out.add(_recase(new, name))
    return sorted(out)


def respell(name: str, rng: random.Random, steps: int = 1) -> str:
    """``name`` rewritten by ``steps`` respelling rules chosen at random (unchanged when
    no rule applies)."""
    for _ in range(steps):
        options = respellings(name)
        if not options:
            break
        name = rng.choice(options)
    return name
