"""Contract: queue operations (ordering, delays, leases, dead letters, counts)
and concurrency (many claimers, each message exactly once)."""

from __future__ import annotations

import multiprocessing
import queue as queue_lib
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from alsek_core.clock import now_ms
from alsek_core.errors import AlsekError
from alsek_core.ports import Backend, Envelope, QueueCounts

LEASE = 30_000


def envelope(
    queue: str = "q", priority: int = 0, delay: int = 0, body: bytes | None = None
) -> Envelope:
    uuid = uuid_lib.uuid4().hex
    return Envelope(
        queue, uuid, priority, now_ms() + delay, body if body is not None else uuid.encode()
    )


def drain(backend: Backend, queues: Sequence[str], lease_ms: int = LEASE) -> list[str]:
    """Claim and ack until nothing is ready; the uuids in claim order."""
    order = []
    while batch := backend.claim(queues, 1, lease_ms):
        order.append(batch[0].uuid)
        backend.ack(batch[0].queue, batch[0].uuid)
    return order


class QueueContract:
    def test_submit_then_claim_returns_payload(self, backend: Backend) -> None:
        env = envelope(body=b"\x00\xffbinary payload")
        assert backend.submit([env]) == 1
        [delivery] = backend.claim(["q"], 10, LEASE)
        assert (delivery.queue, delivery.uuid, delivery.payload) == ("q", env.uuid, env.payload)
        assert delivery.deliveries == 1
        assert backend.claim(["q"], 10, LEASE) == []

    def test_duplicate_uuid_is_skipped(self, backend: Backend) -> None:
        env = envelope()
        assert backend.submit([env]) == 1
        assert backend.submit([env]) == 0
        assert backend.counts("q").ready == 1

    def test_batch_submit(self, backend: Backend) -> None:
        envs = [envelope() for _ in range(250)]
        assert backend.submit(envs) == 250
        assert drain(backend, ["q"]) == [e.uuid for e in envs]

    def test_batch_submit_from_a_one_pass_iterator(self, backend: Backend) -> None:
        # More than one chunk of any adapter that sends as it goes, for two
        # queues interleaved: each message arrives once, in order per queue.
        envs = [envelope(queue=("q", "r")[i % 2]) for i in range(5_000)]
        assert backend.submit(e for e in envs) == 5_000
        for queue in ("q", "r"):
            assert backend.counts(queue).ready == 2_500
            claimed = backend.claim([queue], 2_500, LEASE)
            assert [d.uuid for d in claimed] == [e.uuid for e in envs if e.queue == queue]

    def test_priority_lower_first_then_fifo(self, backend: Backend) -> None:
        envs = [envelope(priority=p) for p in (5, 1, 5, 0, 1, 0)]
        for env in envs:  # one by one: submission order is the FIFO order
            backend.submit([env])
        expected = [e.uuid for e in sorted(envs, key=lambda e: e.priority)]
        assert drain(backend, ["q"]) == expected

    def test_negative_and_large_priorities(self, backend: Backend) -> None:
        envs = [envelope(priority=p) for p in (10_000, -3, 0, 2**31 - 1)]
        for env in envs:
            backend.submit([env])
        assert drain(backend, ["q"]) == [e.uuid for e in sorted(envs, key=lambda e: e.priority)]

    def test_claim_batch_respects_limit_and_order(self, backend: Backend) -> None:
        envs = [envelope(priority=i % 3) for i in range(9)]
        for env in envs:
            backend.submit([env])
        first = backend.claim(["q"], 4, LEASE)
        rest = backend.claim(["q"], 100, LEASE)
        expected = [e.uuid for e in sorted(envs, key=lambda e: e.priority)]
        assert [d.uuid for d in first] == expected[:4]
        assert [d.uuid for d in rest] == expected[4:]

    def test_queues_in_given_order(self, backend: Backend) -> None:
        a, b = envelope("a"), envelope("b", priority=-10)
        backend.submit([a, b])
        assert [d.uuid for d in backend.claim(["b", "a"], 2, LEASE)] == [b.uuid, a.uuid]

    def test_limit_spans_queues_in_order(self, backend: Backend) -> None:
        a = [envelope("a") for _ in range(2)]
        b = [envelope("b", priority=-5) for _ in range(2)]
        backend.submit(a + b)
        claimed = backend.claim(["a", "b"], 3, LEASE)
        assert [d.uuid for d in claimed] == [a[0].uuid, a[1].uuid, b[0].uuid]

    def test_reschedule_goes_behind_its_priority_peers(self, backend: Backend) -> None:
        first, second = envelope(), envelope()
        backend.submit([first])
        backend.submit([second])
        [delivery] = backend.claim(["q"], 1, LEASE)
        assert delivery.uuid == first.uuid
        assert backend.reschedule(delivery, delivery.payload, now_ms())
        assert drain(backend, ["q"]) == [second.uuid, first.uuid]

    def test_queue_name_is_not_a_prefix(self, backend: Backend) -> None:
        backend.submit([envelope("q10")])
        assert backend.claim(["q1"], 10, LEASE) == []
        assert backend.counts("q1") == QueueCounts()
        assert len(backend.claim(["q10"], 10, LEASE)) == 1

    def test_delayed_not_claimable_before_ready_at(self, backend: Backend) -> None:
        env = envelope(delay=600)
        backend.submit([env])
        assert backend.claim(["q"], 10, LEASE) == []
        assert backend.counts("q").delayed == 1
        time.sleep(0.8)
        assert [d.uuid for d in backend.claim(["q"], 10, LEASE)] == [env.uuid]

    def test_expired_lease_is_claimable_again(self, backend: Backend) -> None:
        env = envelope()
        backend.submit([env])
        [first] = backend.claim(["q"], 1, 300)
        assert backend.claim(["q"], 1, 300) == []
        time.sleep(0.6)
        [again] = backend.claim(["q"], 1, LEASE)
        assert again.uuid == env.uuid
        assert again.deliveries == 2
        assert again.token != first.token
        assert not backend.extend_lease(first, LEASE), "a lost lease cannot be extended"
        assert not backend.reschedule(first, b"stale", now_ms()), "nor released by its old holder"

    def test_extend_lease_keeps_message(self, backend: Backend) -> None:
        backend.submit([envelope()])
        [delivery] = backend.claim(["q"], 1, 400)
        for _ in range(3):
            time.sleep(0.2)
            assert backend.extend_lease(delivery, 400)
        assert backend.claim(["q"], 1, LEASE) == []

    def test_ack_is_idempotent(self, backend: Backend) -> None:
        env = envelope()
        backend.submit([env])
        [delivery] = backend.claim(["q"], 1, LEASE)
        backend.ack("q", delivery.uuid)
        backend.ack("q", delivery.uuid)
        backend.ack("q", "never-existed")
        assert not backend.contains("q", env.uuid)
        assert backend.counts("q") == QueueCounts()

    def test_ack_many(self, backend: Backend) -> None:
        envs = [envelope() for _ in range(5)]
        backend.submit(envs)
        claimed = backend.claim(["q"], 3, LEASE)
        backend.ack_many("q", [d.uuid for d in claimed] + [envs[3].uuid, "never-existed"])
        backend.ack_many("q", [])
        assert [m.uuid for m in backend.messages("q")] == [envs[4].uuid]
        backend.ack_many("q", [envs[4].uuid, envs[4].uuid])
        assert backend.counts("q") == QueueCounts()

    def test_reschedule_updates_payload_and_ready_at(self, backend: Backend) -> None:
        backend.submit([envelope(body=b"v1")])
        [delivery] = backend.claim(["q"], 1, LEASE)
        assert backend.reschedule(delivery, b"v2", now_ms() + 500)
        assert backend.claim(["q"], 1, LEASE) == []
        assert backend.counts("q").delayed == 1
        time.sleep(0.7)
        [again] = backend.claim(["q"], 1, LEASE)
        assert again.payload == b"v2"
        assert again.deliveries == 1, "a recorded outcome resets the delivery count"

    def test_reschedule_now_is_claimable_at_once(self, backend: Backend) -> None:
        backend.submit([envelope()])
        [delivery] = backend.claim(["q"], 1, LEASE)
        assert backend.reschedule(delivery, delivery.payload, now_ms())
        assert len(backend.claim(["q"], 1, LEASE)) == 1

    def test_dead_letter(self, backend: Backend) -> None:
        env = envelope()
        backend.submit([env, envelope()])
        [delivery] = backend.claim(["q"], 1, LEASE)
        assert backend.dead_letter(delivery, b"failed payload")
        assert not backend.contains("q", env.uuid)
        assert backend.counts("q").dead == 1
        [dead] = list(backend.messages("q", dead=True))
        assert (dead.uuid, dead.payload, dead.state) == (env.uuid, b"failed payload", "dead")
        assert backend.remove_dead("q", env.uuid)
        assert not backend.remove_dead("q", env.uuid)
        assert backend.counts("q").dead == 0

    def test_counts_and_listing(self, backend: Backend) -> None:
        ready = [envelope(priority=1), envelope(priority=0)]
        delayed = envelope(delay=60_000)
        backend.submit([*ready, delayed])
        [in_flight] = backend.claim(["q"], 1, LEASE)
        assert backend.counts("q") == QueueCounts(ready=1, delayed=1, in_flight=1, dead=0)
        listing = {m.uuid: m.state for m in backend.messages("q")}
        assert listing == {
            ready[0].uuid: "ready",
            delayed.uuid: "delayed",
            in_flight.uuid: "in_flight",
        }
        assert backend.queue_names() == ["q"]
        assert backend.contains("q", delayed.uuid)

    def test_counts_tell_every_state_apart(self, backend: Backend) -> None:
        backend.submit([envelope() for _ in range(8)] + [envelope(delay=60_000) for _ in range(2)])
        claimed = backend.claim(["q"], 5, LEASE)
        for delivery in claimed[:4]:
            assert backend.dead_letter(delivery, delivery.payload)
        assert backend.counts("q") == QueueCounts(ready=3, delayed=2, in_flight=1, dead=4)

    def test_submit_in_transaction_refuses_what_is_no_connection(self, backend: Backend) -> None:
        """Optional capability: a backend without it says so; one with it
        refuses anything but its own kind of connection. Either way, clearly."""
        env = envelope()
        with pytest.raises(AlsekError):
            backend.submit_in_transaction([env], object())
        assert not backend.contains("q", env.uuid)

    def test_queue_names_sorted(self, backend: Backend) -> None:
        backend.submit([envelope("zeta"), envelope("alpha"), envelope("mid")])
        assert backend.queue_names() == ["alpha", "mid", "zeta"]

    def test_purge(self, backend: Backend) -> None:
        backend.submit([envelope() for _ in range(5)] + [envelope("other")])
        backend.claim(["q"], 2, LEASE)
        assert backend.purge("q") == 5
        assert backend.counts("q") == QueueCounts()
        assert backend.counts("other").ready == 1

    def test_wait_returns_when_empty(self, backend: Backend) -> None:
        started = time.monotonic()
        assert backend.claim(["q"], 1, LEASE, wait_ms=300) == []
        assert time.monotonic() - started < 5


