"""String operators: each takes a text and a ``random.Random`` and returns the text with
one error of its kind, or the text unchanged when the kind cannot apply (too short, no
letter to change). Case follows the text: an upper-case word stays upper case."""

from __future__ import annotations

import random

#: QWERTY letter rows and their horizontal stagger (key widths): a key's neighbours are
#: the keys beside it and the keys above/below less than one key width away.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_STAGGER = (0.0, 0.25, 0.75)


def _neighbour_map() -> dict[str, frozenset[str]]:
    pos = {ch: (r, i + _STAGGER[r]) for r, row in enumerate(_ROWS) for i, ch in enumerate(row)}
    out: dict[str, frozenset[str]] = {}
    for ch, (r, x) in pos.items():
        out[ch] = frozenset(o for o, (r2, x2) in pos.items() if o != ch and (
            (r2 == r and abs(x2 - x) == 1) or (abs(r2 - r) == 1 and abs(x2 - x) < 1)))
    return out


_NEIGHBOURS = _neighbour_map()

#: OCR glyph confusions (Rice et al. 1996), written out per case: (seen, read as).
OCR_CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("rn", "m"), ("m", "rn"), ("RN", "M"), ("M", "RN"), ("cl", "d"), ("d", "cl"),
    ("CL", "D"), ("D", "CL"), ("vv", "w"), ("w", "vv"), ("VV", "W"), ("W", "VV"),
    ("li", "h"), ("h", "li"), ("O", "0"), ("o", "0"), ("0", "O"), ("1", "l"), ("l", "1"),
    ("I", "1"), ("1", "I"), ("I", "l"), ("l", "I"), ("S", "5"), ("s", "5"), ("5", "S"),
    ("B", "8"), ("8", "B"), ("Z", "2"), ("2", "Z"), ("G", "6"), ("6", "G"), ("e", "c"),
    ("c", "e"), ("E", "F"), ("F", "E"), ("u", "v"), ("v", "u"), ("U", "V"), ("V", "U"),
    ("h", "b"), ("b", "h"),
)


def keyboard_neighbours(letter: str) -> frozenset[str]:
    """The QWERTY neighbours of ``letter`` (lower case).

    >>> sorted(keyboard_neighbours("s"))
    ['a', 'd', 'e', 'w', 'x', 'z']
    """
    return _NEIGHBOURS.get(letter.lower(), frozenset())


def _letters(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.isalpha()]


def _same_case(new: str, like: str) -> str:
    return new.upper() if like.isupper() else new.lower()


def keyboard_substitute(text: str, rng: random.Random) -> str:
    """One letter replaced by a QWERTY neighbour (``parker`` → ``oarker``)."""
    spots = [i for i in _letters(text) if keyboard_neighbours(text[i])]
    if not spots:
        return text
    i = rng.choice(spots)
    new = rng.choice(sorted(keyboard_neighbours(text[i])))
    return text[:i] + _same_case(new, text[i]) + text[i + 1:]


def ocr_confuse(text: str, rng: random.Random) -> str:
    """One glyph (or glyph pair) read as its OCR confusion (``CLARK`` → ``DARK``)."""
    spots = [(i, seen, read) for seen, read in OCR_CONFUSIONS
             for i in range(len(text)) if text.startswith(seen, i)]
    if not spots:
        return text
    i, seen, read = rng.choice(spots)
    return text[:i] + read + text[i + len(seen):]


def transpose(text: str, rng: random.Random) -> str:
    """Two adjacent, different letters swapped (``street`` → ``tsreet``)."""
    spots = [i for i in range(len(text) - 1)
             if text[i].isalpha() and text[i + 1].isalpha() and text[i] != text[i + 1]]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def double_letter(text: str, rng: random.Random) -> str:
    """One letter typed twice (``EDWARD`` → ``EDWWARD``)."""
    spots = _letters(text)
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i + 1] + text[i] + text[i + 1:]


def drop_letter(text: str, rng: random.Random) -> str:
    """One letter left out (``BRIGHTON`` → ``BRIGTON``); a word keeps at least 2 letters."""
    spots = [i for i in _letters(text) if _word_length(text, i) > 2]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1:]


def _word_length(text: str, i: int) -> int:
    start, end = i, i
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    while end < len(text) and text[end].isalpha():
        end += 1
    return end - start


def insert_space(text: str, rng: random.Random) -> str:
    """A space typed inside a word of 4+ letters (``PLACE`` → ``P LACE``)."""
    spots = [i for i in range(1, len(text))
             if text[i - 1].isalpha() and text[i].isalpha() and _word_length(text, i) >= 4]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + " " + text[i:]


def remove_space(text: str, rng: random.Random) -> str:
    """One space between two words left out (``HALLEN CLOSE`` → ``HALLENCLOSE``)."""
    spots = [i for i in range(1, len(text) - 1)
             if text[i] == " " and text[i - 1].isalnum() and text[i + 1].isalnum()]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1:]


def truncate(text: str, rng: random.Random) -> str:
    """The value cut short, as a fixed-width field does: keeps at least 3 characters and
    at least half of the text (``WASHINGTON`` → ``WASHIN``)."""
    if len(text) < 5:
        return text
    return text[:rng.randint(max(3, (len(text) + 1) // 2), len(text) - 1)].rstrip()
