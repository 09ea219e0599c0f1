#!/usr/bin/env python3
"""One-by-one submit (``task.generate()``) per backend, beside the floor it
cannot beat: one round trip to the same server (``backend.exists``).

Several rounds of N submits each, median reported, so a loaded machine's
noise shows as the spread; "CPU µs" is the submitting process's CPU time
per submit (its share of the 2 cores, which the load disturbs less). With ``--huey``, Huey's one-by-one enqueue on
Redis (the peer harness's ``peer_huey.enqueue_single``, ../shared/bench/peers)
in the same sitting, for the ratio the issue asks about. With ``--profile
BACKEND``, a cProfile of N submits on that backend instead (top functions by
own time), to see where the microseconds go.

Usage: python bench/submit_single.py [N] [--rounds R] [--backends redis,postgres] [--huey]
       python bench/submit_single.py [N] --profile redis
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from run import targets  # bench/run.py: the backends with a test URL, each in a fresh namespace
from versus import PEERS

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.task import Task, task

QUEUE = "submit1"


def rate(n: int, body: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Calls per second; with ``cpu``, also appends this process's CPU time per
    call (µs), which the machine's load disturbs less than the wall clock."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(n):
        body()
    if cpu is not None:
        cpu.append((time.process_time() - cpu_started) / n * 1e6)
    return n / (time.perf_counter() - started)


def noop_task(url: str) -> tuple[Broker, Task]:
    broker = Broker(backend_from_url(url))
    return broker, task(broker, name="noop", queue=QUEUE)(lambda: None)


def huey_round(n: int) -> float:
    """One round of Huey's one-by-one enqueue, by the peer harness's own code."""
    sys.path.insert(0, str(PEERS))
    import peer_huey  # the peer harness's task and enqueue loop

    peer_huey.huey.flush()
    try:
        return n / peer_huey.enqueue_single(n)
    finally:
        peer_huey.huey.flush()


def profile(url: str, n: int) -> None:
    broker, noop = noop_task(url)
    for _ in range(200):  # connections, script loading, queue registry
        noop.generate()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        noop.generate()
    profiler.disable()
    broker.purge(QUEUE)
    stats = pstats.Stats(profiler).sort_stats("tottime")
    print(f"{n} submits; per submit: {stats.total_tt / n * 1e6:.1f} µs under the profiler")  # type: ignore[attr-defined]
    stats.print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="", help="comma list (default: every registered one)")
    parser.add_argument("--huey", action="store_true", help="also Huey's one-by-one enqueue on Redis")
    parser.add_argument("--profile", default=None, metavar="BACKEND")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="alsek-submit1-")
    if args.profile:
        [(_, url)] = targets([args.profile], scratch)
        profile(url, args.n)
        return
    print(f"{'backend':<11}{'submit/s':>10}{'CPU µs':>8}{'round trip/s':>14}{'submit/rt':>11}   rounds (submit/s)")
    for name, url in targets([b for b in args.backends.split(",") if b], scratch):
        broker, noop = noop_task(url)
        backend = broker.backend
        rate(200, noop.generate)  # warm: connections, scripts, queue registry
        broker.purge(QUEUE)
        # Rounds interleaved (alsek, a bare round trip, Huey), so that the
        # machine's load swings hit each alike.
        submits, trips, hueys, cpu = [], [], [], []
        for _ in range(args.rounds):
            submits.append(rate(args.n, noop.generate, cpu))
            broker.purge(QUEUE)
            trips.append(rate(args.n, lambda b=backend: b.exists("submit1-probe")))
            if args.huey and name == "redis":
                hueys.append(huey_round(args.n))
        s, t, c = statistics.median(submits), statistics.median(trips), statistics.median(cpu)
        spread = " ".join(f"{x:,.0f}" for x in submits)
        print(f"{name:<11}{s:>10,.0f}{c:>8.1f}{t:>14,.0f}{s / t:>11.2f}   {spread}", flush=True)
        if hueys:
            h = statistics.median(hueys)
            print(f"{'huey-redis':<11}{h:>10,.0f}{'':>33}   {' '.join(f'{x:,.0f}' for x in hueys)}")
            print(f"alsek redis submit / huey enqueue = {s / h:.2f}x")

if __name__ == "__main__":
    main()
