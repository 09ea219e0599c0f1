"""The ``async def`` tasks the tracing test runs in a real pool, kept apart
from ``ops_tasks.py`` (a pool with async tasks gets async slots, which the
other ops tests do not expect). Its spans go where ``ops_tasks`` sends them
(``ALSEK_TEST_SPANS``)."""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from alsek_core.task import task
from tests.integration.ops_tasks import QUEUE, broker, results, status


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
async def async_span(i: int) -> int:
    """The id of the span current in the coroutine: its run's, if traced."""
    await asyncio.sleep(0)
    return int(trace.get_current_span().get_span_context().span_id)


@task(broker, queue=QUEUE, max_retries=0, status_tracker=status)
async def async_boom(text: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(text)
