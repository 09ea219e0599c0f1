"""What a limited message costs: the round trips of the limit operations on
each backend, one client, before any worker pool adds its share.

    python bench/limits.py [--seconds 2] [--redis redis://127.0.0.1:6379/0]
                           [--postgres postgresql://postgres@127.0.0.1:5432/postgres?schema=alsek_bench_limits]

Prints, per backend, how many ``take_token`` calls and ``acquire_slot`` +
``release_slot`` pairs one client makes per second. The PostgreSQL schema is
migrated first (as ``alsek db init`` does); its rows are left there.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable

from alsek_backends.postgres import schema
from alsek_core.config import backend_from_url
from alsek_core.ports import Backend


def per_second(seconds: float, step: Callable[[int], object]) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step(done)
        done += 1
    return done / (time.perf_counter() - started)


def measure(name: str, backend: Backend, seconds: float) -> None:
    # A huge rate: every call takes a token at once, so this is the call alone.
    tokens = per_second(seconds, lambda i: backend.take_token("bench", 1e9, 1))

    def slot(i: int) -> None:
        backend.acquire_slot("bench", str(i), 2, 30_000)
        backend.release_slot("bench", str(i))

    slots = per_second(seconds, slot)
    print(f"{name:12s} take_token {tokens:8.0f}/s   acquire+release {slots:8.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres",
                        default="postgresql://postgres@127.0.0.1:5432/postgres?schema=alsek_bench_limits")
    args = parser.parse_args()
    namespace = f"bench-limits-{uuid.uuid4().hex[:8]}"
    urls = {
        "memory": "memory://bench",
        "diskcache": f"sqlite:///{tempfile.mkdtemp(prefix='alsek-bench-')}",
        "redis": args.redis,
        "postgres": args.postgres,
    }
    for name, url in urls.items():
        try:
            if name == "postgres":
                conn, schema_name = schema.connect(url)
                with conn:
                    schema.init(conn, schema_name)
            backend = backend_from_url(url, namespace=namespace)
            backend.exists("probe")
        except Exception as exc:
            print(f"{name:12s} skipped: {type(exc).__name__}: {exc}")
            continue
        measure(name, backend, args.seconds)
        backend.close()


if __name__ == "__main__":
    main()
