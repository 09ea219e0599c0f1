"""Port-level throughput of the PostgreSQL queue: ``python bench/postgres_queue.py``.

Figures for the lead, not a test: submit one by one and in batches, a drain by
two worker processes (claim one or a batch, ack each), and claim latency with
an empty table against one next to 1,000,000 finished rows (dead letters, made
by one INSERT ... SELECT generate_series; acked messages leave no row at all)
and next to 1,000,000 delayed ones. Runs in its own schema, ``alsek_bench``,
dropped at the end. Server: ``ALSEK_TEST_POSTGRES_URL`` or the local default.
Context on this machine: procrastinate drains a few hundred to ~1-2k jobs/s
with 2 workers.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.backend import PostgresBackend
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema
from alsek_core.clock import now_ms
from alsek_core.ports import Envelope

SERVER = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)
SCHEMA = "alsek_bench"
URL = with_schema(SERVER, SCHEMA)
N = 20_000
ONE_BY_ONE = 5_000
BATCH = 1000
WORKERS = 2
LEASE_MS = 60_000
PAYLOAD = b"x" * 200  # about the size of a serialized message
QUEUE = "bench"
ROWS = 1_000_000


def admin(sql: str, params: Any = None) -> None:
    conn, _ = schema_lib.connect(SERVER)
    with conn:
        conn.execute(sql, params)


def reset_schema() -> None:
    admin(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn, _ = schema_lib.connect(SERVER)
    with conn:
        schema_lib.init(conn, SCHEMA)


def backend(namespace: str) -> PostgresBackend:
    return PostgresBackend(URL, namespace=namespace)


def envelopes(n: int, delay: int = 0) -> list[Envelope]:
    ready = now_ms() + delay
    return [Envelope(QUEUE, uuid.uuid4().hex, 0, ready, PAYLOAD) for _ in range(n)]


def report(label: str, count: int, seconds: float) -> None:
    print(f"{label:<56} {count / seconds:>10,.0f} msgs/s  ({count:,} in {seconds:.2f} s)")


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def bench_submit_one_by_one() -> None:
    b = backend("submit-one")
    envs = envelopes(ONE_BY_ONE)
    report("submit, one envelope per call", len(envs), timed(lambda: [b.submit([e]) for e in envs]))
    b.close()


def bench_submit_batches() -> None:
    b = backend("submit-batch")
    envs = envelopes(N)
    batches = [envs[i : i + BATCH] for i in range(0, N, BATCH)]
    report(f"submit, batches of {BATCH}", N, timed(lambda: [b.submit(x) for x in batches]))
    b.close()


def _drain(namespace: str, limit: int, barrier: Any, out: Any) -> None:
    b = backend(namespace)
    b.exists("warm-up")  # connect and check the schema before the clock starts
    barrier.wait()
    done = 0
    while batch := b.claim([QUEUE], limit, LEASE_MS, wait_ms=200):
        for delivery in batch:
            b.ack(delivery.queue, delivery.uuid)
        done += len(batch)
    out.put((done, time.perf_counter()))
    b.close()


def bench_drain(limit: int) -> None:
    namespace = f"drain-{limit}"
    b = backend(namespace)
    for _ in range(0, N, BATCH):
        b.submit(envelopes(BATCH))
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(WORKERS + 1), ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(namespace, limit, barrier, out)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    total = sum(done for done, _ in results)
    # each worker's last claim waited 200 ms for more work: not drain time
    seconds = max(end for _, end in results) - started - 0.2
    assert total == N, f"drained {total} of {N}"
    report(f"drain, {WORKERS} processes, claim {limit} + ack each", total, seconds)
    b.close()


def claim_latency(b: PostgresBackend, rounds: int = 2000) -> tuple[float, float]:
    """(median, p99) ms of claiming one ready message (one waits in the queue)."""
    samples = []
    for env in envelopes(rounds):
        b.submit([env])
        started = time.perf_counter()
        [delivery] = b.claim([QUEUE], 1, LEASE_MS)
        samples.append((time.perf_counter() - started) * 1000)
        b.ack(delivery.queue, delivery.uuid)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def print_latency(label: str, b: PostgresBackend) -> None:
    median, p99 = claim_latency(b)
    counts = timed(lambda: b.counts(QUEUE)) * 1000
    names = timed(b.queue_names) * 1000
    print(
        f"{label:<56} claim p50 {median:.3f} ms  p99 {p99:.3f} ms"
        f"  | counts() {counts:.1f} ms  queue_names() {names:.1f} ms"
    )


def bench_claim_latency() -> None:
    b = backend("latency")
    print_latency("claim latency, empty table", b)
    admin(
        f"""INSERT INTO {SCHEMA}.dead_letters
            (namespace, queue, uuid, priority, ready_at, dead_at, payload)
            SELECT 'latency', %s, 'dead-' || i, 0, 0, 0, %s FROM generate_series(1, %s) AS i""",
        [QUEUE, PAYLOAD, ROWS],
    )
    admin(f"ANALYZE {SCHEMA}.dead_letters")
    print_latency(f"claim latency, {ROWS:,} dead letters in the queue", b)
    admin(
        f"""INSERT INTO {SCHEMA}.messages
            (namespace, queue, uuid, priority, ready_at, waiting, payload)
            SELECT 'latency', %s, 'later-' || i, 0, %s, true, %s FROM generate_series(1, %s) AS i""",
        [QUEUE, now_ms() + 86_400_000, PAYLOAD, ROWS],
    )
    admin(f"ANALYZE {SCHEMA}.messages")
    print_latency(f"claim latency, + {ROWS:,} delayed messages ahead", b)
    b.close()


def main() -> None:
    reset_schema()
    try:
        bench_submit_one_by_one()
        bench_submit_batches()
        bench_drain(1)
        bench_drain(32)
        bench_claim_latency()
    finally:
        admin(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
