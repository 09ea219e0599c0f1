"""Run a broker's ready messages in this process until its queues are empty:
for users' own tests (like Dramatiq's ``join``), no worker pool needed."""

from __future__ import annotations

import time
from collections.abc import Iterable

from alsek_core.backoff import ConstantBackoff
from alsek_core.broker import Broker
from alsek_core.consumer import Consumer
from alsek_core.execution import process
from alsek_core.task import Task
from alsek_core.worker.rejects import reject_undecodable, reject_unknown


def run_until_empty(
    tasks: Iterable[Task],
    queues: Iterable[str] | None = None,
    broker: Broker | None = None,
    timeout: float = 30.0,
) -> int:
    """Run ready messages of ``tasks`` until none is ready; returns how many ran.

    Delayed messages (and retries with a backoff) that come due within
    ``timeout`` seconds are waited for; past it, TimeoutError.
    """
    by_name = {t.name: t for t in tasks}
    if not by_name:
        raise ValueError("run_until_empty needs at least one task")
    broker = broker or next(iter(by_name.values())).broker
    subset = list(queues) if queues is not None else sorted({t.queue for t in by_name.values()})
    consumer = Consumer(broker, subset=subset, backoff=ConstantBackoff(0, floor=0, ceiling=0), wait_ms=0,
                        on_undecodable=lambda delivery, exc: reject_undecodable(broker, by_name, delivery, exc))
    ran = 0
    deadline = time.monotonic() + timeout
    while True:
        messages = consumer.claim(limit=16)
        for message in messages:
            task = by_name.get(message.task_name)
            if task is None:  # as a worker pool does: dead-letter it, never spin on it
                reject_unknown(broker, by_name, message)
                continue
            process(task, message, by_name)
            ran += 1
        if messages:
            continue
        # Ready counts too: a delayed message may come due between the empty
        # claim and this count.
        pending = sum(c.ready + c.delayed + c.in_flight for c in map(broker.counts, subset))
        if not pending:
            return ran
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending} message(s) still delayed or in flight after {timeout}s")
        time.sleep(0.02)
