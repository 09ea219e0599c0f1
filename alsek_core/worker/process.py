"""ProcessWorkerPool: every message runs in a process that runs nothing else.

Up to ``n_processes`` long-lived child processes each claim one message at a
time and run it in their main thread, so a task never shares its process with
another task; the parent adds children while all are busy and lets idle ones
go. A task past its timeout, whatever its mechanism, has its process killed
(it harms nobody else) and is then retried if eligible or failed; a fresh
process takes its place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from alsek_core.backoff import Backoff
from alsek_core.consumer import DEFAULT_LEASE_MS
from alsek_core.message import Message
from alsek_core.task import Task
from alsek_core.worker.base import DEFAULT_GRACE_MS, DEFAULT_SLOT_WAIT_MS, IDLE_BACKOFF
from alsek_core.worker.runtime import SupervisedPool


class ProcessWorkerPool(SupervisedPool):
    """``prune_interval``: ms between the parent's rounds (timeouts, scaling, restarts)."""

    def __init__(
        self,
        tasks: Iterable[Task],
        n_processes: int | None = None,
        queues: Iterable[str] | None = None,
        prune_interval: int = 100,
        slot_wait_interval: int = DEFAULT_SLOT_WAIT_MS,
        backoff: Backoff | None = IDLE_BACKOFF,
        lease_ms: int = DEFAULT_LEASE_MS,
        grace_period: int = DEFAULT_GRACE_MS,
    ) -> None:
        super().__init__(
            tasks,
            n_processes=n_processes or os.cpu_count() or 1,
            slots_per_process=1,
            queues=queues,
            prune_interval=prune_interval,
            backoff=backoff,
            lease_ms=lease_ms,
            slot_wait_interval=slot_wait_interval,
            grace_period=grace_period,
        )

    def free_slots(self) -> int:
        # Messages run one after another, to the end, before the next claim.
        return 1 + self.holdings.claim_ahead(1)

    def submit_to_executor(self, task: Task, message: Message) -> None:
        assert message.delivery is not None
        self.begin_slot(0, message.delivery, message.timeout, terminate=True)
        try:
            self.execute(task, message)
        finally:
            self.end_slot(0)
