"""The tasks bench/run.py has pools run (``alsek thread-pool bench/bench_tasks.py
--backend URL``). ``noop`` does nothing, so a drain measures the queue and the
pool, not the task; ``stored`` does nothing either, with a status tracker and
a result store, as most real users run (``bench/run.py --stores``); ``stamp``
returns when it started, for latency. ``ALSEK_BENCH_HISTORY=off`` keeps no
job history (``bench/ops_cost.py`` compares it with the default)."""

from __future__ import annotations

import os
import time

from alsek_core.broker import Broker
from alsek_core.history import NO_HISTORY
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "bench"

broker = Broker(history=NO_HISTORY if os.environ.get("ALSEK_BENCH_HISTORY") == "off" else None)
results = ResultStore(broker.backend)
statuses = StatusTracker(broker.backend)


@task(broker, queue=QUEUE)
def noop() -> None:
    pass


@task(broker, queue=QUEUE, result_store=results)
def stamp() -> float:
    return time.time()


@task(broker, queue=QUEUE, result_store=results, status_tracker=statuses)
def stored() -> bool:
    return True


@task(broker, queue=QUEUE, mechanism="thread", status_tracker=statuses)
def doze(seconds: float) -> None:
    """Runs ``seconds`` in short sleeps: Python code, which a revocation interrupts
    in its thread (bench/revoke_latency.py)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)


@task(broker, queue=QUEUE, mechanism="thread", status_tracker=statuses)
def block(seconds: float) -> None:
    """One long sleep, blocked in C: in a thread pool only stopping its process ends it."""
    time.sleep(seconds)


@task(broker, queue=QUEUE, result_store=results)
def gathered(message: Message) -> int:
    """A chord's callback (bench/chord.py): how many results it was given."""
    return len(message.previous_result)
