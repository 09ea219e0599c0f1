"""The Redis adapter on a real three-master Redis Cluster: every per-queue
script stays in one slot, queues spread over the masters, and the whole
backend contract holds."""

from __future__ import annotations

import functools
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterator

import pytest
from redis.cluster import RedisCluster

from alsek_backends.redis.backend import RedisBackend
from alsek_backends.redis.queue import QUEUE_SHA
from alsek_core.clock import now_ms
from alsek_core.config import backend_from_url
from alsek_core.ports import Backend, Envelope, QueueCounts
from alsek_core.testing.contract import BackendContract
from alsek_core.testing.contract.fixtures import wipe
from tests.integration.redis_cluster import running_cluster

pytestmark = pytest.mark.slow
QUEUES = [f"queue{i}" for i in range(12)]
LEASE = 30_000


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with running_cluster() as url:
        yield url


@pytest.fixture
def cluster_backend(cluster_url: str) -> Iterator[RedisBackend]:
    backend = backend_from_url(cluster_url, namespace=f"cluster-{uuid_lib.uuid4().hex[:10]}")
    assert isinstance(backend, RedisBackend)
    assert isinstance(backend.conn, RedisCluster)
    yield backend
    wipe(backend)


def envelope(queue: str, priority: int = 0, delay: int = 0) -> Envelope:
    uuid = uuid_lib.uuid4().hex
    return Envelope(queue, uuid, priority, now_ms() + delay, uuid.encode())


def test_queues_spread_over_the_masters(cluster_backend: RedisBackend) -> None:
    client = cluster_backend.conn
    assert isinstance(client, RedisCluster)
    nodes = {client.get_node_from_key(cluster_backend.keys(q).prefix).name for q in QUEUES}
    assert len(nodes) == 3, "twelve queues should land on every master"
    for queue in QUEUES[:3]:
        keys = cluster_backend.keys(queue)
        names = [
            keys.prefix,
            *keys.zsets,
            keys.key("seq"),
            keys.message("u"),
            keys.dead_letter("u"),
        ]
        assert len({client.keyslot(name) for name in names}) == 1


def test_queue_operations_across_slots(cluster_backend: RedisBackend) -> None:
    envs = {q: [envelope(q, priority=i % 3) for i in range(20)] for q in QUEUES}
    assert cluster_backend.submit([e for batch in envs.values() for e in batch]) == 240
    assert cluster_backend.queue_names() == sorted(QUEUES)
    for queue, batch in envs.items():
        assert cluster_backend.counts(queue) == QueueCounts(ready=20)
        claimed = cluster_backend.claim([queue], 100, LEASE)
        expected = [e.uuid for e in sorted(batch, key=lambda e: e.priority)]
        assert [d.uuid for d in claimed] == expected
        assert cluster_backend.dead_letter(claimed[0], b"failed")
        assert cluster_backend.reschedule(claimed[1], b"again", now_ms())
        for delivery in claimed[2:]:
            cluster_backend.ack(queue, delivery.uuid)
        assert cluster_backend.counts(queue) == QueueCounts(ready=1, dead=1)
        [dead] = cluster_backend.messages(queue, dead=True)
        assert (dead.uuid, dead.payload) == (claimed[0].uuid, b"failed")
    # one claim over every queue, taken in the order given
    order = list(reversed(QUEUES))
    again = cluster_backend.claim(order, 100, LEASE)
    assert [d.queue for d in again] == order
    assert all(d.payload == b"again" for d in again)


def test_blocking_claim_over_queues_in_different_slots(cluster_backend: RedisBackend) -> None:
    env = envelope(QUEUES[7])
    timer = threading.Timer(0.3, cluster_backend.submit, args=([env],))
    timer.start()
    started = time.monotonic()
    claimed = cluster_backend.claim(QUEUES, 1, LEASE, wait_ms=30_000)
    timer.join()
    assert [d.uuid for d in claimed] == [env.uuid]
    assert time.monotonic() - started < 15, "the submit should have woken the claim"


def test_scripts_reload_after_script_flush(cluster_backend: RedisBackend) -> None:
    cluster_backend.submit([envelope("q")])
    cluster_backend.conn.script_flush()
    assert cluster_backend.conn.script_exists(QUEUE_SHA) == [False]
    cluster_backend.submit([envelope("q")])
    cluster_backend.conn.script_flush()
    assert len(cluster_backend.claim(["q"], 10, LEASE)) == 2


def test_pickled_backend_reconnects_to_the_cluster(cluster_backend: RedisBackend) -> None:
    import pickle

    cluster_backend.submit([envelope("q")])
    for original in (
        cluster_backend,
        RedisBackend(cluster_backend.conn, cluster_backend.namespace),
    ):
        copy = pickle.loads(pickle.dumps(original))
        assert copy.counts("q").ready == 1
        copy.close()


class TestRedisClusterContract(BackendContract):
    """The one contract suite, bound to the cluster the documented third-party way."""

    @pytest.fixture
    def backend_factory(self, cluster_url: str, contract_namespace: str) -> Callable[[], Backend]:
        return functools.partial(backend_from_url, cluster_url, namespace=contract_namespace)
