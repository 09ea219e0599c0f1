"""The tasks the Redis pool tests run in real pools started by the CLI
(``alsek thread-pool tests/integration/redis_pool_tasks.py --backend URL -qu ...``).

The tests build their messages by task name and send them to queues of their
choosing (on a cluster, queues whose hash tags land on different masters);
the pool is told those queues with ``-qu``.
"""

from __future__ import annotations

import time

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

broker = Broker()
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, mechanism="thread", status_tracker=status)
def touch(i: int) -> None:
    """No result: the SUCCEEDED status is what shows it ran."""


@task(broker, mechanism="thread", result_store=results, status_tracker=status)
def square(i: int, nap: float = 0.0) -> int:
    time.sleep(nap)
    return i * i


@task(broker, mechanism="thread", result_store=results, status_tracker=status)
def add_one(message: Message) -> int:
    """A link of a callback chain: one more than the previous link's result."""
    return int(message.previous_result) + 1


@task(broker, mechanism="thread", max_retries=3, result_store=results, status_tracker=status)
def flaky(fail_times: int, message: Message) -> int:
    """Fails its first ``fail_times`` attempts; the result is the attempt that worked."""
    if message.retries < fail_times:
        raise RuntimeError(f"attempt {message.retries} fails on purpose")
    return message.retries
