"""Connection faults under real worker pools (the CLI, in subprocesses): the
pool's connections killed again and again on the shared server, a private
redis-server restarted under a pool, and a pool pointed at nothing. Every
task completes, none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterator

import pytest
import redis

from alsek_backends.redis.plugin import DEFAULT_TEST_URL, ENV_TEST_URL
from alsek_core.message import Message
from tests.integration.backends.redis.test_redis_faults import (
    PrivateServer,
    admin,
    kill_named,
    private_server,
    with_params,
)
from tests.integration.network import free_port
from tests.integration.pool_harness import POOLS, ROOT
from tests.integration.redis_pools import TASKS, Run, TaskPool, started_pools

__all__ = ["admin", "private_server"]  # fixtures

pytestmark = pytest.mark.slow
URL = os.environ.get(ENV_TEST_URL) or DEFAULT_TEST_URL
QUEUES = ["faults-a", "faults-b"]
Start = Callable[..., TaskPool]


@pytest.fixture
def pools() -> Iterator[Start]:
    yield from started_pools()


def squares(run: Run, n: int, nap: float) -> list[Message]:
    return run.submit(run.message("square", i, nap, queue=QUEUES[i % 2]) for i in range(n))


def all_done(run: Run, messages: list[Message], pool: TaskPool, timeout: float) -> None:
    """Every message ran (its result is there) and nothing is left, lost or dead."""
    run.wait(lambda: run.with_results(messages) == len(messages), timeout, "every result", pool)
    run.wait(lambda: run.live() == 0, 30, "the queues to empty", pool)
    assert pool.terminate() == 0
    assert run.dead() == 0
    assert [run.results.get(m) for m in messages] == [i * i for i in range(len(messages))]


class Killer(threading.Thread):
    """``CLIENT KILL`` every connection named ``name``, every ``every`` seconds."""

    def __init__(self, admin: redis.Redis, name: str, every: float) -> None:
        super().__init__(daemon=True)
        self.admin, self.name, self.every = admin, name, every
        self.kills = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.kills += kill_named(self.admin, self.name)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_client_kill_under_a_running_pool_loses_nothing(admin: redis.Redis, pools: Start, kind: str) -> None:
    # Only the pool's connections carry this name, so only they are killed on
    # the shared server; the test's own stay up.
    namespace = f"pool-faults-{uuid_lib.uuid4().hex[:10]}"
    run = Run(with_params(URL, namespace=namespace), QUEUES)
    try:
        messages = squares(run, 3000, nap=0.005)
        pool = pools(kind, with_params(run.url, client_name=namespace), QUEUES)
        run.wait(lambda: run.with_results(messages) >= 100, 60, "the pool to start", pool)
        killer = Killer(admin, namespace, every=0.1)
        killer.start()
        try:
            run.wait(lambda: run.with_results(messages) == len(messages), 180, "every result under fire", pool)
        finally:
            killer.stop()
        assert killer.kills >= 10, f"only {killer.kills} connections killed; the test proves little"
        all_done(run, messages, pool, timeout=60)
    finally:
        run.close()


@pytest.mark.parametrize("outage_s", [1.0, 8.0], ids=["restart", "long-outage"])
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_server_restart_under_a_running_pool_loses_nothing(
    private_server: PrivateServer, pools: Start, kind: str, outage_s: float
) -> None:
    run = Run(with_params(private_server.url, namespace="pool-restart"), QUEUES)
    try:
        messages = squares(run, 2000, nap=0.005)
        pool = pools(kind, run.url, QUEUES)
        run.wait(lambda: run.with_results(messages) >= 200, 60, "the pool to start", pool)
        assert run.with_results(messages) < len(messages), "the pool finished before the restart"
        private_server.stop()
        time.sleep(outage_s)
        private_server.start()  # from its append-only file, with no scripts loaded
        all_done(run, messages, pool, timeout=180)
    finally:
        run.close()


@pytest.mark.parametrize(
    ("kind", "where"),
    [("thread-pool", "refused"), ("process-pool", "refused"), ("thread-pool", "unknown-host"),
     ("process-pool", "no-cluster")],
)
def test_a_pool_pointed_at_no_server_says_where_in_one_line(kind: str, where: str) -> None:
    host, port = ("no-such-host.invalid", 6379) if where == "unknown-host" else ("127.0.0.1", free_port())
    url = f"redis+cluster://{host}:{port}" if where == "no-cluster" else f"redis://{host}:{port}/0"
    argv = [sys.executable, "-m", "alsek_cli", *POOLS[kind], TASKS, "--backend", url, "--log-level", "warning"]
    pool = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _, stderr = pool.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(pool.pid, signal.SIGKILL)
        _, stderr = pool.communicate()
        pytest.fail(f"the pool kept running instead of exiting:\n{stderr}")
    lines = stderr.strip().splitlines()
    assert pool.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert f"{host}:{port}" in lines[0]
