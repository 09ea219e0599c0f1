"""One concurrency figure split into a thread pool's threads x processes.

A ThreadWorkerPool runs up to ``n_processes`` process groups of ``n_threads``
threads each, so at most ``n_threads * n_processes`` messages at once. Threads
share a process (cheap, but one GIL: right for I/O-bound tasks); processes run
in parallel on the CPUs. So a figure N becomes as many processes as there are
CPUs (never more than N), each with enough threads that the product reaches N.
A ProcessWorkerPool needs no split: N is its ``n_processes``.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple


class Concurrency(NamedTuple):
    n_processes: int
    n_threads: int

    @property
    def total(self) -> int:
        return self.n_processes * self.n_threads


def split_concurrency(n: int, cpus: int | None = None) -> Concurrency:
    """``n`` concurrent messages as (processes, threads per process): processes
    up to the CPU count, threads rounded up, and no process group more than
    needed, so the total is ``n`` or just above it when ``n`` does not divide."""
    if n < 1:
        raise ValueError(f"concurrency must be at least 1, got {n}")
    processes = min(n, max(1, cpus if cpus is not None else os.cpu_count() or 1))
    threads = math.ceil(n / processes)
    return Concurrency(math.ceil(n / threads), threads)
