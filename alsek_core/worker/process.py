"""ProcessWorkerPool: every message runs in a process that runs nothing else.

Up to ``n_processes`` long-lived child processes each claim one message at a
time and run it in their main thread, so a task never shares its process with
another task; the parent adds children while all are busy and lets idle ones
go. A task past its timeout, whatever its mechanism, has its process killed
(it harms nobody else) and is then retried if eligible or failed; a fresh
process takes its place.

``async def`` tasks are the exception: each process runs up to ``n_async``
of them at once on an event loop (:mod:`alsek_core.worker.aio`), next to the
one plain task it may be running, and a timeout cancels the coroutine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Unpack

from alsek_core.message import Message
from alsek_core.task import Task
from alsek_core.worker.options import PoolOptions
from alsek_core.worker.runtime import SupervisedPool


class ProcessWorkerPool(SupervisedPool):
    """``options``: see :class:`~alsek_core.worker.options.PoolOptions`."""

    def __init__(
        self,
        tasks: Iterable[Task],
        n_processes: int | None = None,
        **options: Unpack[PoolOptions],
    ) -> None:
        super().__init__(
            tasks, n_processes=n_processes or os.cpu_count() or 1, slots_per_process=1, **options
        )

    def free_slots(self) -> int:
        # Plain messages run one after another, to the end, before the next claim.
        plain = 1 + self.holdings.claim_ahead(1) if self.sync_slots else 0
        return plain + self.coroutine_slots()

    def submit_to_executor(self, task: Task, message: Message) -> None:
        assert message.delivery is not None
        if self.submit_coroutine(task, message):
            return
        self.begin_slot(0, message.delivery, message.timeout, terminate=True)
        try:
            self.execute(task, message)
        finally:
            self.end_slot(0)
