"""Connection faults at the port level: producers and claimers ride out killed
connections, a restarted server and flushed scripts, and no message is lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid as uuid_lib
from collections.abc import Iterator

import pytest
import redis

from alsek_backends.redis.backend import RedisBackend
from alsek_backends.redis.connection import RedisUnavailableError
from alsek_backends.redis.plugin import DEFAULT_TEST_URL, ENV_TEST_URL
from alsek_backends.redis.queue import QUEUE_SHA
from alsek_core.clock import now_ms
from alsek_core.ports import Envelope, QueueCounts, Settlement, StatusWrite
from alsek_core.status import status_name
from alsek_core.testing.contract.fixtures import unavailable, wipe
from tests.integration.network import free_port

pytestmark = pytest.mark.slow
URL = os.environ.get(ENV_TEST_URL) or DEFAULT_TEST_URL
LEASE = 1_500  # short, so a claim whose reply died with its connection comes back soon


def envelope(queue: str = "q") -> Envelope:
    uuid = uuid_lib.uuid4().hex
    return Envelope(queue, uuid, 0, now_ms(), uuid.encode())


def drain_until(backend: RedisBackend, expected: set[str], acked: set[str], timeout: float) -> None:
    """Claim and ack (batches, blocking waits) until every expected uuid was acked."""
    deadline = time.monotonic() + timeout
    while not expected <= acked and time.monotonic() < deadline:
        for delivery in backend.claim(["q"], 20, LEASE, wait_ms=200):
            backend.ack("q", delivery.uuid)
            acked.add(delivery.uuid)


def with_params(url: str, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def named_backend() -> RedisBackend:
    """A backend whose connections carry a name of their own (its namespace),
    so that only they are killed on the shared server."""
    name = f"alsek-fault-{uuid_lib.uuid4().hex[:10]}"
    return RedisBackend(with_params(URL, client_name=name), namespace=name)


def kill_named(admin: redis.Redis, name: str) -> int:
    """``CLIENT KILL`` every connection named ``name``; how many were killed."""
    kills = 0
    for client in admin.client_list():
        if client.get("name") == name:
            with contextlib.suppress(redis.exceptions.ResponseError):  # gone already
                kills += int(admin.client_kill_filter(_id=client["id"]))
    return kills


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        unavailable(f"Redis at {URL} is unreachable: {exc}")
    yield client
    client.close()


def test_client_kill_loses_nothing(admin: redis.Redis) -> None:
    backend = named_backend()
    stop, kills = threading.Event(), [0]

    def killer() -> None:
        while not stop.is_set():
            kills[0] += kill_named(admin, backend.namespace)
            stop.wait(0.01)

    submitted: set[str] = set()
    acked: set[str] = set()

    def produce() -> None:
        for i in range(100):
            # Every tenth a batch of several chunks, sent while it is encoded.
            size = 2_500 if i % 10 == 0 else 1 if i % 2 else 20
            batch = [envelope() for _ in range(size)]
            backend.submit(iter(batch))
            submitted.update(e.uuid for e in batch)

    threads = [threading.Thread(target=killer), threading.Thread(target=produce)]
    try:
        for thread in threads:
            thread.start()
        threads[1].join(timeout=120)
        drain_until(backend, submitted, acked, timeout=10)  # still under fire
        stop.set()
        threads[0].join(timeout=10)
        drain_until(backend, submitted, acked, timeout=60)
        assert kills[0] > 0, "the test should have killed connections"
        assert len(submitted) == 50 + 40 * 20 + 10 * 2_500
        assert submitted == acked, f"{len(submitted - acked)} messages lost"
        assert backend.counts("q") == QueueCounts()
    finally:
        stop.set()
        wipe(backend)


def test_batch_submit_survives_its_connection_killed_midway(admin: redis.Redis) -> None:
    backend = named_backend()
    envs = [envelope() for _ in range(5_500)]
    kills = 0

    def encoded_as_sent() -> Iterator[Envelope]:
        nonlocal kills
        for i, env in enumerate(envs):
            if i in (2_500, 4_200):  # chunks sent, some replies not read yet
                kills += kill_named(admin, backend.namespace)
            yield env

    try:
        backend.submit(encoded_as_sent())
        assert kills >= 2
        assert backend.counts("q") == QueueCounts(ready=5_500)
        claimed = backend.claim(["q"], 6_000, LEASE)
        assert [d.uuid for d in claimed] == [e.uuid for e in envs]
    finally:
        wipe(backend)


class PrivateServer:
    """A redis-server of our own, which a test may stop and start again (with an
    append-only file, so that the data survives)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="alsek-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.folder,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        """On SIGTERM the server writes its append-only file, then exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is needed to run a server of our own")
    server = PrivateServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def test_server_restart_loses_nothing(private_server: PrivateServer) -> None:
    backend = RedisBackend(private_server.url, namespace="restart")
    submitted: set[str] = set()
    acked: set[str] = set()
    first = [envelope() for _ in range(100)]
    backend.submit(first)
    submitted.update(e.uuid for e in first)
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            env = envelope()
            backend.submit([env])
            submitted.add(env.uuid)
            time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(0.2)
        private_server.stop()
        time.sleep(0.3)
        private_server.start()  # with no scripts loaded
        time.sleep(0.3)
    finally:
        stop.set()
        producer.join(timeout=30)
    drain_until(backend, submitted, acked, timeout=60)
    assert submitted == acked, f"{len(submitted - acked)} messages lost"
    assert backend.counts("q") == QueueCounts()
    backend.close()


def test_scripts_are_reloaded_after_script_flush(private_server: PrivateServer) -> None:
    backend = RedisBackend(private_server.url, namespace="flush")
    backend.submit([envelope()])
    backend.conn.script_flush()
    assert backend.conn.script_exists(QUEUE_SHA) == [False]
    [delivery] = backend.claim(["q"], 1, LEASE)  # the claim reloads the script
    backend.conn.script_flush()
    backend.submit([envelope()])  # and so does a batch submit
    backend.conn.script_flush()
    backend.ack("q", delivery.uuid)
    assert backend.counts("q") == QueueCounts(ready=1)
    backend.conn.script_flush()
    # A batch of several chunks, sent as they fill, to a known and a new queue.
    batch = (envelope(queue) for queue in ["q"] * 1_500 + ["new"] * 1_500)
    assert backend.submit(batch) == 3_000
    assert backend.counts("q") == QueueCounts(ready=1_501)
    assert backend.counts("new") == QueueCounts(ready=1_500)
    assert set(backend.queue_names()) == {"q", "new"}
    backend.conn.script_flush()
    [claimed] = backend.claim(["q"], 1, LEASE)
    backend.conn.script_flush()
    status = StatusWrite(claimed.uuid, {"status": "SUCCEEDED"}, None, b"{}")
    assert backend.settle([Settlement(claimed, status=status)]) == [True]  # settle reloads both its scripts
    assert backend.get(status_name(claimed.uuid)) == {} and backend.counts("q").ready == 1_500
    backend.close()


def test_refused_connection_names_host_and_port() -> None:
    port = free_port()
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", namespace="refused")  # lazy: no error yet
    with pytest.raises(RedisUnavailableError, match=f"127.0.0.1:{port}") as caught:
        backend.claim(["q"], 1, LEASE)
    assert isinstance(caught.value, ConnectionError)
