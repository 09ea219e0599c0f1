"""``alsek process-pool ... --metrics-port``: per-task counters and
histograms added up across the pool's processes, scraped over HTTP as
Prometheus would, on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from tests.integration.network import free_port
from tests.integration.ops_harness import NO_WAIT, QUEUE, TASKS
from tests.integration.pool_harness import ROOT

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def task_sample(samples: Samples, name: str, task: str) -> float:
    return samples.get((name, (("queue", QUEUE), ("task", task))), 0.0)


def test_a_process_pool_counts_every_task_across_its_processes(redis_url: str, tmp_path: Path) -> None:
    broker = Broker(backend_from_url(redis_url))
    broker.submit_many([Message("ok", queue=QUEUE, args=[i]) for i in range(6)]
                       + [Message("fan_out", queue=QUEUE, args=[4]),
                          Message("boom", queue=QUEUE, args=["kaput"], backoff_settings=NO_WAIT)])
    port = free_port()
    log = tmp_path / "pool.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with log.open("w") as out:
        pool = subprocess.Popen(
            [sys.executable, "-m", "alsek_cli", "process-pool", TASKS, "--backend", redis_url, "--n_processes", "3",
             "--metrics-port", str(port), "--log-level", "info"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(scratch)})
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert pool.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                samples = scrape(url)
            except OSError:
                time.sleep(0.2)
                continue
            if (task_sample(samples, "alsek_task_succeeded_total", "ok") == 10
                    and task_sample(samples, "alsek_task_failed_total", "boom") == 1):
                break
            time.sleep(0.2)
        assert task_sample(samples, "alsek_task_submitted_total", "ok") == 4  # by fan_out, inside the pool
        assert task_sample(samples, "alsek_task_succeeded_total", "fan_out") == 1
        assert task_sample(samples, "alsek_task_retried_total", "boom") == 1
        assert task_sample(samples, "alsek_task_dead_lettered_total", "boom") == 1
        assert task_sample(samples, "alsek_task_dead_total", "boom") == 0
        assert task_sample(samples, "alsek_task_run_seconds_count", "ok") == 10
        assert task_sample(samples, "alsek_task_queue_wait_seconds_count", "boom") == 2
        assert task_sample(samples, "alsek_task_run_seconds_count", "boom") == 2
        assert samples[("alsek_pool_slots", ())] == 3 and 0 <= samples[("alsek_pool_busy_slots", ())] <= 3
        assert len(list(scratch.glob("alsek-metrics-*"))) == 1
    finally:
        pool.terminate()
        assert pool.wait(60) == 0, log.read_text()
    assert not list(scratch.glob("alsek-metrics-*")), "the pool left its metrics directory behind"
