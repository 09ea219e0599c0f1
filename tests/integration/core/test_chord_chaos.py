"""A 1,000-member chord through a real process pool whose worker processes are
SIGKILLed at random until every member has settled: the callback runs exactly
once, with the 1,000 results in member order, also when members fail and
retry. (Killing stops once the join is complete: the callback's own run is at
least once, like any message's; what the chord promises is one release.)"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alsek import Message, chord, task
from tests.integration.pool_harness import QUEUE, Pool, Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", ["diskcache", "postgres", "redis"], indirect=True),
]
MEMBERS = 1000
#: Only workers up this long are killed: a pool restarts workers that die
#: younger, holding nothing, ever more slowly (a broken environment).
MIN_AGE_S = 2.5
#: Each member's work: the chord takes about 10 s on the pool's 2 processes,
#: time for a kill every second or so.
WORK_S = 0.02
#: Helper processes a pool may start that run no task.
HELPERS = (b"resource_tracker", b"forkserver")


def workers(pid: int) -> list[int]:
    """The pool's worker processes (its children, as /proc lists them)."""
    found = []
    with contextlib.suppress(OSError):
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{thread}/children") as f:
                found += [int(child) for child in f.read().split()]
    alive = []
    for child in found:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as f:
            if not any(helper in f.read() for helper in HELPERS):
                alive.append(child)
    return alive


@pytest.mark.timeout(180)
@pytest.mark.parametrize("fail_first", [False, True], ids=["succeed", "fail-then-retry"])
def test_a_1000_member_chord_survives_sigkilled_workers(
    store: Store, pools: Callable[..., Pool], tmp_path: Path, fail_first: bool
) -> None:
    @task(store.broker, queue=QUEUE, mechanism="process", backoff=None)
    def chord_member(i: int, fail_first: bool, seconds: float, message: Message) -> int:
        raise AssertionError("runs in the pool")

    @task(store.broker, queue=QUEUE, mechanism="process", result_store=store.results, status_tracker=store.status)
    def chord_collect(path: str, message: Message) -> list[int]:
        raise AssertionError("runs in the pool")

    runs = tmp_path / "runs"
    made = chord([chord_member.generate(args=(i, fail_first, WORK_S), submit=False) for i in range(MEMBERS)],
                 chord_collect.generate(args=(str(runs),), submit=False))
    pool = pools("process-pool", store.url)
    rng = random.Random(MEMBERS + fail_first)
    kills = 0
    deadline = time.monotonic() + 120
    first_seen: dict[int, float] = {}
    while not made.done and len(store.broker.joined(made.callback)) < MEMBERS:  # the join goes with the callback
        assert time.monotonic() < deadline, f"{len(store.broker.joined(made.callback))} joined:\n{pool.log()}"
        assert pool.process.poll() is None, pool.log()
        time.sleep(rng.uniform(0.2, 0.6))
        now = time.monotonic()
        old = [pid for pid in workers(pool.process.pid) if now - first_seen.setdefault(pid, now) >= MIN_AGE_S]
        if old:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(old), signal.SIGKILL)
                kills += 1
    made.wait(timeout=60_000)
    assert pool.terminate() == 0
    assert kills > 0
    assert runs.read_text().splitlines() == [str(MEMBERS)], "the callback ran once, given every result"
    assert made.get(timeout=0) == list(range(MEMBERS))
    assert store.broker.joined(made.callback) == {}, "the join went with the callback"
    assert store.dead_uuids() == set()
    assert store.live() == 0
