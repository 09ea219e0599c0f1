"""PostgresStatusTracker and PostgresResultStore against the real server, in
what only they have: pushed (not polled) waits, the tables as plain SQL sees
them, expiry, and migration 0002 on a database made by 0001. The tour's status
and result examples run on them through ``backend.status_tracker()`` /
``backend.result_store()`` in test_tour.py. Each test gets its own PostgreSQL schema (dropped afterwards)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from alsek_core.broker import Broker
from alsek_core.errors import ConfigError, ValidationError
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.result_pool import ResultPool
from alsek_core.status import TaskStatus
from alsek_core.task import Task, task

psycopg = pytest.importorskip("psycopg")

from alsek_backends.postgres import (  # noqa: E402
    PostgresBackend,
    PostgresResultStore,
    PostgresStatusTracker,
)
from alsek_backends.postgres import schema as schema_lib  # noqa: E402
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema  # noqa: E402

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)
WAIT_S = 20.0  # far longer than any wake-up should take: elapsed < half of it means woken


@pytest.fixture
def backend(schema: str, admin: Any) -> Iterator[PostgresBackend]:
    schema_lib.init(admin, schema)
    instance = PostgresBackend(with_schema(POSTGRES_URL, schema), namespace=f"t-{uuid.uuid4().hex[:8]}")
    yield instance
    instance.close()


@pytest.fixture
def broker(backend: PostgresBackend) -> Broker:
    return Broker(backend)


@pytest.fixture
def tracker(backend: PostgresBackend) -> PostgresStatusTracker:
    return PostgresStatusTracker(backend)


@pytest.fixture
def result_store(backend: PostgresBackend) -> PostgresResultStore:
    return PostgresResultStore(backend)


def other(backend: PostgresBackend, namespace: str | None = None) -> PostgresBackend:
    """A second instance on the same data: its own pool, as another process has."""
    return PostgresBackend(backend.db.state()["source"], namespace=namespace or backend.namespace)


def rows(admin: Any, backend: PostgresBackend, table: str, columns: str) -> list[tuple[Any, ...]]:
    return list(admin.execute(
        f"SELECT {columns} FROM {backend.schema}.{table} WHERE namespace = %s ORDER BY 1",
        [backend.namespace],
    ).fetchall())


# -- statuses ----------------------------------------------------------------


def test_a_status_is_one_row_plain_sql_can_read(
    backend: PostgresBackend, tracker: PostgresStatusTracker, admin: Any
) -> None:
    message = Message("job", queue="q1")
    for status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED):
        tracker.set(message, status)
    [row] = rows(admin, backend, "statuses", "uuid, status, queue, task_name, updated_at, expires_at")
    assert row[:4] == (message.uuid, "SUCCEEDED", "q1", "job") and row[5] is None
    assert tracker.record(message.uuid) == {
        "status": "SUCCEEDED", "queue": "q1", "task_name": "job", "updated_at": row[4]
    }
    assert list(tracker.uuids()) == [message.uuid]
    assert not PostgresStatusTracker(other(backend, "someone-else")).exists(message)
    tracker.delete(message)
    assert not tracker.exists(message) and rows(admin, backend, "statuses", "uuid") == []


def test_delete_refuses_a_status_that_can_still_change(tracker: PostgresStatusTracker) -> None:
    message = Message("job")
    tracker.set(message, TaskStatus.RUNNING)
    with pytest.raises(ValidationError, match="not terminal"):
        tracker.delete(message)
    tracker.delete(message, check=False)
    assert tracker.get(message) == TaskStatus.UNKNOWN


class CountingTracker(PostgresStatusTracker):
    reads = 0

    def record(self, uuid: str) -> dict[str, Any] | None:
        self.reads += 1
        return super().record(uuid)


def test_status_waits_are_pushed(backend: PostgresBackend) -> None:
    message = Message("job")
    waiter = CountingTracker(backend)
    writer = PostgresStatusTracker(other(backend))
    writer.set(message, TaskStatus.SUBMITTED)
    seen: list[TaskStatus] = []
    thread = threading.Thread(target=lambda: seen.extend(waiter.listen(message, timeout=WAIT_S)))
    started = time.monotonic()
    thread.start()
    for status in (TaskStatus.RUNNING, TaskStatus.SUCCEEDED):
        time.sleep(0.3)
        writer.set(message, status)
    thread.join(WAIT_S)
    assert seen == [TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    assert time.monotonic() - started < WAIT_S / 2, "woken, not timed out"
    assert waiter.reads <= 5, f"{waiter.reads} reads: polled instead of being woken"
    writer.backend.close()


def test_statuses_with_a_ttl_expire_and_are_pruned(
    backend: PostgresBackend, admin: Any
) -> None:
    short = PostgresStatusTracker(backend, ttl=200)
    gone, fresh = Message("job"), Message("job")
    short.set(gone, TaskStatus.SUCCEEDED)
    time.sleep(0.4)
    assert not short.exists(gone) and list(short.uuids()) == []
    short._pruned_at = 0.0  # as if the prune interval had passed
    short.set(fresh, TaskStatus.SUBMITTED)
    assert rows(admin, backend, "statuses", "uuid") == [(fresh.uuid,)]


# -- results -----------------------------------------------------------------


def test_a_result_is_one_row_in_the_serializers_bytes(
    backend: PostgresBackend, result_store: PostgresResultStore, admin: Any
) -> None:
    message = Message("job")
    result_store.set(message, [1, "two"])
    [(uid, data, progenitor, expires_at)] = rows(
        admin, backend, "results", "uuid, result, progenitor_uuid, expires_at"
    )
    assert (uid, progenitor, expires_at) == (message.uuid, None, None)
    assert backend.serializer.loads(bytes(data)) == [1, "two"]
    assert list(backend.scan()) == [], "nothing in the key-value store"


def test_set_keeps_the_first_result_unless_told(result_store: PostgresResultStore) -> None:
    message = Message("job")
    result_store.set(message, 1)
    result_store.set(message, 2)  # a rerun of a redelivered message
    assert result_store.get(message, keep=True) == 1
    result_store.set(message, 3, nx=False)
    assert result_store.get(message) == 3


def test_expired_results_are_pruned(
    backend: PostgresBackend, result_store: PostgresResultStore, admin: Any
) -> None:
    result_store.set(Message("job", result_ttl=50), 1)
    time.sleep(0.15)
    result_store._pruned_at = 0.0  # as if the prune interval had passed
    kept = Message("job", result_ttl=60_000)
    result_store.set(kept, 2)
    assert rows(admin, backend, "results", "uuid") == [(kept.uuid,)]


class CountingStore(PostgresResultStore):
    looks = 0

    def exists(self, message: Message, descendants: bool = False) -> bool:
        self.looks += 1
        return super().exists(message, descendants=descendants)


def test_result_waits_are_pushed(backend: PostgresBackend) -> None:
    message = Message("job")
    waiter = CountingStore(backend)
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(waiter.get(message, timeout=int(WAIT_S * 1000))))
    started = time.monotonic()
    thread.start()
    time.sleep(0.5)
    PostgresResultStore(other(backend)).set(message, "done")
    thread.join(WAIT_S)
    assert got == ["done"]
    assert time.monotonic() - started < WAIT_S / 2, "woken, not timed out"
    assert waiter.looks <= 3, f"{waiter.looks} looks: polled instead of being woken"


def test_result_pool_is_woken_by_results_as_they_arrive(
    broker: Broker, result_store: PostgresResultStore
) -> None:
    messages = [Message("job") for _ in range(3)]
    writer = PostgresResultStore(other(result_store.backend))

    def write() -> None:
        for i, message in enumerate(reversed(messages)):
            time.sleep(0.2)
            writer.set(message, i)

    thread = threading.Thread(target=write)
    thread.start()
    started = time.monotonic()
    got = [r for _, r in ResultPool(result_store).istream(*messages, timeout=int(WAIT_S * 1000))]
    thread.join()
    assert sorted(got) == [0, 1, 2]
    assert time.monotonic() - started < WAIT_S / 2


def _chain_tasks(broker: Broker, result_store: PostgresResultStore) -> tuple[Task, Task, Task]:
    @task(broker, result_store=result_store)
    def add_1(number: int) -> int:
        return number + 1

    @task(broker, result_store=result_store)
    def add_1_previous(message: Message) -> int:
        return int(message.previous_result) + 1

    @task(broker, result_store=result_store)
    def print_result(message: Message) -> None:
        pass

    return add_1, add_1_previous, print_result


def test_descendants_of_a_trigger_in_write_order(
    broker: Broker, result_store: PostgresResultStore
) -> None:
    progenitor = Message("tick")
    runs = [Message("tick", progenitor_uuid=progenitor.uuid) for _ in range(20)]
    for i, message in enumerate(runs):  # all within a few milliseconds
        result_store.set(message, i)
    assert result_store.get(progenitor, descendants=True, keep=True) == list(range(20))
    assert result_store.delete(progenitor, descendants=False, missing_ok=True) == 0
    assert result_store.delete(runs[0], descendants=True) == 1
    assert result_store.delete(progenitor) == 19
    with pytest.raises(KeyError):
        result_store.delete(progenitor)


# -- migration 0002 ------------------------------------------------------------


def alsek_cli() -> click.Group:
    """A stand-in for the CLI's main group, extended through the plugin hook."""
    root = click.Group("alsek")
    assert plugin_host().add_commands(root) == []
    return root


