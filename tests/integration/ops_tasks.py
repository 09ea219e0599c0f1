"""The tasks the ops tests run in real pools started by the CLI: outcomes of
every kind for the logs, the job history and the per-task metrics. The job
history's cap per queue comes from ``ALSEK_TEST_HISTORY_MAX`` (a test sets
it small to watch the cap hold at full drain speed)."""

from __future__ import annotations

import os
from pathlib import Path

from alsek_core.broker import Broker
from alsek_core.history import Retention
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "ops"
CAP = int(os.environ.get("ALSEK_TEST_HISTORY_MAX", "10000"))

broker = Broker(history=Retention(succeeded_max=CAP, failed_max=CAP))
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def ok(i: int) -> int:
    return i


@task(broker, queue=QUEUE, mechanism="thread", max_retries=1, status_tracker=status,
      backoff=None)
def boom(text: str) -> None:
    """Fails twice: one retry, then failed for good."""
    raise ValueError(text)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def die_once(marker: str) -> str:
    """Takes its process down the first time (the marker file says it did),
    so its message is delivered again once the lease ends."""
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(3)
    return "second time"



@task(broker, queue=QUEUE, mechanism="thread", status_tracker=status)
def fan_out(n: int) -> None:
    """Submits ``n`` messages of ``ok`` from inside the pool."""
    broker.submit_many(Message("ok", queue=QUEUE, args=[i]) for i in range(n))
