"""Per-tenant queues on PostgreSQL (seed 004), with real processes: a pool
started by the CLI on chosen tenant queues takes only those, and a cron
TriggerTask run by several scheduler processes at once submits each fire
once, which a pool on the scheduler queue turns into exactly one message per
tenant per fire. The app is tests/integration/postgres_tenant_app.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.status import TaskStatus
from alsek_core.testing.contract.fixtures import unavailable

psycopg = pytest.importorskip("psycopg")

from alsek_backends.postgres import (  # noqa: E402
    PostgresBackend,
    PostgresResultStore,
    PostgresStatusTracker,
)
from alsek_backends.postgres import schema as schema_lib  # noqa: E402
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema  # noqa: E402

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)
ROOT = Path(__file__).resolve().parents[4]
APP = str(Path(__file__).parents[2] / "postgres_tenant_app.py")
TENANTS = ("1", "2", "3")
FIRE_EVERY_MS = 2_000  # the app's cron: every even second
SCHEDULERS = 3
FIRES = 4


class Proc:
    """A child process in a session of its own, its output kept for failures."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._log: IO[str] = tempfile.NamedTemporaryFile("w+", prefix="alsek-tenant-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text()

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit within {timeout}s of SIGTERM:\n{self.log()}")

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


@pytest.fixture
def url() -> Iterator[str]:
    """A schema of its own, migrated, and a namespace of its own."""
    schema = f"alsek_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.Connection.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}")
    with admin:
        schema_lib.init(admin, schema)
        yield f"{with_schema(POSTGRES_URL, schema)}&namespace=tenants"
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    instance = backend_from_url(url)
    assert isinstance(instance, PostgresBackend)
    yield instance
    instance.close()


@pytest.fixture
def start(url: str) -> Iterator[Callable[..., Proc]]:
    """Start processes with the backend in their environment; all killed at the end."""
    started: list[Proc] = []
    env = {**os.environ, "ALSEK_BACKEND_URL": url}

    def run(*argv: str) -> Proc:
        started.append(Proc([sys.executable, *argv], env))
        return started[-1]

    yield run
    for proc in started:
        proc.close()


def pool(start: Callable[..., Proc], queues: str) -> Proc:
    return start("-m", "alsek_cli", "thread-pool", APP, "-qu", queues, "--n_processes", "1",
                 "--n_threads", "4", "--log-level", "info")


def wait(condition: Callable[[], bool], what: str, procs: list[Proc], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.process.poll() is not None:
                pytest.fail(f"a process exited with {proc.process.returncode} before {what}:\n{proc.log()}")
        if time.monotonic() > deadline:
            logs = "\n".join(proc.log() for proc in procs)
            pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{logs}")
        time.sleep(0.1)


def live(broker: Broker, queue: str) -> int:
    counts = broker.counts(queue)
    return counts.ready + counts.delayed + counts.in_flight


def test_a_pool_takes_only_its_tenants_queues(
    backend: PostgresBackend, start: Callable[..., Proc]
) -> None:
    broker, tracker = Broker(backend), PostgresStatusTracker(backend)
    submitted: dict[str, list[Message]] = {}
    for tenant in TENANTS:
        submitted[tenant] = [
            broker.submit(Message("sync_tenant", queue=tenant, args=(tenant, None, None)))
            for _ in range(20)
        ]
        for message in submitted[tenant]:
            tracker.set(message, TaskStatus.SUBMITTED)
    worker = pool(start, "1")
    results = PostgresResultStore(backend)
    for message in submitted["1"]:
        assert results.get(message, timeout=60_000) == "1"
        assert tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=30) == TaskStatus.SUCCEEDED
    wait(lambda: live(broker, "1") == 0, "tenant 1's queue to empty", [worker])
    time.sleep(0.5)  # a pool that wrongly took other queues has had time to start on them
    assert worker.stop() == 0, worker.log()
    for tenant in ("2", "3"):
        counts = broker.counts(tenant)
        assert (counts.ready, counts.in_flight, counts.dead) == (20, 0, 0), f"tenant {tenant}: {counts}"
        assert {tracker.get(m) for m in submitted[tenant]} == {TaskStatus.SUBMITTED}
        assert not any(results.exists(m) for m in submitted[tenant])


def test_cron_scheduler_fires_once_per_time_across_processes(
    backend: PostgresBackend, start: Callable[..., Proc]
) -> None:
    broker = Broker(backend)
    worker = pool(start, "scheduler")  # defers tenant work, runs none of it
    schedulers = []
    for _ in range(SCHEDULERS):
        schedulers.append(start(APP))
        time.sleep(0.7)  # started at different moments, as separate deploys are
    wait(lambda: all("scheduling" in s.log() for s in schedulers), "every scheduler to start",
         [worker, *schedulers])
    wait(lambda: live(broker, TENANTS[-1]) >= FIRES, f"{FIRES} fires", [worker, *schedulers])
    for scheduler in schedulers:
        assert scheduler.stop() == 0, scheduler.log()
    wait(lambda: live(broker, "scheduler") == 0, "the scheduler queue to empty", [worker])
    assert worker.stop() == 0, worker.log()

    per_tenant: dict[str, list[Any]] = {}
    for tenant in TENANTS:
        messages = [broker.decode(item.payload) for item in backend.messages(tenant)]
        assert {m.args[0] for m in messages} == {tenant}
        per_tenant[tenant] = sorted((m.args[1], m.args[2]) for m in messages)
    fires = per_tenant[TENANTS[0]]
    assert all(found == fires for found in per_tenant.values()), "every tenant got every fire"
    assert len({fire for fire, _ in fires}) == len(fires), "one message per tenant per fire"
    slots = sorted(round(fired_at / FIRE_EVERY_MS) for _, fired_at in fires)
    assert len(slots) >= FIRES
    assert slots == list(range(slots[0], slots[0] + len(slots))), (
        f"one fire per cron time, none missing, none doubled: {slots}"
    )
