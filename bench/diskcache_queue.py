"""Port-level throughput of the DiskCache/SQLite queue: ``python bench/diskcache_queue.py``.

Figures for the lead, not a test: submit one by one and in batches, a drain by
worker processes (claim batches of 32, ack each), the same drain acking a batch
in one transaction (what an ``ack_many`` port method would give), and claim
latency. Each figure runs in a fresh directory, with the backend's own
durability (WAL, synchronous=NORMAL). Context on this machine: SqliteHuey
drains about 3,800 no-op tasks/s with 2 workers.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from alsek_backends.diskcache import DiskCacheBackend
from alsek_core.clock import now_ms
from alsek_core.ports import Envelope

N = 20_000
BATCH = 1000
CLAIM_BATCH = 32
WORKERS = 2
LEASE_MS = 60_000
PAYLOAD = b"x" * 200  # about the size of a serialized message
QUEUE = "bench"


@contextmanager
def fresh_backend() -> Iterator[DiskCacheBackend]:
    directory = tempfile.mkdtemp(prefix="alsek-bench-")
    backend = DiskCacheBackend(directory, namespace="bench")
    try:
        yield backend
    finally:
        backend.close()
        shutil.rmtree(directory, ignore_errors=True)


def envelopes(n: int) -> list[Envelope]:
    now = now_ms()
    return [Envelope(QUEUE, uuid.uuid4().hex, 0, now, PAYLOAD) for _ in range(n)]


def report(label: str, count: int, seconds: float) -> None:
    print(f"{label:<52} {count / seconds:>10,.0f} msgs/s  ({count:,} in {seconds:.2f} s)")


def bench_submit_one_by_one() -> None:
    with fresh_backend() as backend:
        envs = envelopes(N)
        started = time.perf_counter()
        for env in envs:
            backend.submit([env])
        report("submit, one per call", N, time.perf_counter() - started)


def bench_submit_batches() -> None:
    with fresh_backend() as backend:
        envs = envelopes(N)
        started = time.perf_counter()
        for start in range(0, N, BATCH):
            backend.submit(envs[start : start + BATCH])
        report(f"submit, {BATCH} per call", N, time.perf_counter() - started)


def ack_each(backend: DiskCacheBackend, uuids: list[str]) -> None:
    for uuid_ in uuids:
        backend.ack(QUEUE, uuid_)


def ack_batch(backend: DiskCacheBackend, uuids: list[str]) -> None:
    """One transaction for the whole batch (``ack_many``), to measure what it buys."""
    backend.ack_many(QUEUE, uuids)


def drain_worker(backend: DiskCacheBackend, batched_ack: bool, barrier: Any, out: Any) -> None:
    """Claim and ack until a claim comes back empty (the queue was filled first)."""
    ack = ack_batch if batched_ack else ack_each
    done = 0
    barrier.wait()
    while batch := backend.claim([QUEUE], CLAIM_BATCH, LEASE_MS):
        ack(backend, [delivery.uuid for delivery in batch])
        done += len(batch)
    out.put(done)


def bench_drain(workers: int, batched_ack: bool) -> None:
    with fresh_backend() as backend:
        backend.submit(envelopes(N))
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
        procs = [
            ctx.Process(target=drain_worker, args=(backend, batched_ack, barrier, out))
            for _ in range(workers)
        ]
        for proc in procs:
            proc.start()
        barrier.wait()
        started = time.perf_counter()
        done = sum(out.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.join()
        assert done == N, f"drained {done} of {N}"
        how = "one transaction per batch" if batched_ack else "one ack per message"
        report(f"drain, {workers} proc(s), claim {CLAIM_BATCH}, {how}", N, elapsed)


def show_latency(label: str, call: Callable[[], object], times: int) -> None:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99)]
    print(f"{label:<52} p50 {p50:>7.0f} us   p99 {p99:>7.0f} us")


def bench_claim_latency() -> None:
    with fresh_backend() as backend:
        backend.submit(envelopes(N))

        def claim(limit: int) -> Callable[[], object]:
            return lambda: backend.claim([QUEUE], limit, LEASE_MS)

        show_latency("claim latency, limit 1, queue of 20k", claim(1), 2000)
        show_latency("claim latency, limit 32, queue of 18k", claim(CLAIM_BATCH), 200)
        backend.purge(QUEUE)
        show_latency("claim latency, empty queue (read only)", claim(CLAIM_BATCH), 2000)
        # Delayed messages of a better priority than every ready one: a claim
        # that walked the priority order would step over all 20k each time.
        later = now_ms() + 3_600_000
        backend.submit([Envelope(QUEUE, e.uuid, 0, later, PAYLOAD) for e in envelopes(N)])
        backend.submit([Envelope(QUEUE, e.uuid, 5, e.ready_at, PAYLOAD) for e in envelopes(200)])
        show_latency("claim latency, limit 1, behind 20k delayed", claim(1), 200)


def main() -> None:
    print(f"N = {N:,}, payload {len(PAYLOAD)} bytes, WAL + synchronous=NORMAL\n")
    bench_submit_one_by_one()
    bench_submit_batches()
    bench_drain(1, batched_ack=False)
    bench_drain(WORKERS, batched_ack=False)
    bench_drain(WORKERS, batched_ack=True)
    bench_claim_latency()


if __name__ == "__main__":
    main()