def test_upgrade_from_0001(schema: str, admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_schema(POSTGRES_URL, schema)
    first = schema_lib.migrations()[:1]
    with monkeypatch.context() as patch:  # an alsek that knew only 0001 made this database
        patch.setattr(schema_lib, "migrations", lambda: first)
        schema_lib.init(admin, schema)
        old = PostgresBackend(url, namespace="t")
        queued = Broker(old).submit(Message("job"))
        old.close()
    with pytest.raises(ConfigError, match=f"version 1.*run: alsek db upgrade --backend '.*schema={schema}'"):
        PostgresBackend(url).exists("a")
    runner = CliRunner()
    result = runner.invoke(alsek_cli(), ["db", "status", "--backend", url])
    assert result.exit_code == 1, result.output
    latest = schema_lib.latest_version()
    assert f"at version 1 of {latest}" in result.output and "pending 0002_status_results" in result.output
    result = runner.invoke(alsek_cli(), ["db", "upgrade", "--backend", url])
    assert result.exit_code == 0 and "applied 0002_status_results" in result.output, result.output
    result = runner.invoke(alsek_cli(), ["db", "status", "--backend", url])
    assert result.exit_code == 0 and f"at version {latest} of {latest}" in result.output, result.output
    backend = PostgresBackend(url, namespace="t")
    assert Broker(backend).exists(queued), "0001's data survives"
    PostgresStatusTracker(backend).set(queued, TaskStatus.SUCCEEDED)
    PostgresResultStore(backend).set(queued, 1)
    assert PostgresResultStore(backend).get(queued) == 1
    backend.close()
