"""The options every worker pool takes, named once.

``BaseWorkerPool`` and ``SupervisedPool`` declare them, defaults included,
in their signatures; the pools users start pass them on as ``**options``
typed by these dicts, and ``alsek thread-pool`` / ``process-pool`` default
their flags to the same constants, so each default lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from alsek_core.backoff import Backoff


class WorkerOptions(TypedDict, total=False):
    """What ``BaseWorkerPool`` takes besides its tasks."""

    queues: Iterable[str] | None
    backoff: Backoff | None
    lease_ms: int
    slot_wait_interval: int
    grace_period: int


class PoolOptions(WorkerOptions, total=False):
    """What a pool of worker processes takes besides its tasks and its size:
    ``prune_interval``, the ms between the supervisor's rounds (timeouts,
    scaling, restarts); ``n_async``, how many ``async def`` tasks each worker
    process runs at once on its event loop."""

    prune_interval: int
    n_async: int
