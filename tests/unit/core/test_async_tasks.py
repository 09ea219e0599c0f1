"""``async def`` tasks outside a worker pool: what is refused at declaration,
what a direct call gives, how the in-process runner runs one, and how a pool
lays out its slots for them."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.errors import AlsekError, ValidationError
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task, task
from alsek_core.testing.runner import run_until_empty
from alsek_core.worker import ProcessWorkerPool, ThreadWorkerPool


@pytest.fixture
def broker() -> Broker:
    return Broker(backend_from_url(f"memory://{uuid.uuid4().hex}"))


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def plain(x: int) -> int:
    return x


def test_an_async_generator_is_refused_at_declaration(broker: Broker) -> None:
    async def numbers() -> Any:
        yield 1

    with pytest.raises(ValidationError, match="'numbers' is an async generator: a task returns one result"):
        task(broker)(numbers)


def test_an_async_generator_method_is_refused_too(broker: Broker) -> None:
    class Numbers:
        async def __call__(self) -> Any:
            yield 1

    with pytest.raises(ValidationError, match="is an async generator"):
        Task(Numbers(), broker, name="numbers")


def test_a_coroutine_with_the_thread_mechanism_is_refused(broker: Broker) -> None:
    with pytest.raises(ValidationError, match=r"'double' is a coroutine function: .*mechanism='thread' does not apply"):
        task(broker, mechanism="thread")(double)


@pytest.mark.parametrize(("function", "expected"), [
    (double, True),
    (functools.partial(double, 1), True),
    (plain, False),
])
def test_which_tasks_are_async(broker: Broker, function: Any, expected: bool) -> None:
    assert Task(function, broker, name="t").is_async is expected


def test_a_callable_object_with_an_async_call_is_async(broker: Broker) -> None:
    class Doubler:
        async def __call__(self, x: int) -> int:
            return 2 * x

    assert Task(Doubler(), broker, name="doubler").is_async


def test_calling_an_async_task_directly_gives_its_coroutine(broker: Broker) -> None:
    doubled = task(broker)(double)
    assert asyncio.run(doubled(4)) == 8
    coroutine = doubled.op(Message("double", args=(5,)))
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 10


def test_the_in_process_runner_runs_a_coroutine_to_its_end(broker: Broker) -> None:
    results, status = ResultStore(broker.backend), StatusTracker(broker.backend)
    doubled = task(broker, result_store=results, status_tracker=status)(double)
    message = doubled.generate(args=(21,))
    assert run_until_empty([doubled]) == 1
    assert results.get(message) == 42
    assert status.get(message) == TaskStatus.SUCCEEDED


def test_the_in_process_runner_cancels_a_coroutine_past_its_timeout(broker: Broker) -> None:
    status = StatusTracker(broker.backend)

    @task(broker, timeout=50, max_retries=0, status_tracker=status)
    async def hang() -> None:
        await asyncio.sleep(60)

    message = hang.generate()
    run_until_empty([hang])
    assert status.get(message) == TaskStatus.FAILED
    [dead] = broker.dead_letters()
    assert dead.message is not None and dead.message.exception_details is not None
    assert dead.message.exception_details["name"] == "TaskTimeoutError"


def test_pools_give_async_tasks_slots_of_their_own(broker: Broker) -> None:
    doubled, plained = task(broker)(double), task(broker)(plain)
    assert ProcessWorkerPool([doubled], n_processes=1, n_async=50).slots_per_process == 50
    assert ProcessWorkerPool([doubled, plained], n_processes=1, n_async=50).slots_per_process == 51
    assert ProcessWorkerPool([plained], n_processes=1, n_async=50).slots_per_process == 1
    threads = ThreadWorkerPool([doubled, plained], n_threads=4, n_processes=1, n_async=10)
    assert (threads.sync_slots, threads.n_async, threads.slots_per_process) == (4, 10, 14)
    assert ThreadWorkerPool([doubled], n_threads=4, n_processes=1).slots_per_process == 100


def test_n_async_below_one_is_refused(broker: Broker) -> None:
    with pytest.raises(AlsekError, match="one async slot"):
        ProcessWorkerPool([task(broker)(double)], n_processes=1, n_async=0)
