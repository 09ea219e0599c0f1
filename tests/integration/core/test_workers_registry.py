"""The workers registry (alsek_core.workers) on every registered backend
(the five-method one included), and ``alsek workers`` listing a real pool."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from alsek_core import workers
from alsek_core.config import backend_from_url
from alsek_core.ports import Backend
from alsek_core.testing.contract.fixtures import unavailable, wipe
from alsek_core.workers import PREFIX, Heartbeat, live_workers
from tests.integration.pool_harness import (
    ROOT,
    Pool,
    Store,
    backend_url,
    registered_backends,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=registered_backends())
def kv(request: pytest.FixtureRequest, scratch: str) -> Iterator[Backend]:
    """The five-method backend (tests/five_method.py) is one of those registered."""
    found = backend_from_url(backend_url(request.param, scratch))
    try:
        found.exists("probe")
    except Exception as exc:
        unavailable(f"{request.param} is unreachable: {exc}")
    yield found
    wipe(found)


def test_a_pool_registers_beats_and_leaves(kv: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]  # the heartbeat's monotonic clock, moved by hand: no race with a slow machine
    monkeypatch.setattr(workers, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    busy = [0]
    beat = Heartbeat(kv, "TestPool", ["a", "b"], slots=4, busy=lambda: busy[0], interval_s=5)
    beat.beat()
    (record,) = live_workers(kv)
    assert (record.kind, record.queues, record.slots, record.busy) == ("TestPool", ["a", "b"], 4, 0)
    busy[0] = 3
    clock[0] += 4.9
    beat.beat()  # not due yet: nothing written
    assert live_workers(kv)[0].busy == 0
    clock[0] += 0.2
    beat.beat()
    (record,) = live_workers(kv)
    assert record.busy == 3
    beat.stop()
    assert live_workers(kv) == []


def test_a_silent_pool_expires(kv: Backend) -> None:
    """Its record lives three beats (6 s here), then is gone without a word."""
    Heartbeat(kv, "Gone", ["q"], slots=1, busy=lambda: 0, interval_s=2).beat()
    assert len(live_workers(kv)) == 1
    deadline = time.monotonic() + 60
    while live_workers(kv):
        assert time.monotonic() < deadline, "a registration without beats never expired"
        time.sleep(0.1)


def test_junk_under_the_prefix_is_skipped(kv: Backend) -> None:
    kv.set(PREFIX + "junk", "not a record")
    kv.set(PREFIX + "partial", {"id": "x", "host": "h"})
    kv.set(PREFIX + "typed", {"id": "x", "host": "h", "pid": "1", "kind": "k", "queues": ["q"],
                              "slots": 1, "busy": 0, "started_at": 0, "last_beat": 0})
    Heartbeat(kv, "Real", ["q"], slots=2, busy=lambda: 1).beat()
    assert [r.kind for r in live_workers(kv)] == ["Real"]


def alsek_json(*args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "alsek_cli", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(("kind", "name", "slots"), [("thread-pool", "ThreadWorkerPool", 8),
                                                     ("process-pool", "ProcessWorkerPool", 2)])
@pytest.mark.parametrize("store", registered_backends(), indirect=True)
def test_alsek_workers_lists_a_running_pool(store: Store, pools: Callable[..., Pool],
                                            kind: str, name: str, slots: int) -> None:
    """Busy slots are counted across the pool's processes (its shared slot table)."""
    pool = pools(kind, store.url, "--grace_period", "200")
    store.wait(lambda: bool(live_workers(store.backend)), 60, "the pool to register", pool)
    (listed,) = alsek_json("workers", "--backend", store.url)  # type: ignore[misc]
    assert (listed["kind"], listed["slots"]) == (name, slots) and "pools" in listed["queues"]
    for _ in range(2):
        store.submit("nap", 30.0)
    store.wait(lambda: live_workers(store.backend)[0].busy == 2, 60, "2 busy slots", pool)
    assert pool.terminate(timeout=60) == 0
    assert alsek_json("workers", "--backend", store.url) == []
