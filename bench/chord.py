#!/usr/bin/env python3
"""What a chord costs, per backend (for the lead; nothing asserted).

For each registered backend with a test URL that answers: the time a pool
(``alsek process-pool bench/bench_tasks.py --n_processes 2``, started by the
CLI as a user would) takes from its spawn to run N plain no-op tasks, then a
chord of N no-op members and one callback (until the callback has settled);
the per-member overhead of the chord is the difference over N. The members
keep no result: each one's outcome travels in its chord's join.

Usage: python bench/chord.py [N] [--backends diskcache,redis,postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

from run import Bench, stop, targets

from alsek_core.chord import chord
from alsek_core.task import Task, task

KIND = "process-p2"


def plain(bench: Bench, n: int, timeout: float, log: Any) -> float:
    bench.broker.submit_many([bench.noop.generate(submit=False) for _ in range(n)])
    spawned = time.perf_counter()
    pool = bench.pool(KIND, log)
    try:
        while bench.live() > 0:
            if time.perf_counter() - spawned > timeout or pool.poll() is not None:
                raise RuntimeError(f"plain run stopped with {bench.live()} left")
            time.sleep(0.005)
        return time.perf_counter() - spawned
    finally:
        stop(pool)
        bench.clear()


def chorded(bench: Bench, gathered: Task, n: int, timeout: float, log: Any) -> float:
    made = chord([bench.noop.generate(submit=False) for _ in range(n)], gathered.generate(submit=False))
    spawned = time.perf_counter()
    pool = bench.pool(KIND, log)
    try:
        made.wait(timeout=int(timeout * 1000))
        took = time.perf_counter() - spawned
        given = made.get(timeout=0)
        if given != n:
            raise RuntimeError(f"the callback was given {given} results, not {n}")
        return took
    finally:
        stop(pool)
        bench.clear()


def measure(name: str, url: str, n: int, timeout: float, logdir: str) -> dict[str, Any]:
    row: dict[str, Any] = {"backend": name, "n": n}
    bench = Bench(url)
    gathered = task(bench.broker, name="gathered", queue="bench", result_store=bench.results)(lambda: None)
    try:
        bench.backend.exists("bench-probe")
    except Exception as exc:
        row["status"] = f"unavailable: {type(exc).__name__}"
        return row
    if name == "memory":
        row["status"] = "left out: its storage lives in one process, and pools run in several"
        return row
    with open(os.path.join(logdir, f"{name}.log"), "w") as log:
        bench.clear()
        row["plain_s"] = plain(bench, n, timeout, log)
        row["chord_s"] = chorded(bench, gathered, n, timeout, log)
        row["overhead_per_member_ms"] = (row["chord_s"] - row["plain_s"]) / n * 1000
        row["status"] = "ok"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--backends", default="", help="comma-separated names (default: all answering)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alsek-chord-bench-") as scratch:
        rows = [measure(name, url, args.n, args.timeout, scratch)
                for name, url in targets([b for b in args.backends.split(",") if b], scratch)]
    print(f"{'backend':<10} {'plain s':>9} {'chord s':>9} {'overhead ms/member':>19}  (N={args.n}, {KIND})")
    for row in rows:
        if row["status"] != "ok":
            print(f"{row['backend']:<10} {row['status']}")
            continue
        print(f"{row['backend']:<10} {row['plain_s']:>9.2f} {row['chord_s']:>9.2f} "
              f"{row['overhead_per_member_ms']:>19.3f}")
    print(json.dumps(rows, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