def _claim_all(factory: Callable[[], Backend], queue: str, barrier: Any, out: Any) -> None:
    """Claim and ack until the queue stays empty; report what was claimed."""
    backend = factory()
    got: list[str] = []
    barrier.wait()
    idle = 0
    while idle < 3:
        batch = backend.claim([queue], 16, LEASE)
        if not batch:
            idle += 1
            time.sleep(0.05)
            continue
        idle = 0
        for delivery in batch:
            got.append(delivery.uuid)
            backend.ack(queue, delivery.uuid)
    out.put(got)


class ConcurrencyContract:
    messages = 2000
    workers = 4

    def test_concurrent_claimers_get_each_message_once(
        self, backend: Backend, backend_factory: Callable[[], Backend], process_local: bool
    ) -> None:
        envs = [envelope("conc") for _ in range(self.messages)]
        for start in range(0, len(envs), 200):
            backend.submit(envs[start : start + 200])
        barrier: Any
        out: Any
        if not process_local:
            ctx = multiprocessing.get_context("spawn")
            barrier, out = ctx.Barrier(self.workers), ctx.Queue()
            workers: list[Any] = [
                ctx.Process(target=_claim_all, args=(backend_factory, "conc", barrier, out))
                for _ in range(self.workers)
            ]
        else:
            barrier, out = threading.Barrier(self.workers), queue_lib.Queue[list[str]]()
            workers = [
                threading.Thread(target=_claim_all, args=(backend_factory, "conc", barrier, out))
                for _ in range(self.workers)
            ]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=240) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        claimed = [u for r in results for u in r]
        assert len(claimed) == len(set(claimed)), "a message was delivered twice"
        assert sorted(claimed) == sorted(e.uuid for e in envs), "a message was lost"
