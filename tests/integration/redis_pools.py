"""Real worker pools on Redis, for the cluster and fault tests: a pool of
``redis_pool_tasks.py`` started by the CLI on chosen queues, and what a test
sees of the backend it runs on."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from alsek_backends.redis.backend import RedisBackend
from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.result import ResultStore, result_name
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.testing.contract.fixtures import wipe
from tests.integration.pool_harness import LEASE_MS, POOLS, ROOT, Pool

TASKS = str(Path(__file__).with_name("redis_pool_tasks.py"))


class TaskPool(Pool):
    """``alsek <kind> redis_pool_tasks.py -qu <queues>``, in a session of its own."""

    def __init__(self, kind: str, url: str, queues: Sequence[str], *extra: str) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", prefix="alsek-pool-", suffix=".log")  # noqa: SIM115
        argv = [sys.executable, "-m", "alsek_cli", *POOLS[kind], TASKS, "--backend", url,
                "-qu", ",".join(queues), "--lease_ms", str(LEASE_MS), "--log-level", "info", *extra]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)


class Run:
    """The test's side of a pool run: submits, counts and checks on ``queues``."""

    def __init__(self, url: str, queues: Sequence[str]) -> None:
        self.url = url
        self.queues = list(queues)
        backend = backend_from_url(url)
        assert isinstance(backend, RedisBackend)
        self.backend = backend
        self.broker = Broker(backend)
        self.results = ResultStore(backend)
        self.status = StatusTracker(backend)

    @staticmethod
    def message(task_name: str, *args: Any, queue: str, mechanism: str = "thread", **fields: Any) -> Message:
        return Message(task_name, queue=queue, args=args, mechanism=mechanism, **fields)

    def submit(self, messages: Iterable[Message]) -> list[Message]:
        batch = list(messages)
        self.broker.submit_many(batch)
        return batch

    def live(self) -> int:
        """Messages ready, delayed or leased, over every queue."""
        total = 0
        for queue in self.queues:
            counts = self.broker.counts(queue)
            total += counts.ready + counts.delayed + counts.in_flight
        return total

    def dead(self) -> int:
        return sum(self.broker.counts(queue).dead for queue in self.queues)

    def with_results(self, messages: Sequence[Message]) -> int:
        """How many of ``messages`` have a result: one EXISTS per key, pipelined."""
        pipe = self.backend.conn.pipeline(transaction=False)
        for message in messages:
            pipe.exists(self.backend.full_name(result_name(message.uuid)))
        return sum(pipe.execute())

    def succeeded(self, messages: Sequence[Message]) -> int:
        return sum(1 for m in messages if self.status.get(m) == TaskStatus.SUCCEEDED)

    def wait(self, condition: Callable[[], bool], timeout: float, what: str, pool: Pool | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if pool is not None and pool.process.poll() is not None:
                pytest.fail(f"the pool exited with {pool.process.returncode} before {what}:\n{pool.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}" + (f":\n{pool.log()}" if pool else ""))
            time.sleep(0.05)

    def close(self) -> None:
        """Leave nothing of the namespace behind, its queue registry included."""
        try:
            wipe(self.backend)
        finally:
            self.backend.conn.delete(self.backend.registry_key)
            self.backend.close()


def started_pools() -> Iterator[Callable[..., TaskPool]]:
    """Start pools; whatever a test leaves running is killed (wrap in a fixture)."""
    started: list[TaskPool] = []

    def start(kind: str, url: str, queues: Sequence[str], *extra: str) -> TaskPool:
        started.append(TaskPool(kind, url, queues, *extra))
        return started[-1]

    yield start
    for pool in started:
        pool.close()
