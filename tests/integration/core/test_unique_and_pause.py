"""Unique jobs and paused queues through real pools started by the CLI, on
every backend that processes can share: 64 identical submits from several
processes queue one message, which a pool runs, freeing its key; a paused
queue's messages wait, untouched, while the pool runs other queues, and all
run once it is resumed."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.errors import DuplicateMessageError
from alsek_core.message import Message
from alsek_core.task import task
from tests.integration.pool_harness import POOLS, QUEUE, Pool, Store, registered_backends

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", registered_backends(), indirect=True),
]
Start = Callable[..., Pool]
PROCESSES, THREADS = 8, 8


def _unique_echo(i: int) -> int:
    return i


def _submit_same(url: str, barrier: Any, out: Any) -> None:
    """THREADS identical submits of ``unique_echo(7)`` from this process, each
    started at the same barrier as every other process's; puts one
    ("queued", uuid) or ("held", existing_uuid) per submit."""
    broker = Broker(backend_from_url(url))
    unique_echo = task(broker, name="unique_echo", queue=QUEUE, unique_key=True)(_unique_echo)
    results: list[tuple[str, str]] = []

    def submit() -> None:
        barrier.wait()
        try:
            results.append(("queued", unique_echo.generate(args=[7]).uuid))
        except DuplicateMessageError as exc:
            results.append(("held", exc.existing_uuid))

    threads = [threading.Thread(target=submit) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(results)


def test_64_identical_submits_from_several_processes_queue_one(store: Store, pools: Start) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES * THREADS), ctx.Queue()
    children = [ctx.Process(target=_submit_same, args=(store.url, barrier, out)) for _ in range(PROCESSES)]
    for child in children:
        child.start()
    outcomes = [item for _ in children for item in out.get(timeout=240)]
    for child in children:
        child.join(timeout=60)
    queued = [uuid for kind, uuid in outcomes if kind == "queued"]
    assert len(outcomes) == PROCESSES * THREADS
    assert len(queued) == 1, f"{len(queued)} messages queued under one unique key"
    assert {uuid for kind, uuid in outcomes if kind == "held"} == set(queued)
    assert store.live() == 1
    [uuid] = queued
    message = Message("unique_echo", queue=QUEUE, args=[7], uuid=uuid)
    pool = pools("process-pool", store.url)  # settled in a worker process, freed there
    store.wait(lambda: store.results.exists(message), 60, "the unique message to run", pool)
    store.wait(lambda: store.live() == 0, 60, "the unique message to leave the queue", pool)
    again = Broker(store.backend)
    unique_echo = task(again, name="unique_echo", queue=QUEUE, unique_key=True)(_unique_echo)
    second = unique_echo.generate(args=[7])  # its key was freed when the first settled
    store.wait(lambda: store.results.exists(second), 60, "the second one to run", pool)
    assert pool.terminate() == 0


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_a_paused_queue_waits_and_runs_after_resume(store: Store, pools: Start, kind: str) -> None:
    store.broker.pause(QUEUE)
    messages = [store.submit("echo_thread", i) for i in range(20)]
    delayed = store.broker.submit(Message("echo_thread", queue=QUEUE, args=[99], delay=3_600_000))
    pool = pools(kind, store.url, "--queues", f"{QUEUE},canary")
    canaries = [store.broker.submit(Message("canary", queue="canary", args=[i])) for i in range(3)]
    store.wait(lambda: store.done(canaries) == 3, 60, "the pool to run the other queue", pool)
    counts = store.broker.counts(QUEUE)
    assert (counts.ready, counts.in_flight, counts.delayed) == (20, 0, 1)
    assert store.done(messages) == 0
    store.broker.resume(QUEUE)
    store.wait(lambda: store.done(messages) == 20, 60, "every message after resume", pool)
    assert store.broker.counts(QUEUE).delayed == 1 and store.broker.contains(QUEUE, delayed.uuid)
    assert pool.terminate() == 0
    assert not store.broker.is_paused(QUEUE)
