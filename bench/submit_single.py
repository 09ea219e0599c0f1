#!/usr/bin/env python3
"""One-by-one submit (``task.generate()``) per backend, beside the floor it
cannot beat: one round trip to the same server (``backend.exists``).

Several rounds of N submits each, median reported, so a loaded machine's
noise shows as the spread. With ``--huey``, Huey's one-by-one enqueue on
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


def rate(n: int, body: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        body()
    return n / (time.perf_counter() - started)


def rounds(r: int, n: int, body: Callable[[], object], after: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(r):
        out.append(rate(n, body))
        after()
    return out


def noop_task(url: str) -> tuple[Broker, Task]:
    broker = Broker(backend_from_url(url))
    return broker, task(broker, name="noop", queue=QUEUE)(lambda: None)


def huey_rates(r: int, n: int) -> list[float]:
    sys.path.insert(0, str(PEERS))
    import peer_huey  # the peer harness's own task and enqueue loop

    peer_huey.huey.flush()
    out = []
    for _ in range(r):
        out.append(n / peer_huey.enqueue_single(n))
        peer_huey.huey.flush()
    return out


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
    redis_rate = None
    print(f"{'backend':<11}{'submit/s':>10}{'round trip/s':>14}{'submit/rt':>11}   rounds (submit/s)")
    for name, url in targets([b for b in args.backends.split(",") if b], scratch):
        broker, noop = noop_task(url)
        backend = broker.backend
        rate(200, noop.generate)  # warm: connections, scripts, queue registry
        broker.purge(QUEUE)
        submits = rounds(args.rounds, args.n, noop.generate, lambda b=broker: b.purge(QUEUE))
        trips = rounds(args.rounds, args.n, lambda b=backend: b.exists("submit1-probe"), lambda: None)
        s, t = statistics.median(submits), statistics.median(trips)
        print(f"{name:<11}{s:>10,.0f}{t:>14,.0f}{s / t:>11.2f}   {' '.join(f'{x:,.0f}' for x in submits)}",
              flush=True)
        if name == "redis":
            redis_rate = s
    if args.huey:
        hueys = huey_rates(args.rounds, args.n)
        h = statistics.median(hueys)
        print(f"{'huey-redis':<11}{h:>10,.0f}{'':>25}   {' '.join(f'{x:,.0f}' for x in hueys)}")
        if redis_rate is not None:
            print(f"alsek redis submit / huey enqueue = {redis_rate / h:.2f}x")


if __name__ == "__main__":
    main()
