#!/usr/bin/env python3
"""``Broker.submit_many`` of N messages on PostgreSQL, in a few rounds (median),
split into the time spent building the envelopes (Python) and in the backend's
``submit`` (parameters, the statement, the commit), so a change to either
shows on its own.

Usage: python bench/submit_batch_pg.py [N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from run import targets  # bench/run.py: the backends with a test URL, each in a fresh namespace

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.task import task

QUEUE = "batch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    [(_, url)] = targets(["postgres"], tempfile.mkdtemp(prefix="alsek-batch-"))
    broker = Broker(backend_from_url(url))
    noop = task(broker, name="noop", queue=QUEUE)(lambda: None)
    broker.submit_many([noop.generate(submit=False) for _ in range(100)])  # warm
    broker.purge(QUEUE)
    totals, encodes, submits = [], [], []
    for _ in range(args.rounds):
        messages = [noop.generate(submit=False) for _ in range(args.n)]
        started = time.perf_counter()
        envelopes = [broker.envelope(m) for m in messages]
        encoded = time.perf_counter()
        added = broker.backend.submit(envelopes)
        ended = time.perf_counter()
        assert added == args.n, added
        broker.purge(QUEUE)
        messages = [noop.generate(submit=False) for _ in range(args.n)]
        started_many = time.perf_counter()
        broker.submit_many(messages)
        totals.append(args.n / (time.perf_counter() - started_many))
        broker.purge(QUEUE)
        encodes.append(encoded - started)
        submits.append(ended - encoded)
    print(f"postgres submit_many of {args.n:,}: {statistics.median(totals):,.0f} msgs/s "
          f"(rounds {' '.join(f'{x:,.0f}' for x in totals)}); of one batch: envelopes "
          f"{statistics.median(encodes) * 1000:.0f} ms, backend.submit {statistics.median(submits) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
