"""``alsek metrics`` scraped over HTTP as Prometheus would, on every
registered backend that several processes can share."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.workers import Heartbeat
from alsek_ops.metrics import BackendCollector
from tests.five_method import DictBackend
from tests.integration.pool_harness import (
    ROOT,
    Store,
    registered_backends,
    scratch,  # noqa: F401 - a fixture
    store,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def exporter(store: Store) -> Iterator[str]:  # noqa: F811
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "alsek_cli", "metrics", "--port", str(port),
                                "--backend", store.url], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the exporter did not start: {process.communicate()[0]}")
            time.sleep(0.1)
    yield url
    process.terminate()
    assert process.wait(30) == 0, process.communicate()[0]
    assert process.stdout is not None
    process.stdout.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_collector_on_a_five_method_backend() -> None:
    """The five-method backend lives in one process, so the exporter cannot run
    beside it in a subprocess: its collector is read here instead."""
    backend = DictBackend(store=uuid.uuid4().hex)
    Broker(backend).submit(Message("t", queue="solo"))
    beat = Heartbeat(backend, "TestPool", ["solo"], slots=3, busy=lambda: 1)
    beat.beat()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackendCollector(backend))
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in text_string_to_metric_families(generate_latest(registry).decode())
           for s in family.samples}
    assert got[("alsek_queue_ready", (("queue", "solo"),))] == 1 and got[("alsek_workers", ())] == 1
    assert got[("alsek_worker_busy_slots", (("host", socket.gethostname()), ("kind", "TestPool"),
                                            ("worker", beat.id)))] == 1


@pytest.mark.parametrize("store", registered_backends(), indirect=True)
def test_scrape_shows_queues_and_workers(store: Store, exporter: str) -> None:  # noqa: F811
    for i in range(3):
        store.broker.submit(Message("t", queue="alpha", args=(i,)))
    store.broker.submit(Message("t", queue="beta", delay=3_600_000))
    store.broker.claim(["beta", "alpha"], 1, lease_ms=60_000)  # beta's one is not due: alpha's
    store.broker.submit(Message("t", queue="beta"))
    (to_fail,) = store.broker.claim(["beta"], 1, lease_ms=60_000)
    failed = store.broker.decode(to_fail.payload)
    failed.delivery = to_fail
    store.broker.fail(failed, ValueError("boom"))
    beat = Heartbeat(store.backend, "TestPool", ["alpha"], slots=8, busy=lambda: 5)
    beat.beat()
    got = scrape(exporter)
    beat.stop()
    assert got[("alsek_backend_up", ())] == 1
    assert got[("alsek_queue_ready", (("queue", "alpha"),))] == 2
    assert got[("alsek_queue_in_flight", (("queue", "alpha"),))] == 1
    assert got[("alsek_queue_delayed", (("queue", "beta"),))] == 1
    assert got[("alsek_queue_dead", (("queue", "beta"),))] == 1
    labels = (("host", socket.gethostname()), ("kind", "TestPool"), ("worker", beat.id))
    assert got[("alsek_worker_slots", labels)] == 8 and got[("alsek_worker_busy_slots", labels)] == 5
    assert got[("alsek_workers", ())] == 1
    assert scrape(exporter)[("alsek_workers", ())] == 0  # it unregistered
