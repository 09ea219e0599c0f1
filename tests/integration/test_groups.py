"""Groups on every registered backend: one batch in, results out in member
order, completion observable (and waited for) whether members succeed, fail or
keep nothing; run in this process (``run_until_empty``) and by a real pool."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alsek import Broker, Group, Message, TaskStatus, group, task
from alsek_core.errors import GroupMemberFailedError, ValidationError
from alsek_core.ports import Backend
from alsek_core.result import ResultStore, store_for
from alsek_core.status import BaseStatusTracker, tracker_for
from alsek_core.task import Task
from alsek_core.testing.runner import run_until_empty


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return Broker(backend)


@pytest.fixture
def results(backend: Backend) -> ResultStore:
    return store_for(backend)


@pytest.fixture
def statuses(backend: Backend) -> BaseStatusTracker:
    return tracker_for(backend)


@pytest.fixture
def arithmetic(broker: Broker, results: ResultStore, statuses: BaseStatusTracker) -> tuple[Task, Task]:
    @task(broker, queue="adds", result_store=results, status_tracker=statuses)
    def add(a: int, b: int) -> int:
        return a + b

    @task(broker, queue="muls", result_store=results, status_tracker=statuses)
    def mul(a: int, b: int) -> int:
        return a * b

    return add, mul


@contextlib.contextmanager
def in_background(tasks: list[Task]) -> Iterator[None]:
    """Run ``tasks``' messages in a thread while the test waits on the group."""
    worker = threading.Thread(target=run_until_empty, args=(tasks,), kwargs={"timeout": 120})
    worker.start()
    yield
    worker.join()


def test_a_group_of_two_tasks_gives_results_in_member_order(
    broker: Broker, arithmetic: tuple[Task, Task], statuses: BaseStatusTracker
) -> None:
    add, mul = arithmetic
    messages = [(add if i % 2 else mul).generate(args=(i, 3), submit=False) for i in range(20)]
    assert broker.counts("adds").ready == 0, "submit=False submits nothing"
    batch = group(messages)
    assert isinstance(batch, Group) and len(batch) == 20 and batch.messages == tuple(messages)
    assert broker.counts("adds").ready == 10 and broker.counts("muls").ready == 10
    assert statuses.get(messages[0]) is TaskStatus.SUBMITTED
    assert not batch.done
    with in_background([add, mul]):
        batch.wait(timeout=120_000)
    assert batch.done
    got = [(message.uuid, result) for message, result in batch.stream(timeout=10_000)]
    assert got == [(m.uuid, i + 3 if i % 2 else i * 3) for i, m in enumerate(messages)]


def test_results_stream_while_members_run(arithmetic: tuple[Task, Task]) -> None:
    add, _ = arithmetic
    batch = group(add.generate(args=(i, i), submit=False) for i in range(30))
    with in_background([add]):
        streamed = [result for _, result in batch.stream(timeout=120_000, keep=True)]
    assert streamed == [2 * i for i in range(30)]
    records = [record for _, record in batch.stream(with_metadata=True)]
    assert [r["result"] for r in records] == streamed and records[0].keys() == {"result", "timestamp", "uuid"}


def test_failures_settle_the_group_and_stop_the_stream(
    broker: Broker, results: ResultStore, statuses: BaseStatusTracker
) -> None:
    @task(broker, queue="flaky", result_store=results, status_tracker=statuses, max_retries=0)
    def maybe(i: int) -> int:
        if i == 2:
            raise ValueError("two is bad")
        return i

    @task(broker, queue="flaky", max_retries=0)
    def untracked(i: int) -> int:
        """Keeps no result and no status: only the queue says it is done."""
        if i:
            raise ValueError("bad")
        return i

    batch = group([maybe.generate(args=(i,), submit=False) for i in range(4)]
                  + [untracked.generate(args=(i,), submit=False) for i in range(2)])
    run_until_empty([maybe, untracked])
    assert batch.done
    batch.wait(timeout=0)
    with pytest.raises(ValidationError, match="'untracked' keep no results"):
        next(batch.stream())
    only_tracked = group([maybe.generate(args=(i,), submit=False) for i in range(4)])
    run_until_empty([maybe])
    streamed = []
    with pytest.raises(GroupMemberFailedError, match="failed"):
        for _, result in only_tracked.stream():
            streamed.append(result)
    assert streamed == [0, 1]


def test_waiting_without_workers_times_out(arithmetic: tuple[Task, Task]) -> None:
    add, _ = arithmetic
    batch = group([add.generate(args=(1, 2), submit=False)])
    with pytest.raises(TimeoutError, match="1 of 1 group members not settled after 200 ms"):
        batch.wait(timeout=200)
    with pytest.raises(TimeoutError):
        list(batch.stream(timeout=100))
    assert not batch.done


def test_what_a_group_refuses(broker: Broker, backend: Backend, arithmetic: tuple[Task, Task]) -> None:
    add, _ = arithmetic
    made = add.generate(args=(1, 1), submit=False)
    refused: list[tuple[Any, str]] = [
        ([], "at least one message"),
        (made, "an iterable of messages"),
        (42, "an iterable of messages"),
        ([made, "not a message"], "must be a Message"),
        ([Message("add", queue="adds", args=[1, 1])], "not made by a task's generate"),
        ([add.generate(args=(1, 1))], "not made by a task's generate"),
        ([made, made], "in the group twice"),
    ]
    other = type(backend).__new__(type(backend))  # the same storage, another namespace
    other.__dict__.update(backend.__dict__)
    other.namespace = backend.namespace + "-other"

    @task(Broker(other), queue="adds")
    def elsewhere() -> None:
        pass

    refused.append(([made, elsewhere.generate(submit=False)], "one batch, to one broker"))
    for messages, error in refused:
        with pytest.raises(ValidationError, match=error):
            group(messages)
    assert broker.counts("adds").ready == 1, "only the message submitted by generate() is queued"


POOL_TASKS = """\
from alsek import Broker, task
from alsek_core.result import store_for
from alsek_core.status import tracker_for

broker = Broker()


@task(broker, queue="squares", mechanism="thread", result_store=store_for(broker.backend),
      status_tracker=tracker_for(broker.backend), max_retries=0)
def square(i: int) -> int:
    if i == 13:
        raise ValueError("unlucky")
    return i * i
"""


def test_a_pool_runs_a_group(tmp_path: Path, shared_url: str, broker: Broker, results: ResultStore,
                             statuses: BaseStatusTracker) -> None:
    @task(broker, queue="squares", result_store=results, status_tracker=statuses, max_retries=0)
    def square(i: int) -> int:
        raise AssertionError("runs in the pool, not here")

    (tmp_path / "squares.py").write_text(POOL_TASKS)
    batch = group(square.generate(args=(i,), submit=False) for i in range(40))
    pool = subprocess.Popen([sys.executable, "-m", "alsek_cli", "thread-pool", "squares.py", "--n_processes", "1",
                             "--backend", shared_url, "--log-level", "warning"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        batch.wait(timeout=120_000)
    finally:
        pool.send_signal(signal.SIGTERM)
        output, _ = pool.communicate(timeout=60)
    assert pool.returncode == 0, output
    assert batch.done and statuses.get(batch.messages[13]) is TaskStatus.FAILED
    streamed = []
    with pytest.raises(GroupMemberFailedError, match="failed"):
        for _, result in batch.stream():
            streamed.append(result)
    assert streamed == [i * i for i in range(13)]
