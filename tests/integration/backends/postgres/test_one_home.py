"""One home for statuses and results on PostgreSQL (issue 12): the tour's
``StatusTracker(backend)`` and ``ResultStore(backend)`` write where ``alsek
status``, ``alsek result`` and ``alsek jobs`` read, tried as a user would:
the tour's code writes, the CLI (a subprocess) reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from alsek import Broker, task
from alsek.storage.result import ResultStore
from alsek_core.config import backend_from_url
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.testing.runner import run_until_empty

pytest.importorskip("psycopg")

from alsek_backends.postgres import PostgresBackend, PostgresResultStore, PostgresStatusTracker
from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)


@pytest.fixture
def url(schema: str, admin: Any) -> str:
    schema_lib.init(admin, schema)
    return f"{with_schema(POSTGRES_URL, schema)}&namespace=home-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    instance = backend_from_url(url)
    assert isinstance(instance, PostgresBackend)
    yield instance
    instance.close()


def alsek(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alsek_cli", *args], capture_output=True, text=True, timeout=120)


def test_what_the_tour_writes_the_cli_reads(backend: PostgresBackend, url: str) -> None:
    status_tracker = StatusTracker(backend)
    result_store = ResultStore(backend)
    assert isinstance(status_tracker, PostgresStatusTracker) and isinstance(result_store, PostgresResultStore)

    @task(Broker(backend), status_tracker=status_tracker, result_store=result_store)
    def add(a: int, b: int) -> int:
        return a + b

    message = add.generate(args=(1, 2))
    assert status_tracker.get(message) == TaskStatus.SUBMITTED
    listed = json.loads(alsek("jobs", "--backend", url, "--json").stdout)
    assert [(row["uuid"], row["status"]) for row in listed] == [(message.uuid, "SUBMITTED")]
    run_until_empty([add])

    shown = alsek("status", message.uuid, "--backend", url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "SUCCEEDED"
    fetched = alsek("result", message.uuid, "--backend", url)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["result"] == 3
    assert result_store.get(message) == 3
    status_tracker.delete(message)


def test_a_users_own_subclass_keeps_its_storage(backend: PostgresBackend) -> None:
    class Audited(StatusTracker):
        pass

    assert type(Audited(backend)) is Audited  # key-value records, as the user chose
