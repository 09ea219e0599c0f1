#!/usr/bin/env python3
"""What operating a pool costs (not a test; nothing asserted): the drain rate
of N no-op tasks on Redis by a process pool (``alsek process-pool
bench/bench_tasks.py --n_processes 2``), with the job history and the pool's
Prometheus metrics (``--metrics-port``) on, against both off
(``ALSEK_BENCH_HISTORY=off``, no metrics port), and each alone (``--modes``). Rounds alternate off / on so
that both see the same load; each figure is the steady rate, counted from
the first message done to the last. On a machine shared with other work the
wall-clock rates swing widely, so each drain's CPU time is also measured
over that same window: the pool's processes (user + system, read from
``/proc``; start-up left out, which would add tens of µs per message to a
20,000-message drain and swing with the load) and the Redis server's
(``INFO cpu``; other users of the same server count too), in
microseconds per message.

Usage: python bench/ops_cost.py [N] [--rounds R] [--modes off,history,metrics,on] [--url redis://...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message

HERE = Path(__file__).resolve().parent
TASKS = str(HERE / "bench_tasks.py")
QUEUE = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: What each mode turns on: (job history, metrics).
MODES = {"off": (False, False), "history": (True, False), "metrics": (False, True), "on": (True, True)}


def redis_cpu(broker: Broker) -> float:
    info = broker.backend.conn.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and every
    process below it that is still running."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            pending += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it just ended
        total += (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
    return total


def drain(url: str, n: int, mode: str, log: object) -> dict[str, float]:
    """Steady drain/s of ``n`` no-op messages, and CPU µs per message (pool, Redis)."""
    broker = Broker(backend_from_url(url))
    for start in range(0, n, 5000):
        broker.submit_many(Message("noop", queue=QUEUE) for _ in range(min(5000, n - start)))
    argv = [sys.executable, "-m", "alsek_cli", "process-pool", TASKS, "--backend", url, "--n_processes", "2",
            "--log-level", "warning"]
    env = dict(os.environ)
    history, metrics = MODES[mode]
    if metrics:
        argv += ["--metrics-port", str(free_port())]
    if not history:
        env["ALSEK_BENCH_HISTORY"] = "off"
    pool = subprocess.Popen(argv, cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT, env=env)  # type: ignore[arg-type]
    first = first_left = None
    pool_cpu = server_cpu = 0.0
    try:
        while (live := sum(getattr(broker.counts(QUEUE), s) for s in ("ready", "delayed", "in_flight"))) > 0:
            if first is None and live < n:
                first, first_left = time.perf_counter(), live
                pool_cpu, server_cpu = tree_cpu(pool.pid), redis_cpu(broker)
            if pool.poll() is not None:
                raise RuntimeError(f"the pool exited with {pool.returncode}")
            time.sleep(0.005)
        ended = time.perf_counter()
        pool_cpu, server_cpu = tree_cpu(pool.pid) - pool_cpu, redis_cpu(broker) - server_cpu
    finally:
        pool.terminate()
        pool.wait(60)
    assert first is not None and first_left is not None
    return {"drain_per_s": first_left / (ended - first), "pool_cpu_us": pool_cpu / first_left * 1e6,
            "redis_cpu_us": server_cpu / first_left * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--modes", default="off,on", help=f"comma separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    url = f"{args.url}{'&' if '?' in args.url else '?'}namespace=bench-ops-{uuid.uuid4().hex[:8]}"
    modes = args.modes.split(",")
    figures: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.NamedTemporaryFile("w+", prefix="alsek-ops-cost-", suffix=".log") as log:
        try:
            for _ in range(args.rounds):
                for mode in modes:
                    figures[mode].append(drain(url, args.n, mode, log))
                    got = figures[mode][-1]
                    print(f"{mode:>8}: {got['drain_per_s']:,.0f}/s, CPU per message: pool {got['pool_cpu_us']:.0f} µs,"
                          f" Redis {got['redis_cpu_us']:.0f} µs", flush=True)
        finally:
            backend_from_url(url).clear_namespace(raise_on_error=False)
    medians = {mode: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
               for mode, runs in figures.items()}
    for mode, median in medians.items():
        line = (f"median {mode:>8}: {median['drain_per_s']:,.0f}/s, pool {median['pool_cpu_us']:.0f} µs,"
                f" Redis {median['redis_cpu_us']:.0f} µs per message")
        if mode != "off" and "off" in medians:
            off = medians["off"]
            cpu = (off["pool_cpu_us"] + off["redis_cpu_us"]) / (median["pool_cpu_us"] + median["redis_cpu_us"])
            line += f"; drain {median['drain_per_s'] / off['drain_per_s']:.1%} of off, CPU-bound rate {cpu:.1%} of off"
        print(line)
    print(json.dumps({"n": args.n, "figures": figures, "medians": medians}))


if __name__ == "__main__":
    main()
