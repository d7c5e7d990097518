"""A progress bar on stderr for the matcher's long loops (chunks of requests, index steps).

Off by default; stdout stays clean for the CLI's own output. The bar is transient: it
disappears when the loop ends, so it never mixes with the pipeline's stage display.

>>> with chunk_progress(show=False, description="matching", total=3) as advance:
...     advance()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def chunk_progress(*, show: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``; when ``show`` draw a bar of ``total`` steps on stderr."""
    if not show:
        yield lambda: None
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task(description, total=total)
    with progress:
        yield lambda: progress.advance(task)
