"""Running real pools in subprocesses against every registered backend that
more than one process can share, each test in a namespace of its own."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.ports import Backend
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.testing.contract.fixtures import shared_across_processes, unavailable, wipe

ROOT = Path(__file__).resolve().parents[2]
TASKS = str(Path(__file__).with_name("pool_tasks.py"))
QUEUE = "pools"
#: Short leases so a killed pool's messages come back within the test.
LEASE_MS = 1_000
POOLS = {
    "thread-pool": ["thread-pool", "--n_threads", "4", "--n_processes", "2"],
    "process-pool": ["process-pool", "--n_processes", "2"],
}


def registered_backends() -> list[str]:
    specs = {spec.name: spec for spec, _ in plugin_host().registry.backends.values()}
    return sorted(name for name, spec in specs.items() if spec.test_url is not None)


def most_at_once(spans: list[list[float]]) -> int:
    """The most intervals [start, end] that overlap at any instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:  # at a tie, an end (-1) sorts before a start
        running += step
        most = max(most, running)
    return most


def backend_url(name: str, scratch: str) -> str:
    """The backend's test URL in a namespace no other test uses."""
    spec = plugin_host().registry.backends[name][0]
    assert spec.test_url is not None
    url = spec.test_url(scratch)
    return f"{url}{'&' if '?' in url else '?'}namespace=pools-{uuid_lib.uuid4().hex[:10]}"


class Store:
    """What a test sees of the backend the pool runs on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend: Backend = backend_from_url(url)
        self.broker = Broker(self.backend)
        self.results = ResultStore(self.backend)
        self.status = StatusTracker(self.backend)

    def submit(self, task_name: str, *args: Any, mechanism: str = "thread", timeout: int = 60_000) -> Message:
        message = Message(task_name, queue=QUEUE, args=args, mechanism=mechanism, timeout=timeout)
        return self.broker.submit(message)

    def live(self) -> int:
        counts = self.broker.counts(QUEUE)
        return counts.ready + counts.delayed + counts.in_flight

    def done(self, messages: list[Message]) -> int:
        return sum(1 for m in messages if self.results.exists(m))

    def dead_uuids(self) -> set[str]:
        return {item.uuid for item in self.backend.messages(QUEUE, dead=True)}

    def wait(self, condition: Callable[[], bool], timeout: float, what: str, pool: Pool | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if pool is not None and pool.process.poll() is not None:
                pytest.fail(f"the pool exited with {pool.process.returncode} before {what}:\n{pool.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}" + (f":\n{pool.log()}" if pool else ""))
            time.sleep(0.05)


class Pool:
    """``alsek <kind> pool_tasks.py`` in a session of its own (so a SIGKILL of
    the session takes its children too)."""

    def __init__(self, kind: str, url: str, *extra: str, tasks: str = TASKS) -> None:
        self._log: IO[str] = tempfile.NamedTemporaryFile("w+", prefix="alsek-pool-", suffix=".log")  # noqa: SIM115
        argv = [sys.executable, "-m", "alsek_cli", *POOLS[kind], tasks, "--backend", url,
                "--lease_ms", str(LEASE_MS), "--log-level", "info", *extra]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the pool's parent only; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the pool did not exit within {timeout}s of SIGTERM:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the pool and every process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log.close()


#: Per backend: whether other processes see its storage (asked once).
_SHARED: dict[str, bool] = {}


@pytest.fixture(scope="module")
def scratch() -> str:
    return tempfile.mkdtemp(prefix="alsek-pools-")


@pytest.fixture
def store(request: pytest.FixtureRequest, scratch: str) -> Iterator[Store]:
    url = backend_url(request.param, scratch)
    found = Store(url)
    try:
        found.backend.exists("pool-probe")
    except Exception as exc:
        unavailable(f"{request.param} is unreachable: {exc}")
    if request.param not in _SHARED:
        factory = functools.partial(backend_from_url, url)
        _SHARED[request.param] = shared_across_processes(found.backend, factory)
    if not _SHARED[request.param]:
        found.backend.close()
        pytest.skip(f"{request.param} lives in one process; pools run in several")
    yield found
    wipe(found.backend)


@pytest.fixture
def pools() -> Iterator[Callable[..., Pool]]:
    """Start pools; whatever a test leaves running is killed."""
    started: list[Pool] = []

    def start(kind: str, url: str, *extra: str, tasks: str = TASKS) -> Pool:
        started.append(Pool(kind, url, *extra, tasks=tasks))
        return started[-1]

    yield start
    for pool in started:
        pool.close()
