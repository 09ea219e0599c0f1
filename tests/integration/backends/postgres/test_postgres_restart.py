"""A PostgreSQL restart in the middle of a run costs a reconnect, not a lost or
doubled message: a producer and a blocking consumer (separate pools, separate
listening connections) go on through ``pg_ctlcluster ... restart``.

Restarts the shared local server (allowed for this test only) and makes sure
it is running again afterwards, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alsek_core.clock import now_ms
from alsek_core.ports import Envelope
from alsek_core.testing.contract.fixtures import unavailable

psycopg = pytest.importorskip("psycopg")

from alsek_backends.postgres import schema as schema_lib  # noqa: E402
from alsek_backends.postgres.backend import PostgresBackend  # noqa: E402
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema  # noqa: E402

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)
MESSAGES = 600
LEASE_MS = 3_000  # a claim whose reply died with the server is redelivered after this


def _cluster() -> list[str]:
    """``pg_ctlcluster`` arguments naming the local cluster, or skip."""
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not shutil.which("pg_ctlcluster") or not versions:
        unavailable("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _reachable() -> bool:
    try:
        psycopg.Connection.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def _ensure_running(cluster: list[str]) -> None:
    for _ in range(60):
        if _reachable():
            return
        subprocess.run([*cluster, "start"], capture_output=True, timeout=60, check=False)
        time.sleep(1)
    raise RuntimeError("PostgreSQL did not come back after the restart test")


@pytest.fixture
def cluster() -> Iterator[list[str]]:
    cluster = _cluster()
    if not _reachable():
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}")
    try:
        yield cluster
    finally:
        _ensure_running(cluster)


@pytest.fixture
def url(cluster: list[str]) -> Iterator[str]:
    name = f"alsek_t_{uuid.uuid4().hex[:10]}"
    conn, _ = schema_lib.connect(POSTGRES_URL)
    with conn:
        schema_lib.init(conn, name)
    yield with_schema(POSTGRES_URL, name)
    _ensure_running(cluster)
    conn, _ = schema_lib.connect(POSTGRES_URL)
    with conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def _consume(backend: PostgresBackend, expected: int, got: list[str], stop: threading.Event) -> None:
    while len(got) < expected and not stop.is_set():
        for delivery in backend.claim(["restart"], 10, LEASE_MS, wait_ms=1_000):
            got.append(delivery.uuid)
            backend.ack(delivery.queue, delivery.uuid)


def test_restart_costs_a_reconnect_not_a_message(cluster: list[str], url: str) -> None:
    namespace = f"restart-{uuid.uuid4().hex[:8]}"
    producer = PostgresBackend(url, namespace=namespace)
    consumer = PostgresBackend(url, namespace=namespace)
    watcher = PostgresBackend(url, namespace=namespace)
    listener = watcher.listen(["status:after-restart"])
    batches = [[uuid.uuid4().hex for _ in range(10 if i % 50 == 0 else 1)] for i in range(MESSAGES)]
    sent = [u for batch in batches for u in batch]
    got: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=_consume, args=(consumer, len(sent), got, stop))
    thread.start()
    try:
        for i, batch in enumerate(batches):
            if i == MESSAGES // 3:
                subprocess.run([*cluster, "restart"], check=True, capture_output=True, timeout=120)
            producer.submit([Envelope("restart", u, 0, now_ms(), b"x") for u in batch])
            time.sleep(0.002)
        thread.join(timeout=120)
    finally:
        stop.set()
        thread.join(timeout=30)
    try:
        assert len(got) == len(set(got)), "a message was delivered twice"
        assert sorted(got) == sorted(sent), "a message was lost"
        assert producer.counts("restart").in_flight == 0
        assert _heard_after_restart(watcher, listener), "a listener from before the restart hears"
    finally:
        listener.close()
        for backend in (producer, consumer, watcher):
            backend.close()


def _heard_after_restart(watcher: PostgresBackend, listener: Any) -> bool:
    """Once the listening connection is back (its reconnection wakes everyone,
    once), a notification sent now must be heard."""
    deadline = time.monotonic() + 30
    while not watcher.db.hub().connected and time.monotonic() < deadline:
        time.sleep(0.1)
    while listener.wait(300):
        pass
    watcher.notify("status:after-restart")
    return bool(listener.wait(20_000))
