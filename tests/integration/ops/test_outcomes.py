"""What a real pool tells of each outcome: its log lines (one per outcome,
the traceback with a failure, a line on redelivery), and the job history
that ``alsek jobs`` and ``alsek status`` show, on Redis."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.workers import Heartbeat
from tests.integration.ops_harness import (
    NO_WAIT,
    QUEUE,
    alsek,
    history_size,
    start_pool,
    wait_for,
)

pytestmark = pytest.mark.slow

def test_logs_and_history_of_each_outcome(redis_url: str, tmp_path: Path) -> None:
    broker = Broker(backend_from_url(redis_url))
    marker = tempfile.mktemp(dir=tmp_path)
    log = tmp_path / "pool.log"
    pool = start_pool(redis_url, log)
    try:
        ok = broker.submit(Message("ok", queue=QUEUE, args=[7]))
        # One at a time: die_once takes its process down, with the history
        # entries it had not flushed yet and the messages it had not started.
        wait_for(lambda: history_size(broker.backend, "succeeded") == 1, "the first finished message", log)
        bad = broker.submit(Message("boom", queue=QUEUE, args=["kaput"], backoff_settings=NO_WAIT))
        wait_for(lambda: history_size(broker.backend, "failed") == 1, "the failure", log)
        again = broker.submit(Message("die_once", queue=QUEUE, args=[marker]))
        wait_for(lambda: (history_size(broker.backend, "succeeded"), history_size(broker.backend, "failed")) == (2, 1),
                 "three finished messages", log)
    finally:
        pool.terminate()
        assert pool.wait(60) == 0
    text = log.read_text()
    assert "succeeded in " in text and f"task 'ok', queue 'ops', uuid {ok.uuid}, attempt 1" in text
    assert "retrying after ValueError in " in text and f"uuid {bad.uuid}, attempt 1: kaput" in text
    assert "failed in " in text and f"uuid {bad.uuid}, attempt 2; ValueError: kaput" in text
    assert "Traceback (most recent call last)" in text and 'raise ValueError(text)' in text
    assert f"redelivered (delivery 2): task 'die_once', queue 'ops', uuid {again.uuid}" in text
    assert f"task 'die_once', queue 'ops', uuid {again.uuid}, attempt 1" in text  # then it succeeded

    succeeded = json.loads(alsek("jobs", "--state", "succeeded", "--json", "--backend", redis_url))
    assert {row["uuid"] for row in succeeded} == {ok.uuid, again.uuid}
    assert all(row["state"] == "succeeded" and row["worker"] and row["started"] for row in succeeded)
    [failed] = json.loads(alsek("jobs", "ops", "--state", "failed", "--json", "--backend", redis_url))
    assert failed["uuid"] == bad.uuid and failed["attempts"] == 2 and failed["error"] == "ValueError: kaput"
    assert "raise ValueError(text)" in failed["exception"]["traceback"]
    table = alsek("jobs", "--state", "failed", "--backend", redis_url)
    assert bad.uuid[:8] in table

    shown = json.loads(alsek("status", bad.uuid, "--json", "--backend", redis_url))
    assert shown["status"] == "FAILED" and shown["history"]["state"] == "failed"
    assert "ValueError: kaput" in shown["history"]["exception"]["traceback"]
    text = alsek("status", bad.uuid, "--backend", redis_url)
    assert text.startswith("FAILED") and "attempts=2" in text and "raise ValueError(text)" in text


def test_jobs_names_the_pool_running_an_in_flight_message(redis_url: str) -> None:
    backend = backend_from_url(redis_url)
    broker = Broker(backend)
    held, waiting = (broker.submit(Message("ok", queue=QUEUE, args=[i])) for i in range(2))
    [delivery] = broker.claim([QUEUE], 1, 30_000)
    assert delivery.uuid == held.uuid
    beat = Heartbeat(backend, "TestPool", [QUEUE], slots=2, busy=lambda: 1, running=lambda: [held.uuid])
    beat.beat()
    rows = {row["uuid"]: row for row in json.loads(alsek("jobs", "--json", "--backend", redis_url))}
    assert rows[held.uuid]["state"] == "in_flight" and rows[held.uuid]["worker"] == beat.id
    assert rows[waiting.uuid]["state"] == "ready" and "worker" not in rows[waiting.uuid]
    [worker] = json.loads(alsek("workers", "--json", "--backend", redis_url))
    assert worker["running"] == [held.uuid]


def test_the_history_stays_within_its_cap_at_full_drain_speed(redis_url: str, tmp_path: Path) -> None:
    """The count is read again and again while a pool drains 3,000 messages
    with a cap of 50: it never exceeds the cap (history.lua trims in the
    call that adds), and ends at it."""
    backend = backend_from_url(redis_url)
    broker = Broker(backend)
    broker.submit_many(Message("ok", queue=QUEUE, args=[i]) for i in range(3000))
    log = tmp_path / "pool.log"
    pool = start_pool(redis_url, log, "--log-level", "warning",
                      env={**os.environ, "ALSEK_TEST_HISTORY_MAX": "50"})
    seen = []
    try:
        while broker.counts(QUEUE).ready + broker.counts(QUEUE).in_flight:
            seen.append(backend.history_store.count(QUEUE, "succeeded"))  # type: ignore[attr-defined]
            assert pool.poll() is None, log.read_text()
        wait_for(lambda: history_size(backend, "succeeded") == 50, "the last flush", log)
    finally:
        pool.terminate()
        assert pool.wait(60) == 0
    assert max(seen) <= 50 and len(seen) > 10
    assert len(broker.history(QUEUE, "succeeded", limit=1000)) == 50
