"""Worker pools: what runs tasks for real, losing nothing on the way.

* :class:`ThreadWorkerPool`: process groups of threads (``n_threads`` x ``n_processes``);
* :class:`ProcessWorkerPool`: one process per running message (``n_processes``);
* :class:`BaseWorkerPool`: subclass it to run messages your own way;
* ``WorkerPool``: the name the seed's older API uses; it is a ThreadWorkerPool.

Either pool runs ``async def`` tasks too: up to ``n_async`` at once per worker
process, on an event loop of its own (:mod:`alsek_core.worker.aio`).

Delivery is at-least-once: a message leaves its queue only once its outcome is
recorded, and while a task runs its lease is extended, so a worker that dies
(SIGKILL, OOM, power) only delays its messages until their leases run out.
"""

from __future__ import annotations

from alsek_core.errors import TaskTimeoutError
from alsek_core.worker.base import BaseWorkerPool
from alsek_core.worker.process import ProcessWorkerPool
from alsek_core.worker.runtime import SupervisedPool
from alsek_core.worker.thread import ThreadWorkerPool

WorkerPool = ThreadWorkerPool

__all__ = [
    "BaseWorkerPool",
    "ProcessWorkerPool",
    "SupervisedPool",
    "TaskTimeoutError",
    "ThreadWorkerPool",
    "WorkerPool",
]
