"""What a unique key costs a submit, per backend: one-by-one submits of
plain messages, of unique ones (each its own key), and of duplicates (the
key held: nothing queued), through ``Backend.submit`` / ``submit_unique``.

    python bench/unique_submit.py [--n 500] [--backends diskcache,redis,postgres,memory]

Each backend runs in a namespace of its own, removed afterwards; memory is
the five-method path (the generic queue on a dict).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid as uuid_lib
from collections.abc import Callable

from alsek_core.clock import now_ms
from alsek_core.config import backend_from_url
from alsek_core.plugins import plugin_host
from alsek_core.ports import Backend, Envelope
from alsek_core.testing.contract.fixtures import wipe

QUEUE = "bench"
PAYLOAD = b'{"task":"bench.add","args":[1,2],"kwargs":{}}'


def envelope() -> Envelope:
    return Envelope(QUEUE, uuid_lib.uuid4().hex, 0, now_ms(), PAYLOAD)


def rate(n: int, submit: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(n):
        submit(i)
    return n / (time.perf_counter() - started)


def measure(backend: Backend, n: int) -> tuple[float, float, float]:
    plain = rate(n, lambda i: backend.submit([envelope()]))
    unique = rate(n, lambda i: backend.submit_unique(envelope(), f"k{i}", None))
    duplicate = rate(n, lambda i: backend.submit_unique(envelope(), "k0", None))
    return plain, unique, duplicate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--backends", default="diskcache,redis,postgres,memory")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="alsek-bench-unique-")
    print(f"{'backend':<12} {'plain/s':>10} {'unique/s':>10} {'duplicate/s':>12}")
    for name in args.backends.split(","):
        spec = plugin_host().registry.backends[name][0]
        assert spec.test_url is not None
        url = spec.test_url(scratch)
        url = f"{url}{'&' if '?' in url else '?'}namespace=bench-unique-{uuid_lib.uuid4().hex[:8]}"
        backend = backend_from_url(url)
        try:
            plain, unique, duplicate = measure(backend, args.n)
        finally:
            wipe(backend)
        print(f"{name:<12} {plain:>10.0f} {unique:>10.0f} {duplicate:>12.0f}")


if __name__ == "__main__":
    main()
