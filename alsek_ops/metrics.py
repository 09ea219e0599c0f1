"""``alsek metrics``: Prometheus gauges for a whole backend, read at each
scrape (nothing is cached, so two exporters never disagree).

Per queue (label ``queue``): ``alsek_queue_ready``, ``alsek_queue_delayed``,
``alsek_queue_in_flight``, ``alsek_queue_dead``. Per live pool (labels
``worker``, ``host``, ``kind``): ``alsek_worker_slots``,
``alsek_worker_busy_slots``; and ``alsek_workers``, how many are live.
``alsek_backend_up`` is 0 when the backend did not answer the scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alsek_core.broker import Broker
from alsek_core.ports import Backend
from alsek_core.workers import live_workers

log = logging.getLogger(__name__)

QUEUE_GAUGES = {
    "ready": "Messages that can run now.",
    "delayed": "Messages waiting for their time (a delay, a retry's backoff).",
    "in_flight": "Messages a worker holds (running, or claimed to run next).",
    "dead": "Dead letters: messages that failed for good.",
}


class BackendCollector(Collector):
    def __init__(self, backend: Backend) -> None:
        self.broker = Broker(backend)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("alsek_backend_up", "1 if the backend answered this scrape.")
        try:
            families = list(self._read())
        except Exception as exc:
            log.warning("the backend did not answer a scrape: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        gauges = {state: GaugeMetricFamily(f"alsek_queue_{state}", text, labels=["queue"])
                  for state, text in QUEUE_GAUGES.items()}
        for queue in self.broker.queues():
            counts = self.broker.counts(queue)
            for state, gauge in gauges.items():
                gauge.add_metric([queue], getattr(counts, state))
        yield from gauges.values()
        workers = live_workers(self.broker.backend)
        labels = ["worker", "host", "kind"]
        slots = GaugeMetricFamily("alsek_worker_slots", "Messages a pool can run at once.", labels=labels)
        busy = GaugeMetricFamily("alsek_worker_busy_slots", "Messages a pool is running.", labels=labels)
        for worker in workers:
            slots.add_metric([worker.id, worker.host, worker.kind], worker.slots)
            busy.add_metric([worker.id, worker.host, worker.kind], worker.busy)
        count = GaugeMetricFamily("alsek_workers", "Live worker pools (registered, beating).")
        count.add_metric([], len(workers))
        yield from (slots, busy, count)


def serve(backend: Backend, host: str, port: int, stop: threading.Event) -> None:
    """Serve /metrics on ``host:port`` until ``stop`` is set."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackendCollector(backend))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, server.server_port)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
