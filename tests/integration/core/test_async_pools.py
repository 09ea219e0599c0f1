"""``async def`` tasks in real pools started by the CLI, on every registered
backend that processes can share: many coroutines at once per process, and
timeouts, retries, callbacks, revocations and a killed worker process
handled as for any task, and rate and concurrency limits held."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from alsek_core.backoff import no_backoff
from alsek_core.message import Message
from alsek_core.status import TaskStatus
from tests.integration.async_pool_tasks import ASYNC_PACED_RATE
from tests.integration.pool_harness import QUEUE, Pool, Store, most_at_once, registered_backends

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", registered_backends(), indirect=True),
]
Start = Callable[..., Pool]
TASKS = str(Path(__file__).parents[1] / "async_pool_tasks.py")
MIXED = str(Path(__file__).parents[1] / "mixed_pool_tasks.py")
ONE_PROCESS = ("--n_processes", "1", "--n-async", "100")


def start(pools: Start, store: Store, kind: str = "process-pool") -> Pool:
    return pools(kind, store.url, *ONE_PROCESS, tasks=TASKS)


def dead_error(store: Store, message: Message) -> str:
    [dead] = [d for d in store.broker.dead_letters(QUEUE) if d.uuid == message.uuid]
    assert dead.message is not None and dead.message.exception_details is not None
    return str(dead.message.exception_details["name"])


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("kind", ["process-pool", "thread-pool"])
def test_200_coroutines_complete_on_one_process(store: Store, pools: Start, kind: str) -> None:
    messages = [store.submit("async_nap", 0.2, i, mechanism="process") for i in range(200)]
    pool = start(pools, store, kind)
    store.wait(lambda: store.live() == 0, 90, "the queue to drain", pool)
    assert pool.terminate() == 0
    assert [store.results.get(m) for m in messages] == list(range(200))
    assert {store.status.get(m) for m in messages} == {TaskStatus.SUCCEEDED}
    assert store.dead_uuids() == set()


@pytest.mark.parametrize("kind", ["process-pool", "thread-pool"])
def test_plain_and_async_tasks_share_a_pool(store: Store, pools: Start, kind: str) -> None:
    messages = [store.submit("plain_echo" if i % 2 else "async_echo", i, mechanism="process") for i in range(200)]
    pool = pools(kind, store.url, *ONE_PROCESS, tasks=MIXED)
    store.wait(lambda: store.live() == 0, 90, "the queue to drain", pool)
    assert pool.terminate() == 0
    assert [store.results.get(m) for m in messages] == list(range(200))
    assert store.dead_uuids() == set()


def test_timeout_cancels_the_coroutine_and_fails_it(store: Store, pools: Start) -> None:
    hung = store.submit("async_hang", 600, mechanism="process", timeout=300)
    pool = start(pools, store)
    store.wait(lambda: store.status.get(hung) == TaskStatus.FAILED, 30, "the timeout", pool)
    after = store.submit("async_nap", 0, 7, mechanism="process")
    store.wait(lambda: store.results.exists(after), 30, "the next task", pool)
    assert pool.terminate() == 0
    assert dead_error(store, hung) == "TaskTimeoutError"
    assert store.results.get(after) == 7


def test_retry_then_success(store: Store, pools: Start) -> None:
    flaky = store.broker.submit(Message("async_flaky", queue=QUEUE, mechanism="process",
                                        backoff_settings=no_backoff().settings))
    pool = start(pools, store)
    store.wait(lambda: store.results.exists(flaky), 30, "the retry to succeed", pool)
    assert pool.terminate() == 0
    assert store.results.get(flaky) == 1
    assert store.status.get(flaky) == TaskStatus.SUCCEEDED


def test_callback_gets_the_result(store: Store, pools: Start) -> None:
    callback = Message("async_add_one", queue=QUEUE, mechanism="process")
    parent = store.broker.submit(Message("async_nap", queue=QUEUE, args=(0, 41), mechanism="process",
                                         callback_message_data=callback.data))
    pool = start(pools, store)
    store.wait(lambda: store.results.exists(callback), 30, "the callback", pool)
    assert pool.terminate() == 0
    assert (store.results.get(parent), store.results.get(callback)) == (41, 42)
    assert store.status.get(callback) == TaskStatus.SUCCEEDED


def test_sigkilled_worker_process_loses_no_coroutine(store: Store, pools: Start) -> None:
    messages = [store.submit("async_slow_first", 600, i, mechanism="process") for i in range(50)]
    pool = start(pools, store)
    running = lambda: sum(store.status.get(m) == TaskStatus.RUNNING for m in messages)  # noqa: E731
    store.wait(lambda: running() == 50, 60, "every coroutine to run", pool)
    [worker] = children(pool.process.pid)
    os.kill(worker, signal.SIGKILL)
    store.wait(lambda: store.done(messages) == 50, 90, "every message to run again", pool)
    assert pool.terminate() == 0
    assert [store.results.get(m) for m in messages] == list(range(50))
    assert store.dead_uuids() == set()
    assert store.live() == 0


def test_revoke_cancels_a_running_coroutine(store: Store, pools: Start) -> None:
    doomed = store.submit("async_hang", 600, mechanism="process")
    pool = start(pools, store)
    store.wait(lambda: store.status.get(doomed) == TaskStatus.RUNNING, 30, "the coroutine to run", pool)
    store.broker.revoke(doomed)
    store.wait(lambda: store.status.get(doomed) == TaskStatus.REVOKED, 30, "the revocation", pool)
    after = store.submit("async_nap", 0, 3, mechanism="process")
    store.wait(lambda: store.results.exists(after), 30, "the next task", pool)
    assert pool.terminate() == 0
    # Stopped on purpose: removed, neither retried nor dead-lettered (alsek_core.revocation).
    assert store.dead_uuids() == set() and not store.broker.contains(QUEUE, doomed.uuid)


def test_a_coroutine_blocking_its_loop_past_its_timeout_has_its_process_stopped(store: Store, pools: Start) -> None:
    other = store.submit("async_nap", 1, 5, mechanism="process")
    blocker = store.submit("async_block", 600, mechanism="process", timeout=300)
    pool = start(pools, store)
    store.wait(lambda: store.status.get(blocker) == TaskStatus.FAILED, 60, "the blocker's process to go", pool)
    store.wait(lambda: store.results.exists(other), 60, "the other coroutine to run again", pool)
    assert pool.terminate() == 0
    assert dead_error(store, blocker) == "TaskTimeoutError"
    assert store.results.get(other) == 5


def test_sigterm_hands_back_running_coroutines_and_exits_zero(store: Store, pools: Start) -> None:
    messages = [store.submit("async_hang", 600, mechanism="process") for _ in range(20)]
    pool = pools("process-pool", store.url, *ONE_PROCESS, "--grace_period", "300", tasks=TASKS)
    running = lambda: sum(store.status.get(m) == TaskStatus.RUNNING for m in messages)  # noqa: E731
    store.wait(lambda: running() == 20, 60, "every coroutine to run", pool)
    assert pool.terminate() == 0
    assert {store.status.get(m) for m in messages} == {TaskStatus.SUBMITTED}
    assert store.broker.counts(QUEUE).ready == 20


def test_limits_hold_for_coroutines(store: Store, pools: Start) -> None:
    """Room for 100 coroutines at once, yet 2 of a tenant at a time and
    ``ASYNC_PACED_RATE`` starts a second (after a full bucket's burst)."""
    per_tenant = [Message("async_per_tenant", queue=QUEUE, kwargs={"tenant": t, "seconds": 0.2}) for t in "ab" * 6]
    paced = [Message("async_paced", queue=QUEUE, args=[i]) for i in range(3 * ASYNC_PACED_RATE)]
    store.broker.submit_many(per_tenant + paced)
    pool = start(pools, store)
    store.wait(lambda: store.live() == 0, 60, "the limited messages", pool)
    assert pool.terminate() == 0
    assert store.dead_uuids() == set(), "a limited message is delayed, never failed"
    for tenant in "ab":
        spans = [store.results.get(m) for m in per_tenant if m.kwargs["tenant"] == tenant]
        assert most_at_once(spans) == 2, f"tenant {tenant}: {sorted(spans)}"
    starts = sorted(store.results.get(m) for m in paced)
    # The burst starts at once; each of the others waits for its own token.
    least_s = (len(paced) - ASYNC_PACED_RATE) / ASYNC_PACED_RATE
    assert starts[-1] - starts[0] >= 0.95 * least_s, f"{len(paced)} started within {starts[-1] - starts[0]:.2f} s"
    for tenant in "ab":  # each run gave its slot back when it was recorded, not when its lease ran out
        assert store.broker.acquire_slot(f"async_per_tenant:{tenant}", "probe", 1, 1000)
