"""Undo mojibake: UTF-8 text that a spreadsheet or export read as Windows-1252.

A requester's file that went through one program reading UTF-8 as Windows-1252 and
another writing the result back as UTF-8 carries ``JOSÃ‰`` for ``JOSÉ``, ``MuÃ±oz`` for
``Muñoz``, ``Oâ€™Brien`` for ``O’Brien``. Read that way, the name is two letters and a
symbol the cleaning rules turn into a space, and the person is not found. The repair is
exact, not a guess: the text is encoded back to the Windows-1252 bytes it was read from
(the five bytes that code page leaves undefined as the control characters of the same
number, as Windows reads them) and decoded as UTF-8; if that fails, or changes nothing,
the text was not mojibake and stays as it is.

>>> undo_mojibake("JOSÃ‰"), undo_mojibake("Oâ€™Brien"), undo_mojibake("MARÃ\\x8dA")
('JOSÉ', 'O’Brien', 'MARÍA')
>>> undo_mojibake("José"), undo_mojibake("Ã"), undo_mojibake("Smith")
('José', 'Ã', 'Smith')
"""

from __future__ import annotations

#: A value can be mojibake only if it holds one of these (the lead bytes of 2- and
#: 3-byte UTF-8 sequences read as Windows-1252): a cheap SQL pre-filter.
MOJIBAKE_MARKERS = "ÂÃÄÅÆÇÈÉÊËâ"


def _windows_1252_bytes(text: str) -> bytes | None:
    out = bytearray()
    for char in text:
        if 0x80 <= ord(char) <= 0x9F:
            out.append(ord(char))
            continue
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            return None
    return bytes(out)


def undo_mojibake(text: str) -> str:
    """``text`` as it was before UTF-8 was read as Windows-1252 (at most twice over)."""
    for _ in range(2):
        raw = _windows_1252_bytes(text)
        if raw is None:
            break
        try:
            fixed = raw.decode("utf-8")
        except UnicodeDecodeError:
            break
        if fixed == text:
            break
        text = fixed
    return text
