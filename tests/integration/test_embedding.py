"""Embedding the library in a program (a benchmark harness, a web app): the
calls such a program needs, used as it would use them."""

from __future__ import annotations

import os
import uuid as uuid_lib
from pathlib import Path

import psycopg
import pytest

from alsek_backends.postgres.plugin import TEST_URL_ENV
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema
from alsek_core.broker import Broker
from alsek_core.concurrency import Concurrency, split_concurrency
from alsek_core.config import backend_from_url
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import task


def test_generate_many_submits_one_batch_and_submit_many_counts_the_new(tmp_path: Path) -> None:
    backend = backend_from_url(f"sqlite:///{tmp_path}/store")
    broker, tracker = Broker(backend), StatusTracker(backend)

    @task(broker, queue="bulk", status_tracker=tracker)
    def add(a: int, b: int) -> int:
        return a + b

    messages = add.generate_many([(i, i) for i in range(100)], priority=3)
    assert len(messages) == 100 and {m.priority for m in messages} == {3}
    assert broker.counts("bulk").ready == 100
    assert tracker.get(messages[0]) is TaskStatus.SUBMITTED
    assert broker.submit_many(messages[:10]) == 0, "duplicates are skipped, and the count says so"
    built = add.generate_many([(1, 2)], submit=False)
    assert broker.counts("bulk").ready == 100 and broker.submit_many(built) == 1
    backend.close()


@pytest.mark.parametrize(("n", "cpus", "expected"), [
    (1, 4, Concurrency(1, 1)), (4, 4, Concurrency(4, 1)), (16, 4, Concurrency(4, 4)),
    (10, 4, Concurrency(4, 3)), (3, 8, Concurrency(3, 1)), (100, 1, Concurrency(1, 100)),
])
def test_one_concurrency_figure_is_split(n: int, cpus: int, expected: Concurrency) -> None:
    split = split_concurrency(n, cpus=cpus)
    assert split == expected and split.total >= n and split.n_processes <= cpus


def test_the_postgres_schema_is_created_and_upgraded_from_python() -> None:
    schema = f"alsek_embed_{uuid_lib.uuid4().hex[:8]}"
    server = os.environ.get(TEST_URL_ENV) or DEFAULT_URL
    try:
        psycopg.connect(server, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    backend = backend_from_url(with_schema(server, schema))
    try:
        assert [m.version for m in backend.init_schema()] != []  # type: ignore[attr-defined]
        assert backend.init_schema() == []  # type: ignore[attr-defined]
        broker = Broker(backend)
        broker.submit_many([])
        assert broker.queues() == []
    finally:
        backend.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
