"""A status write lost to a backend outage is never lost for good: on Redis
and PostgreSQL, cut off (through a relay the test controls) just as a task
finishes, for longer than the client's own retries last, a pool either
records the outcome or leaves the message to run again; never "work done,
message acked, status RUNNING forever".

The outage ends as soon as the pool logs that it could not record the
outcome, so the ack that follows goes through: the moment the old code lost
the status for good."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import uuid as uuid_lib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.ports import Backend, QueueCounts
from alsek_core.result import store_for
from alsek_core.status import BaseStatusTracker, TaskStatus, tracker_for
from alsek_core.task import Task, task
from alsek_core.testing.contract.fixtures import unavailable, wipe
from alsek_core.worker.base import BaseWorkerPool
from tests.integration.conftest import postgres_url

pytestmark = pytest.mark.slow
QUEUE = "outcome"


class Relay:
    """A TCP relay to a server that the test can cut (refusing connections
    and dropping those open) and restore on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.restore()

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.drop()

    def drop(self) -> None:
        """Drop the open connections only, as CLIENT KILL or pg_terminate_backend would."""
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # cut: the listener is closed
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            gone = [s for s in (source, sink) if s in self._open]
            self._open.difference_update(gone)
        for sock in gone:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class InlinePool(BaseWorkerPool):
    """Runs each message in the claim loop itself: the smallest real pool."""

    def free_slots(self) -> int:
        return 1

    def submit_to_executor(self, task: Task, message: Message) -> None:
        self.execute(task, message)
        self.slot_freed()


class RestoreOnOutcomeError(logging.Handler):
    """Ends the outage once the pool logs an error about ``uuid``."""

    def __init__(self, relay: Relay, uuid: str) -> None:
        super().__init__(logging.ERROR)
        self.relay, self.uuid, self.seen = relay, uuid, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.uuid in record.getMessage():
            self.seen.set()
            self.relay.restore()


def _server_url(kind: str) -> str:
    if kind == "redis":
        from alsek_backends.redis.plugin import DEFAULT_TEST_URL, ENV_TEST_URL

        return os.environ.get(ENV_TEST_URL) or DEFAULT_TEST_URL
    return postgres_url()


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{user}127.0.0.1:{port}").geturl()


@pytest.fixture(params=["redis", "postgres"])
def relayed(request: pytest.FixtureRequest) -> Iterator[tuple[Relay, Backend]]:
    """A backend of the given kind whose every connection goes through a Relay."""
    kind = request.param
    namespace = f"outcome-{uuid_lib.uuid4().hex[:10]}"
    server = urlsplit(_server_url(kind))
    relay = Relay(server.hostname or "127.0.0.1", server.port or (6379 if kind == "redis" else 5432))
    url = f"{_through(_server_url(kind), relay.port)}?namespace={namespace}"
    schema = f"alsek_t_{uuid_lib.uuid4().hex[:10]}"
    admin: Any = None
    try:
        if kind == "postgres":
            psycopg = pytest.importorskip("psycopg")
            from alsek_backends.postgres import schema as schema_lib

            try:
                admin = psycopg.Connection.connect(postgres_url(), autocommit=True)
            except psycopg.OperationalError as exc:
                unavailable(f"PostgreSQL unreachable at {postgres_url()}: {exc}")
            schema_lib.init(admin, schema)
            url += f"&schema={schema}"
        backend = backend_from_url(url)
        try:
            backend.exists("probe")
        except Exception as exc:
            unavailable(f"{kind} unreachable: {exc}")
        yield relay, backend
        wipe(backend)
    finally:
        relay.close()
        if admin is not None:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.close()


def test_result_and_status_writes_reconnect_when_their_connection_is_killed(relayed: tuple[Relay, Backend]) -> None:
    relay, backend = relayed
    broker = Broker(backend)
    tracker: BaseStatusTracker = tracker_for(backend)
    runs: list[int] = []

    results = store_for(backend)

    @task(broker, queue=QUEUE, status_tracker=tracker, result_store=results, mechanism="thread")
    def finish_then_lose_the_connection() -> int:
        runs.append(1)
        relay.drop()  # the result and status writes that follow find their connections killed
        return 42

    message = finish_then_lose_the_connection.generate()
    pool = InlinePool([finish_then_lose_the_connection], lease_ms=1_000, backoff=None)
    runner = threading.Thread(target=pool.run)
    runner.start()
    try:
        assert tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=60) == TaskStatus.SUCCEEDED
        assert len(runs) == 1  # written on a new connection, not by a rerun
        assert results.get(message) == 42
    finally:
        pool.stop()
        runner.join(timeout=60)
    assert broker.counts(QUEUE) == QueueCounts()


def test_a_status_write_lost_to_an_outage_is_not_lost_for_good(relayed: tuple[Relay, Backend]) -> None:
    relay, backend = relayed
    broker = Broker(backend)
    tracker: BaseStatusTracker = tracker_for(backend)
    runs: list[int] = []

    @task(broker, queue=QUEUE, status_tracker=tracker, mechanism="thread", max_retries=0)
    def finish_then_lose_the_backend() -> None:
        runs.append(1)
        if len(runs) == 1:
            relay.cut()  # the status write that follows meets the outage

    message = finish_then_lose_the_backend.generate()
    watcher = RestoreOnOutcomeError(relay, message.uuid)
    core_log = logging.getLogger("alsek_core")
    core_log.addHandler(watcher)
    pool = InlinePool([finish_then_lose_the_backend], lease_ms=1_000, backoff=None)
    runner = threading.Thread(target=pool.run)
    runner.start()
    try:
        assert watcher.seen.wait(120), "the pool never reported the failed write"
        assert tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=60) == TaskStatus.SUCCEEDED
        assert broker.counts(QUEUE) == QueueCounts()
        assert len(runs) in (1, 2)  # run again if the outcome could not be recorded at all
    finally:
        pool.stop()
        runner.join(timeout=60)
        core_log.removeHandler(watcher)
