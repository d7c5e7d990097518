"""Output folders: checked before any work, so a bad ``--out`` fails in a second, not an hour.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     check_can_create(Path(tmp) / "new" / "response")
>>> check_can_create(Path("/proc/no-such-place"))
Traceback (most recent call last):
...
lastknown.errors.InputError: --out /proc/no-such-place: cannot create a folder in /proc (No such file or directory); choose a folder you can write to
"""  # noqa: E501

from __future__ import annotations

import tempfile
from pathlib import Path

from lastknown.errors import InputError


def check_can_create(path: Path, *, option: str = "--out") -> None:
    """Raise :class:`InputError` unless a folder can be made at ``path`` (nothing is left).

    The nearest existing ancestor must be a folder in which a probe folder can be made
    (and is removed again); ``path`` itself is not created.
    """
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {path}: {ancestor} is a file, not a folder; "
                         "choose another path")
    try:
        Path(tempfile.mkdtemp(prefix=".lastknown-probe-", dir=ancestor)).rmdir()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot create a folder in {ancestor} "
                         f"({exc.strerror}); choose a folder you can write to") from exc
