"""Output folders and files: checked before any work, so a bad ``--out`` fails in a second, not
an hour; JSON written durably (fsynced temporary file, rename, fsynced folder).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     check_can_create(Path(tmp) / "new" / "response")
>>> check_can_create(Path("/proc/no-such-place"))
Traceback (most recent call last):
...
lastknown.errors.InputError: --out /proc/no-such-place: cannot create a folder in /proc (No such file or directory); choose a folder you can write to
"""  # noqa: E501

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lastknown.errors import InputError, PipelineError


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


def json_default(value: object) -> Any:
    """How the summary's non-JSON values are written (dates as ISO text, paths as text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    raise PipelineError(f"summary value of type {type(value).__name__} cannot be written as JSON")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON through a temporary file, fsynced, then renamed into place.

    The temporary file is private to this writer (process and thread in its name), so two
    writers of one file never write into each other's; the last rename wins whole.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    text = json.dumps(data, indent=2, sort_keys=True, default=json_default, ensure_ascii=False)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
