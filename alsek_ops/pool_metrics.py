"""``alsek thread-pool|process-pool ... --metrics-port N``: per-task
Prometheus metrics of one pool, counted in whichever of its processes the
event happens and served by the pool's parent process.

prometheus_client's multiprocess mode adds the processes up: each writes
its values to files in a directory of the pool's own (``PROMETHEUS_MULTIPROC_DIR``,
which must be set before prometheus_client is first imported: the CLI
creates it, sets it, and only then imports this module), the parent reads
them all at each scrape, and removes the directory when the pool exits.
Counts of a worker process that died stay counted.

Labels ``task`` and ``queue``:

* ``alsek_task_submitted_total``: messages submitted by the pool's code
  (callbacks, and what its tasks submit);
* ``alsek_task_succeeded_total``, ``alsek_task_failed_total`` (ran and
  failed for good), ``alsek_task_retried_total``, ``alsek_task_dead_total``
  (given up without running: poison, revoked, expired, unknown task),
  ``alsek_task_dead_lettered_total`` (failed or dead, and moved to the dead
  letters);
* ``alsek_task_run_seconds``: a histogram of run times;
* ``alsek_task_queue_wait_seconds``: a histogram of the time from a
  message's submission to the start of its run (a retry's includes its
  earlier attempts and backoffs).

Without labels, from the parent: ``alsek_pool_slots`` and
``alsek_pool_busy_slots``.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from alsek_core import middleware
from alsek_core.message import Message
from alsek_core.middleware import Middleware, Outcome

log = logging.getLogger(__name__)

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
LABELS = ("task", "queue")
#: Run times and waits of background jobs: milliseconds to hours.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
OUTCOME_COUNTERS = {
    "succeeded": "Messages whose run succeeded.",
    "failed": "Messages whose run failed for good (no retry left).",
    "retried": "Runs that failed and were rescheduled to run again.",
    "revoked": "Runs stopped because their message was revoked.",
    "dead": "Messages given up without running (poison, revoked, expired, unknown task).",
}


class SlotCounts(Protocol):
    """What the parent reads of its pool (``SupervisedPool``)."""

    @property
    def capacity(self) -> int: ...

    def busy_slots(self) -> int: ...


class _Tally:
    """What one (task, queue) did since the last flush."""

    __slots__ = ("counts", "runs", "waits")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.runs: list[float] = []
        self.waits: list[float] = []

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """``observe`` each of ``values``, writing each bucket once: in
    multiprocess mode every write is a locked write to a mapped file, and a
    pool observes two values per message. Reaches into the histogram's
    buckets (prometheus_client keeps them per bound, not cumulative)."""
    if not values:
        return
    bounds = histogram._upper_bounds
    hits = [0] * len(bounds)
    for value in values:
        hits[bisect.bisect_left(bounds, value)] += 1
    for bucket, n in zip(histogram._buckets, hits, strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(sum(values))


class TaskMetrics(Middleware):
    """Counts and times each message's submission and outcome in memory, and
    writes them to prometheus_client at each ``flush`` (a pool's housekeeping
    calls it about every 100 ms), so a message costs its pool a dict update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counters = {"submitted": Counter("alsek_task_submitted", "Messages submitted.", LABELS,
                                              registry=registry),
                         "dead_lettered": Counter("alsek_task_dead_lettered", "Messages moved to the dead letters.",
                                                  LABELS, registry=registry)}
        self.counters.update({state: Counter(f"alsek_task_{state}", text, LABELS, registry=registry)
                              for state, text in OUTCOME_COUNTERS.items()})
        self.run_seconds = Histogram("alsek_task_run_seconds", "Run time of a message.", LABELS,
                                     buckets=BUCKETS, registry=registry)
        self.wait_seconds = Histogram("alsek_task_queue_wait_seconds",
                                      "Time from a message's submission to the start of its run.", LABELS,
                                      buckets=BUCKETS, registry=registry)
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def _tally(self, message: Message) -> _Tally:
        key = (message.task_name, message.queue)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        return tally

    def before_submit(self, message: Message) -> None:
        with self._lock:
            self._tally(message).count("submitted")

    def after_outcome(self, message: Message, outcome: Outcome) -> None:
        with self._lock:
            tally = self._tally(message)
            tally.count(outcome.state)
            if outcome.dead_lettered:
                tally.count("dead_lettered")
            if outcome.started is not None:
                tally.waits.append(max(0.0, outcome.started - message.created_at / 1000))
                tally.runs.append(max(0.0, outcome.finished - outcome.started))

    def flush(self) -> None:
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        for labels, tally in tallies.items():
            for name, n in tally.counts.items():
                self.counters[name].labels(*labels).inc(n)
            observe_many(self.run_seconds.labels(*labels), tally.runs)
            observe_many(self.wait_seconds.labels(*labels), tally.waits)


class SlotCollector(Collector):
    def __init__(self, pool: SlotCounts) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        slots = GaugeMetricFamily("alsek_pool_slots", "Messages the pool can run at once.")
        slots.add_metric([], self.pool.capacity)
        busy = GaugeMetricFamily("alsek_pool_busy_slots", "Messages the pool is running.")
        busy.add_metric([], self.pool.busy_slots())
        yield from (slots, busy)


@contextlib.contextmanager
def serving(pool: SlotCounts, host: str, port: int) -> Iterator[int]:
    """Count in this process and in the worker processes it forks from now
    on, and serve /metrics on ``host:port`` (the port, for ``port=0``)
    until the block ends; then remove the multiprocess directory."""
    directory = os.environ.get(ENV_DIR)
    if not directory or not os.path.isdir(directory):
        raise RuntimeError(f"{ENV_DIR} must name a directory before prometheus_client is imported")
    metrics = TaskMetrics(CollectorRegistry(auto_describe=False))  # values go to the directory's files
    middleware.install(metrics)
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(SlotCollector(pool))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving the pool's Prometheus metrics on http://%s:%d/metrics", host, server.server_port)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        metrics.flush()
        middleware.uninstall(metrics)
        shutil.rmtree(directory, ignore_errors=True)

