"""The ``async def`` tasks the async pool integration tests run, in real pools
started by the CLI (``alsek process-pool tests/integration/async_pool_tasks.py
--backend URL``). Kept apart from ``pool_tasks.py``: a pool that has async
tasks gets async slots, which the other pool tests do not expect."""

from __future__ import annotations

import asyncio
import time

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "pools"
#: What the async limits test expects of ``async_paced``.
ASYNC_PACED_RATE = 10

broker = Broker()
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
async def async_nap(seconds: float, i: int) -> int:
    await asyncio.sleep(seconds)
    return i


@task(broker, queue=QUEUE, max_retries=0, result_store=results, status_tracker=status)
async def async_hang(seconds: float) -> None:
    await asyncio.sleep(seconds)


@task(broker, queue=QUEUE, max_retries=2, backoff=None, result_store=results, status_tracker=status)
async def async_flaky(message: Message) -> int:
    """Fails its first run, succeeds on its retry."""
    await asyncio.sleep(0)
    if message.retries == 0:
        raise ValueError("first run fails")
    return message.retries


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
async def async_add_one(message: Message) -> int:
    """A callback: its parent's result plus one."""
    await asyncio.sleep(0)
    return int(message.previous_result) + 1


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
async def async_slow_first(seconds: float, i: int, message: Message) -> int:
    """Slow on its first delivery only: a pool killed meanwhile leaves it running."""
    assert message.delivery is not None
    if message.delivery.deliveries <= 1:
        await asyncio.sleep(seconds)
    return i


@task(broker, queue=QUEUE, max_retries=0, result_store=results, status_tracker=status)
async def async_block(seconds: float) -> None:
    """Blocks its event loop (a sync sleep): cancelling it cannot stop it."""
    time.sleep(seconds)


@task(broker, queue=QUEUE, rate_limit=f"{ASYNC_PACED_RATE}/s", result_store=results)
async def async_paced(i: int) -> float:
    """When it started (wall clock, shared by every process on the host)."""
    await asyncio.sleep(0)
    return time.time()


@task(broker, queue=QUEUE, concurrency_limit=2, concurrency_key=lambda m: m.kwargs["tenant"],
      result_store=results)
async def async_per_tenant(tenant: str, seconds: float) -> list[float]:
    """When it started and ended: at most 2 of a tenant may overlap."""
    started = time.time()
    await asyncio.sleep(seconds)
    return [started, time.time()]
