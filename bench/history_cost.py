#!/usr/bin/env python3
"""What the job history costs per finished message, apart from everything
else a pool does (not a test; nothing asserted): ``N`` outcomes recorded on
a batching broker as a pool records them (``Broker.record_finished``), and
written every ``--batch`` entries as a pool's flush writes them. Reported
per entry: the CPU time of this process (making, batching, encoding and
sending the entries) and the Redis server's (``INFO cpu``; other users of
the same server count too). Run it from a source tree to measure that
tree's code (``cd OTHER_TREE && python bench/history_cost.py``), so two
versions can be compared in one sitting.

Usage: python bench/history_cost.py [N] [--batch B] [--rounds R] [--url redis://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's code, not the installed one

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.middleware import Outcome


def redis_cpu(broker: Broker) -> float:
    info = broker.backend.conn.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def one_round(url: str, n: int, batch: int) -> tuple[float, float]:
    """(this process's µs, Redis's µs) per entry."""
    broker = Broker(backend_from_url(url)).batching()
    broker.worker = "bench-host-12345/0"
    messages = [Message("noop", queue="bench") for _ in range(n)]
    now = time.time()
    outcome = Outcome("succeeded", now, now, 1)
    server, process = redis_cpu(broker), time.process_time()
    for i, message in enumerate(messages, 1):
        broker.record_finished(message, outcome)
        if i % batch == 0:
            broker.flush_history()
    broker.flush_history()
    process, server = time.process_time() - process, redis_cpu(broker) - server
    return process / n * 1e6, server / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=20_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    url = f"{args.url}{'&' if '?' in args.url else '?'}namespace=bench-history-{uuid.uuid4().hex[:8]}"
    runs = []
    try:
        for _ in range(args.rounds):
            runs.append(one_round(url, args.n, args.batch))
    finally:
        backend_from_url(url).clear_namespace(raise_on_error=False)
    client, server = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"batch {args.batch}: per entry, median of {args.rounds}: this process {client:.1f} µs, Redis {server:.1f} µs"
          f" (rounds: {', '.join(f'{c:.1f}+{s:.1f}' for c, s in runs)})")


if __name__ == "__main__":
    main()
