"""Timed pipeline stages with an optional progress display on stderr."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

log = logging.getLogger("lastknown")


class Stages:
    """Run named stages in order, timing each; show a progress bar when asked.

    >>> stages = Stages(["read", "match"], show=False)
    >>> with stages.stage("read"):
    ...     pass
    >>> list(stages.timings)
    ['read']
    """

    def __init__(self, names: list[str], *, show: bool,
                 on_start: Callable[[str], None] | None = None) -> None:
        self.names = names
        #: Called with a stage's name as it starts (a service's progress display).
        self.on_start = on_start
        self.timings: dict[str, float] = {}
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if show:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=len(names))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_start is not None:
            self.on_start(name)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=name)
        start = time.perf_counter()
        log.info("stage %s started", name)
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)
            log.info("stage %s took %.2fs", name, self.timings[name])
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
