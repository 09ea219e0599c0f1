"""What the Redis adapter promises beyond the shared contract: blocking claims
woken by pub/sub, notify/listen, hash-tagged keys kept out of the KV space,
and a backend that survives pickling into another process."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
import uuid as uuid_lib
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from alsek_backends.redis.backend import RedisBackend
from alsek_backends.redis.plugin import DEFAULT_TEST_URL, ENV_TEST_URL
from alsek_core.clock import now_ms
from alsek_core.errors import ValidationError
from alsek_core.lazy import LazyClient
from alsek_core.ports import Envelope
from alsek_core.testing.contract.fixtures import unavailable, wipe

URL = os.environ.get(ENV_TEST_URL) or DEFAULT_TEST_URL
LEASE = 30_000


@pytest.fixture
def backend() -> Iterator[RedisBackend]:
    instance = RedisBackend(URL, namespace=f"redis-{uuid_lib.uuid4().hex[:12]}")
    try:
        instance.conn.ping()
    except Exception as exc:
        unavailable(f"Redis at {URL} is unreachable: {exc}")
    yield instance
    wipe(instance)


def envelope(queue: str = "q", priority: int = 0, delay: int = 0) -> Envelope:
    uuid = uuid_lib.uuid4().hex
    return Envelope(queue, uuid, priority, now_ms() + delay, uuid.encode())


def test_blocking_claim_is_woken_by_a_submit(backend: RedisBackend) -> None:
    env = envelope("b")
    timer = threading.Timer(0.3, backend.submit, args=([env],))
    timer.start()
    started = time.monotonic()
    claimed = backend.claim(["a", "b"], 5, LEASE, wait_ms=30_000)
    timer.join()
    assert [d.uuid for d in claimed] == [env.uuid]
    assert time.monotonic() - started < 15, "the submit should have woken the claim"


def test_blocking_claim_picks_up_a_delayed_message_when_due(backend: RedisBackend) -> None:
    env = envelope(delay=700)
    backend.submit([env])
    started = time.monotonic()
    claimed = backend.claim(["q"], 1, LEASE, wait_ms=30_000)
    assert [d.uuid for d in claimed] == [env.uuid]
    assert time.monotonic() - started < 15, "the wait should end when the message is due"


def test_blocking_claim_notices_a_delayed_submit_made_while_waiting(backend: RedisBackend) -> None:
    env = envelope(delay=800)
    timer = threading.Timer(0.2, backend.submit, args=([env],))
    timer.start()
    started = time.monotonic()
    claimed = backend.claim(["q"], 1, LEASE, wait_ms=30_000)
    timer.join()
    assert [d.uuid for d in claimed] == [env.uuid]
    assert time.monotonic() - started < 15


def test_blocking_claim_picks_up_an_expired_lease(backend: RedisBackend) -> None:
    env = envelope()
    backend.submit([env])
    backend.claim(["q"], 1, 500)
    [again] = backend.claim(["q"], 1, LEASE, wait_ms=30_000)
    assert (again.uuid, again.deliveries) == (env.uuid, 2)


def test_blocking_claims_in_threads_share_the_work(backend: RedisBackend) -> None:
    got: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while True:
            batch = backend.claim(["q"], 3, LEASE, wait_ms=1000)
            if not batch:
                return
            with lock:
                got.extend(d.uuid for d in batch)
            for delivery in batch:
                backend.ack("q", delivery.uuid)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    envs = [envelope() for _ in range(200)]
    for env in envs:
        backend.submit([env])
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(got) == sorted(e.uuid for e in envs)


def test_threads_that_claimed_and_ended_give_their_connections_back(backend: RedisBackend) -> None:
    # Each thread that waits in a claim holds a subscription; a thread that
    # is gone must not keep it, or short-lived claimers (an executor that
    # recycles threads) use up the client's connections (100 by default).
    named = RedisBackend(f"{URL}?client_name={backend.namespace}", namespace=backend.namespace)
    for _ in range(150):
        thread = threading.Thread(target=named.claim, args=(["q"], 1, LEASE), kwargs={"wait_ms": 1})
        thread.start()
        thread.join()
    named.submit([envelope()])
    assert len(named.claim(["q"], 1, LEASE, wait_ms=1)) == 1
    mine = [c for c in backend.conn.client_list() if c.get("name") == backend.namespace]
    assert len(mine) <= 3, "a command connection, this thread's subscription, the last thread's"
    named.close()


def test_150_threads_wait_in_claims_at_once(backend: RedisBackend) -> None:
    # A thread pool of many threads in one process: each waiting claim holds
    # a connection, which redis-py's default pool caps at 100.
    got: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        batch = backend.claim(["q"], 1, LEASE, wait_ms=30_000)
        with lock:
            got.extend(d.uuid for d in batch)

    threads = [threading.Thread(target=consume) for _ in range(150)]
    for thread in threads:
        thread.start()
    channel = backend.keys("q").wake_channel
    deadline = time.monotonic() + 30
    while backend.conn.pubsub_numsub(channel)[0][1] < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    envs = [envelope() for _ in range(150)]
    backend.submit(envs)
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(got) == sorted(e.uuid for e in envs)


def test_notify_wakes_a_listener(backend: RedisBackend) -> None:
    listener = backend.listen(["status:1", "status:2"])
    try:
        assert not listener.wait(100)
        threading.Timer(0.2, backend.notify, args=("status:2",)).start()
        assert listener.wait(30_000)
        other = RedisBackend(URL, namespace=backend.namespace + "-other")
        other.notify("status:1")
        assert not listener.wait(300), "another namespace's notification is not ours"
        other.close()
    finally:
        listener.close()


def test_notification_sent_before_waiting_is_kept(backend: RedisBackend) -> None:
    listener = backend.listen(["results:x"])
    try:
        backend.notify("results:x")
        time.sleep(0.1)
        assert listener.wait(30_000)
    finally:
        listener.close()


def test_queue_keys_share_a_hash_tag_and_stay_out_of_the_kv_space(backend: RedisBackend) -> None:
    backend.set("plain", 1)
    env = envelope()
    backend.submit([env])
    [delivery] = backend.claim(["q"], 1, LEASE)
    backend.dead_letter(delivery, b"x")
    backend.submit([envelope()])
    assert list(backend.scan()) == ["plain"]
    queue_keys = [k.decode() for k in backend.conn.scan_iter(match=f"{{{backend.namespace}:q}}*")]
    assert len(queue_keys) >= 4
    assert all(k.startswith(f"{{{backend.namespace}:q}}:") for k in queue_keys)


def test_priority_beyond_exact_scores_is_refused(backend: RedisBackend) -> None:
    with pytest.raises(ValidationError):
        backend.submit([Envelope("q", "u", 2**60, now_ms(), b"")])
    backend.submit([Envelope("q", "low", -(2**53), now_ms(), b""), envelope(priority=2**53)])
    assert backend.claim(["q"], 1, LEASE)[0].uuid == "low"


def test_listing_is_best_first_across_states(backend: RedisBackend) -> None:
    envs = [envelope(priority=2), envelope(priority=1, delay=60_000), envelope(priority=0)]
    for env in envs:
        backend.submit([env])
    backend.claim(["q"], 1, LEASE)  # the priority 0 one
    listing = [(m.uuid, m.state) for m in backend.messages("q")]
    assert listing == [
        (envs[2].uuid, "in_flight"),
        (envs[1].uuid, "delayed"),
        (envs[0].uuid, "ready"),
    ]


def test_a_client_passed_in_is_used_and_left_open(backend: RedisBackend) -> None:
    client = redis.Redis.from_url(URL)
    mine = RedisBackend(client, namespace=backend.namespace)
    mine.set("x", 1)
    lazy = RedisBackend(LazyClient(lambda: client), namespace=backend.namespace)
    assert lazy.get("x") == 1
    assert lazy.conn is client
    mine.close()
    assert client.ping()


def _count_ready(backend: RedisBackend, out: Any) -> None:
    out.put(backend.counts("q").ready)


@pytest.mark.parametrize("how", ["url", "client"])
def test_pickled_backend_works_in_a_spawned_process(backend: RedisBackend, how: str) -> None:
    backend.submit([envelope(), envelope()])
    backend.claim(["q"], 1, LEASE, wait_ms=100)  # open connections and a subscription first
    original = (
        backend if how == "url" else RedisBackend(redis.Redis.from_url(URL), backend.namespace)
    )
    assert pickle.loads(pickle.dumps(original)).counts("q").ready == 1
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_count_ready, args=(original, out))
    child.start()
    assert out.get(timeout=60) == 1
    child.join(timeout=30)


def _claim_in_child(backend: RedisBackend, out: Any) -> None:
    out.put([d.uuid for d in backend.claim(["q"], 5, LEASE, wait_ms=30_000)])


def test_a_forked_child_gets_its_own_connections(backend: RedisBackend) -> None:
    assert backend.claim(["q"], 1, LEASE, wait_ms=50) == []  # the parent's socket and subscription
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_claim_in_child, args=(backend, out))
    child.start()
    env = envelope()
    time.sleep(0.3)
    backend.submit([env])
    assert out.get(timeout=60) == [env.uuid]
    child.join(timeout=30)
    assert backend.counts("q").in_flight == 1
