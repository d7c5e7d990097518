"""The service's persisted job queue: long work (prepare, release) run by workers.

- :mod:`.store`: the job table, the truth about every job (SQLite or PostgreSQL);
- :mod:`.queue`: Huey (a SQLite file embedded, Redis in production) carrying job ids;
- :mod:`.runner`: running one job, with stages, heartbeats and safe failure messages;
- :mod:`.worker`: consumers, in the web process or as ``lastknown worker``.

docs/JOBS.md describes the whole, including what happens when a worker is killed.
"""

from lastknown.service.jobs.queue import JobQueue, QueueSettings, make_huey
from lastknown.service.jobs.store import WORKER_STOPPED, JobRecord, JobStore
from lastknown.service.jobs.worker import Worker, start_embedded_worker, stop_embedded_worker

__all__ = ["WORKER_STOPPED", "JobQueue", "JobRecord", "JobStore", "QueueSettings", "Worker",
           "make_huey", "start_embedded_worker", "stop_embedded_worker"]
