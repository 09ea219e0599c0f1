#!/usr/bin/env python3
"""What operating a pool costs (not a test; nothing asserted): the drain rate
of N no-op tasks on Redis by a process pool (``alsek process-pool
bench/bench_tasks.py --n_processes 2``), with the job history and the pool's
Prometheus metrics (``--metrics-port``) on, against both off
(``ALSEK_BENCH_HISTORY=off``, no metrics port), and each alone (``--modes``). Rounds alternate off / on so
that both see the same load; each figure is the steady rate, counted from
the first message done to the last.

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: What each mode turns on: (job history, metrics).
MODES = {"off": (False, False), "history": (True, False), "metrics": (False, True), "on": (True, True)}


def drain(url: str, n: int, mode: str, log: object) -> float:
    """Steady drain/s of ``n`` no-op messages."""
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
    try:
        while (live := sum(getattr(broker.counts(QUEUE), s) for s in ("ready", "delayed", "in_flight"))) > 0:
            if first is None and live < n:
                first, first_left = time.perf_counter(), live
            if pool.poll() is not None:
                raise RuntimeError(f"the pool exited with {pool.returncode}")
            time.sleep(0.005)
        ended = time.perf_counter()
    finally:
        pool.terminate()
        pool.wait(60)
    assert first is not None and first_left is not None
    return first_left / (ended - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--modes", default="off,on", help=f"comma separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    url = f"{args.url}{'&' if '?' in args.url else '?'}namespace=bench-ops-{uuid.uuid4().hex[:8]}"
    modes = args.modes.split(",")
    figures: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.NamedTemporaryFile("w+", prefix="alsek-ops-cost-", suffix=".log") as log:
        try:
            for _ in range(args.rounds):
                for mode in modes:
                    figures[mode].append(drain(url, args.n, mode, log))
                    print(f"{mode:>3}: {figures[mode][-1]:,.0f}/s", flush=True)
        finally:
            backend_from_url(url).clear_namespace(raise_on_error=False)
    medians = {mode: statistics.median(rates) for mode, rates in figures.items()}
    print("median " + ", ".join(f"{mode} {rate:,.0f}/s" for mode, rate in medians.items()))
    if "off" in medians:
        print(", ".join(f"{mode}/off = {rate / medians['off']:.1%}" for mode, rate in medians.items() if mode != "off"))
    print(json.dumps({"n": args.n, "figures": figures, "medians": medians}))


if __name__ == "__main__":
    main()
