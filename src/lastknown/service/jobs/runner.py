"""Run one job: claim it, call its function with a stage callback, record the outcome.

The job's function is named by an import path (``"lastknown.workflow:prepare"``) and
called with the job's JSON keyword arguments (:func:`with_paths`) plus ``on_stage``.
While it runs, a heartbeat thread keeps the job's ``heartbeat_at`` fresh, so a live job
is never taken for a dead one however long a stage takes.

What the submitter sees of a failure is :func:`safe_message`: a lastknown error's class
and message (already written for the person who supplied the input, with anything
shaped like a TIN blanked and server paths cut to their file names), or ``"internal
error, see server log"``; the traceback goes to the server log only, with the
exception's type but not its text (:func:`withheld`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastknown.errors import LastknownError, PipelineError
from lastknown.service.jobs.store import JobStore

if TYPE_CHECKING:  # pragma: no cover - typing only
    from lastknown.pipeline import EngineChoice

log = logging.getLogger("lastknown.jobs")

INTERNAL = "internal error, see server log"


def safe_message(exc: BaseException) -> str:
    """The failure as the job's submitter may read it.

    >>> from lastknown.errors import BatchError
    >>> safe_message(BatchError("batch.toml: `certified` must be true (row of 123-45-6789)"))
    'BatchError: batch.toml: `certified` must be true (row of ***)'
    >>> safe_message(KeyError("123456789")), safe_message(PipelineError("x"))
    ('internal error, see server log', 'internal error, see server log')
    """
    if isinstance(exc, LastknownError) and not isinstance(exc, PipelineError):
        from lastknown.service.errors import without_paths, without_tins

        return f"{type(exc).__name__}: {without_tins(without_paths(str(exc)))}"[:2000]
    return INTERNAL


class MessageWithheld(Exception):
    """Stands in for a failed job's exception in the server log: the log gets where it
    failed (the traceback) and its type, never its text, which can quote a request's
    value (a TIN, a name); the job keeps the message it may show (:func:`safe_message`)."""


def withheld(exc: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    """``exc_info`` for logging ``exc`` with its message (and its chained causes) left out.

    >>> withheld(KeyError("123-45-6789"))[1]
    MessageWithheld('KeyError')
    """
    return MessageWithheld, MessageWithheld(type(exc).__name__), exc.__traceback__


def resolve(function: str) -> Callable[..., Any]:
    """The callable named by ``"module:attribute"``.

    >>> resolve("os.path:join")("a", "b")
    'a/b'
    """
    module, _, attribute = function.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not callable(found):
        raise PipelineError(f"job function {function} is not callable")
    return found  # type: ignore[no-any-return]


def with_paths(function: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each string given to a parameter annotated ``Path`` (or
    ``Path | None``) made a :class:`~pathlib.Path`: jobs carry paths as JSON strings.

    >>> def f(request: Path, *, out: Path | None = None, name: str = "") -> None: ...
    >>> with_paths(f, {"request": "/in/r.csv", "out": "/o", "name": "/x"})
    {'request': PosixPath('/in/r.csv'), 'out': PosixPath('/o'), 'name': '/x'}
    """
    params = inspect.signature(function).parameters
    return {key: Path(value) if isinstance(value, str) and key in params
            and _is_path(params[key].annotation) else value for key, value in kwargs.items()}


def _is_path(annotation: object) -> bool:
    if annotation is Path:
        return True
    text = annotation if isinstance(annotation, str) else str(annotation)
    return "Path" in {part.strip().rpartition(".")[2] for part in text.split("|")}


def run_job(store: JobStore, job_id: str, worker: str, *, heartbeat_seconds: float,
            engine: EngineChoice | None = None) -> str:
    """Run job ``job_id`` as ``worker``; return the status it ended in.

    A job that is not ``queued`` (a duplicate delivery, or already taken) is left alone
    and ``"skipped"`` returned. ``engine`` (the worker's ``--engine``) is given to a job
    function with an ``engine`` parameter (``prepare``: matching); the others run on
    DuckDB, their tables being one batch's.
    """
    job = store.claim(job_id, worker)
    if job is None:
        log.info("job %s: not queued, delivery ignored", job_id)
        return "skipped"
    log.info("job %s (%s) started by %s, attempt %d", job_id, job.kind, worker, job.attempts)
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(store, job_id, worker, stop, heartbeat_seconds),
                            name=f"heartbeat-{job_id[:8]}", daemon=True)
    beat.start()
    try:
        function = resolve(job.function)
        extra = ({"engine": engine} if engine is not None
                 and "engine" in inspect.signature(function).parameters else {})
        function(**with_paths(function, job.kwargs), **extra,
                 on_stage=lambda stage: _stage(store, job_id, worker, stage))
    except Exception as exc:
        log.error("job %s failed: %s", job_id, type(exc).__name__, exc_info=withheld(exc))
        owned = store.fail(job_id, worker, safe_message(exc))
        status = "failed"
    else:
        owned = store.finish(job_id, worker)
        status = "done"
    finally:
        stop.set()
        beat.join()
    if not owned:
        log.warning("job %s was taken from %s while it ran (stale heartbeat); its outcome "
                    "here was %s and is not recorded", job_id, worker, status)
    log.info("job %s %s", job_id, status)
    return status


def _stage(store: JobStore, job_id: str, worker: str, stage: str) -> None:
    log.info("job %s stage %s", job_id, stage)
    store.set_stage(job_id, worker, stage)


def _beat(store: JobStore, job_id: str, worker: str, stop: threading.Event,
          seconds: float) -> None:
    while not stop.wait(seconds):
        try:
            if not store.heartbeat(job_id, worker):
                return
        except Exception:  # a database hiccup must not kill the job; the next beat retries
            log.exception("job %s: heartbeat failed", job_id)
