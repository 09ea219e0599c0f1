#!/usr/bin/env python3
"""How long revoking a running message takes to stop it, per backend and pool
kind (for the lead; nothing asserted).

A pool started by the CLI as a user would (``alsek thread-pool
bench/bench_tasks.py`` / ``alsek process-pool ...``) runs one 30 s task at a
time, otherwise idle. Once its status reads RUNNING, the message is revoked
(``revocation.revoke`` with its status tracker, as ``task.revoke`` does) and
the clock runs from that call until the status reads REVOKED (waited for with
``StatusTracker.wait_for``, woken by the backend's push where it has one).
That includes the revoke's own ~200 ms wait (``VIEW_MS``) whenever the pool
is faster than it.

Rows: ``doze`` sleeps in short steps (Python code: a thread pool raises
RevokedError in its thread); ``block`` is one ``time.sleep(30)`` (blocked in C:
a thread pool only stops it by stopping its process, after
``REVOKED_THREAD_GRACE_S``).

Usage: python bench/revoke_latency.py [--samples 20] [--backends diskcache,redis,postgres]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuid_lib
from pathlib import Path

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.revocation import revoke
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.testing.contract.fixtures import wipe

HERE = Path(__file__).resolve().parent
TASKS = str(HERE / "bench_tasks.py")
QUEUE = "bench"
POOLS = {
    "thread": ["thread-pool", "--n_threads", "2", "--n_processes", "1"],
    "process": ["process-pool", "--n_processes", "1"],
}
ROWS = [("thread", "doze"), ("thread", "block"), ("process", "doze")]


def url_of(name: str, scratch: str) -> str:
    specs = {spec.name: spec for spec, _ in plugin_host().registry.backends.values()}
    test_url = specs[name].test_url
    assert test_url is not None, f"{name} has no test URL"
    url = test_url(scratch)
    return f"{url}{'&' if '?' in url else '?'}namespace=bench-revoke-{uuid_lib.uuid4().hex[:8]}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str, kind: str, task_name: str, samples: int, log: Path) -> list[float]:
    backend = backend_from_url(url)
    broker, tracker = Broker(backend), StatusTracker(backend)
    argv = [sys.executable, "-m", "alsek_cli", *POOLS[kind], TASKS, "--backend", url, "--log-level", "warning"]
    with log.open("ab") as out:
        pool = subprocess.Popen(argv, cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    took = []
    try:
        for _ in range(samples):
            message = broker.submit(Message(task_name, queue=QUEUE, args=[30], mechanism="thread", timeout=120_000))
            tracker.wait_for(message, TaskStatus.RUNNING, timeout=60, poll_interval=0.005)
            time.sleep(0.3)  # idle otherwise: nothing else in flight
            started = time.perf_counter()
            revoke(broker, message, tracker)
            tracker.wait_for(message, TaskStatus.REVOKED, timeout=60, poll_interval=0.005)
            took.append(time.perf_counter() - started)
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(60)
        wipe(backend)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--backends", default="diskcache,redis,postgres")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="alsek-revoke-bench-")
    log = Path(scratch) / "pools.log"
    print(f"{'backend':<10} {'pool':<8} {'task':<6} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in args.backends.split(","):
        for kind, task_name in ROWS:
            took = measure(url_of(name, scratch), kind, task_name, args.samples, log)
            ms = [t * 1000 for t in took]
            print(f"{name:<10} {kind:<8} {task_name:<6} {len(ms):>3} {statistics.median(ms):>8.0f} "
                  f"{percentile(ms, 0.99):>8.0f} {max(ms):>8.0f}", flush=True)
    print(f"pool logs: {log}")


if __name__ == "__main__":
    main()
