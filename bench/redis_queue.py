"""Port-level throughput of the Redis adapter: how fast the queue itself is,
before the broker, serializer or worker pool add their share.

    python bench/redis_queue.py [--n 20000] [--url redis://127.0.0.1:6379/1]

Prints one-by-one and batch submit rates, the claim+ack drain rate of two
processes claiming in batches, and the round-trip latency of a claim.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import uuid as uuid_lib
from typing import Any

from alsek_backends.redis.backend import RedisBackend
from alsek_core.clock import now_ms
from alsek_core.ports import Envelope

QUEUE = "bench"
BATCH = 1000
CLAIM_BATCH = 100
LEASE = 60_000
PAYLOAD = b'{"task":"bench.add","args":[1,2],"kwargs":{}}'


def envelopes(n: int) -> list[Envelope]:
    now = now_ms()
    return [Envelope(QUEUE, uuid_lib.uuid4().hex, 0, now, PAYLOAD) for _ in range(n)]


def submit_one_by_one(backend: RedisBackend, n: int) -> float:
    envs = envelopes(n)
    started = time.perf_counter()
    for env in envs:
        backend.submit([env])
    return n / (time.perf_counter() - started)


def submit_batches(backend: RedisBackend, n: int) -> float:
    envs = envelopes(n)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        backend.submit(envs[start : start + BATCH])
    return n / (time.perf_counter() - started)


def _drain(backend: RedisBackend, barrier: Any, out: Any) -> None:
    barrier.wait()
    done = 0
    while batch := backend.claim([QUEUE], CLAIM_BATCH, LEASE):
        for delivery in batch:
            backend.ack(QUEUE, delivery.uuid)
        done += len(batch)
    out.put((done, time.time()))


def drain(backend: RedisBackend, n: int, workers: int = 2) -> float:
    envs = envelopes(n)
    for start in range(0, n, BATCH):
        backend.submit(envs[start : start + BATCH])
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    processes = [ctx.Process(target=_drain, args=(backend, barrier, out)) for _ in range(workers)]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.time()
    results = [out.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    done = sum(count for count, _ in results)
    assert done == n, f"drained {done} of {n}"
    return n / (max(end for _, end in results) - started)


def claim_latency(backend: RedisBackend, samples: int) -> tuple[float, float]:
    """Median and 99th percentile (µs) of claim(limit=1) on a non-empty queue."""
    backend.submit(envelopes(samples))
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        [delivery] = backend.claim([QUEUE], 1, LEASE)
        times.append((time.perf_counter() - started) * 1e6)
        backend.ack(QUEUE, delivery.uuid)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument(
        "--url", default=os.environ.get("ALSEK_TEST_REDIS_URL") or "redis://127.0.0.1:6379/1"
    )
    args = parser.parse_args()
    backend = RedisBackend(args.url, namespace=f"bench-{uuid_lib.uuid4().hex[:8]}")
    try:
        print(f"Redis port-level benchmark, N={args.n}, {backend.where}")
        print(f"  submit one by one      {submit_one_by_one(backend, args.n):>10,.0f} msg/s")
        backend.purge(QUEUE)
        print(f"  submit batches of {BATCH}  {submit_batches(backend, args.n):>10,.0f} msg/s")
        backend.purge(QUEUE)
        rate = drain(backend, args.n)
        print(f"  claim+ack, 2 processes {rate:>10,.0f} msg/s  (claims of {CLAIM_BATCH})")
        p50, p99 = claim_latency(backend, min(args.n, 5_000))
        print(f"  claim round trip       {p50:>10,.0f} µs median, {p99:,.0f} µs p99")
    finally:
        backend.purge(QUEUE)
        backend.close()


if __name__ == "__main__":
    main()
