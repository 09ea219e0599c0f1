"""A plain task and an ``async def`` one in one pool (the async pool tests'
``test_plain_and_async_tasks_share_a_pool``)."""

from __future__ import annotations

import asyncio

from alsek_core.broker import Broker
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "pools"

broker = Broker()
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
def plain_echo(i: int) -> int:
    return i


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
async def async_echo(i: int) -> int:
    await asyncio.sleep(0.05)
    return i
