"""Consumers of the job queue: threads inside the web process, or a worker process.

Both sweep on start and every ``sweep_seconds`` (:meth:`.JobQueue.sweep`), so a job left
``running`` by a killed worker or server is picked up again by whichever consumer runs
next. The embedded consumer installs no signal handlers (the web server owns them).
"""

from __future__ import annotations

import logging
import threading

from huey.consumer import Consumer

from lastknown.service.jobs.queue import JobQueue

log = logging.getLogger("lastknown.jobs")


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves the process's signal handlers alone."""

    def _set_signal_handlers(self) -> None:
        pass


class Worker:
    """A Huey consumer of ``queue`` with its sweeper thread."""

    def __init__(self, queue: JobQueue, *, embedded: bool, shutdown_seconds: float = 10.0):
        self.queue = queue
        consumer_class = _QuietConsumer if embedded else Consumer
        self.consumer = consumer_class(queue.huey, workers=queue.settings.workers,
                                       worker_type="thread", periodic=False, max_delay=1.0,
                                       shutdown_timeout=shutdown_seconds)
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="job-sweeper",
                                         daemon=True)

    def start(self) -> None:
        """Sweep once, then start the consumer threads and the sweeper."""
        self._sweep()
        self._sweeper.start()
        self.consumer.start()
        log.info("job worker %s started on queue %r", self.queue.worker_id,
                 self.queue.settings.name)

    def run(self) -> None:
        """Consume until SIGINT (finish running jobs) or SIGTERM (stop now; their jobs
        are re-queued by the next sweep). For ``lastknown worker``."""
        self._sweep()
        self._sweeper.start()
        try:
            self.consumer.run()
        finally:
            self._stop.set()

    def stop(self) -> None:
        """Stop taking jobs; wait up to ``shutdown_seconds`` for running ones. A job still
        running after that stays ``running`` and is re-queued by a later sweep."""
        self._stop.set()
        self.consumer.stop(graceful=True)
        self._sweeper.join()
        log.info("job worker %s stopped", self.queue.worker_id)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.queue.settings.sweep_seconds):
            self._sweep()

    def _sweep(self) -> None:
        try:
            self.queue.sweep()
        except Exception:  # the database or Redis may be briefly away; sweep again later
            log.exception("job sweep failed")


def start_embedded_worker(queue: JobQueue) -> Worker:
    """Start consumer threads in this process (the app's lifespan start)."""
    worker = Worker(queue, embedded=True)
    worker.start()
    return worker


def stop_embedded_worker(worker: Worker) -> None:
    """Stop the threads started by :func:`start_embedded_worker` (lifespan end)."""
    worker.stop()
