"""Contract: unique keys (``Queue.submit_unique`` / ``release_unique``). A key is
held by at most one queued message of its queue: taken with the enqueue,
freed when its holder settles for good or its window ends."""

from __future__ import annotations

import threading
import time

import pytest

from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.errors import DuplicateMessageError, MessageAlreadyExistsError
from alsek_core.message import Message
from alsek_core.ports import Backend, Delivery, Settlement
from alsek_core.testing.contract.queue import LEASE, envelope

SUBMITTERS = 16


def until_taken(backend: Backend, queue: str, key: str, window_ms: int | None) -> str:
    """Submit under ``key`` until it is queued (generous: a window of ms ends
    whenever the storage's clock says so); the uuid queued."""
    deadline = time.monotonic() + 30
    while True:
        env = envelope(queue)
        if backend.submit_unique(env, key, window_ms) is None:
            return env.uuid
        assert time.monotonic() < deadline, f"key {key!r} was never freed"
        time.sleep(0.05)


class UniqueContract:
    def test_one_of_many_concurrent_submits_is_queued(self, backend: Backend) -> None:
        envs = [envelope("uq") for _ in range(SUBMITTERS)]
        barrier = threading.Barrier(SUBMITTERS)
        holders: list[str | None] = [None] * SUBMITTERS

        def submit(i: int) -> None:
            barrier.wait()
            holders[i] = backend.submit_unique(envs[i], "k", None)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        queued = [env.uuid for env, holder in zip(envs, holders, strict=True) if holder is None]
        assert len(queued) == 1, f"{len(queued)} messages queued under one key"
        assert {holder for holder in holders if holder is not None} == set(queued)
        assert backend.counts("uq").ready == 1

    def test_second_submit_names_the_holder(self, backend: Backend) -> None:
        first, second = envelope("uq"), envelope("uq")
        assert backend.submit_unique(first, "k", None) is None
        assert backend.submit_unique(second, "k", None) == first.uuid
        assert not backend.contains("uq", second.uuid)

    def test_keys_are_per_queue(self, backend: Backend) -> None:
        assert backend.submit_unique(envelope("uq"), "k", None) is None
        assert backend.submit_unique(envelope("uq2"), "k", None) is None
        assert backend.submit_unique(envelope("uq"), "other", None) is None

    def test_same_uuid_again_is_not_taken_twice(self, backend: Backend) -> None:
        env = envelope("uq")
        assert backend.submit([env]) == 1
        assert backend.submit_unique(env, "k", None) == env.uuid
        assert backend.counts("uq").ready == 1
        assert backend.submit_unique(envelope("uq"), "k", None) is None  # the key was left free

    def test_freed_when_released_by_its_holder_only(self, backend: Backend) -> None:
        held = envelope("uq")
        assert backend.submit_unique(held, "k", None) is None
        assert not backend.release_unique("uq", "k", "someone-else")
        assert backend.submit_unique(envelope("uq"), "k", None) == held.uuid
        assert backend.release_unique("uq", "k", held.uuid)
        assert not backend.release_unique("uq", "k", held.uuid)  # idempotent
        nxt = envelope("uq")
        assert backend.submit_unique(nxt, "k", None) is None
        assert not backend.release_unique("uq", "k", held.uuid)  # another holds it now
        assert backend.submit_unique(envelope("uq"), "k", None) == nxt.uuid

    def test_held_while_in_flight_or_retrying(self, backend: Backend) -> None:
        held = envelope("uq")
        assert backend.submit_unique(held, "k", None) is None
        [delivery] = backend.claim(["uq"], 1, LEASE)
        assert backend.submit_unique(envelope("uq"), "k", None) == held.uuid
        assert backend.reschedule(delivery, delivery.payload, now_ms() + 60_000)
        assert backend.submit_unique(envelope("uq"), "k", None) == held.uuid

    def test_a_holder_gone_without_release_frees_the_key(self, backend: Backend) -> None:
        """A worker that died between settling and freeing (or a purge, a dead
        letter) leaves a key whose holder is gone: it is free."""
        for end in ("ack", "dead_letter", "purge"):
            held = envelope("uq")
            assert backend.submit_unique(held, "k", None) is None
            [delivery] = backend.claim(["uq"], 1, LEASE)
            if end == "ack":
                backend.ack("uq", held.uuid)
            elif end == "dead_letter":
                assert backend.dead_letter(delivery, delivery.payload)
            else:
                backend.purge("uq")
            nxt = envelope("uq")
            assert backend.submit_unique(nxt, "k", None) is None, end
            backend.purge("uq")

    def test_freed_when_its_window_ends(self, backend: Backend) -> None:
        held = envelope("uq")
        assert backend.submit_unique(held, "k", 300) is None
        assert backend.submit_unique(envelope("uq"), "k", 300) == held.uuid
        until_taken(backend, "uq", "k", 300)
        assert backend.contains("uq", held.uuid)  # the window frees the key, not the message
        assert backend.counts("uq").ready == 2

    def test_broker_raises_duplicate_and_frees_on_settle(self, backend: Backend) -> None:
        broker = Broker(backend)
        first = broker.submit(Message("job", queue="uq", unique_key="k"))
        with pytest.raises(DuplicateMessageError) as raised:
            broker.submit(Message("job", queue="uq", unique_key="k"))
        assert raised.value.existing_uuid == first.uuid
        assert isinstance(raised.value, MessageAlreadyExistsError)
        with pytest.raises(MessageAlreadyExistsError) as again:
            broker.submit(first)
        assert not isinstance(again.value, DuplicateMessageError)
        [delivery] = broker.claim(["uq"], 1, LEASE)
        message = broker.open(delivery)
        assert message.unique_key == "k"
        assert broker.settle(_removal(delivery), message)
        broker.submit(Message("job", queue="uq", unique_key="k"))

    def test_broker_frees_on_failure(self, backend: Backend) -> None:
        broker = Broker(backend)
        broker.submit(Message("job", queue="uq", unique_key="k"))
        [delivery] = broker.claim(["uq"], 1, LEASE)
        broker.fail(broker.open(delivery), RuntimeError("boom"))
        assert broker.in_dlq(Message("job", queue="uq", uuid=delivery.uuid))
        broker.submit(Message("job", queue="uq", unique_key="k"))



    def test_broker_frees_on_revoke(self, backend: Backend) -> None:
        broker = Broker(backend)
        delayed = broker.submit(Message("job", queue="uq", unique_key="k", delay=3_600_000))
        broker.revoke(delayed)
        broker.submit(Message("job", queue="uq", unique_key="k"))


def _removal(delivery: Delivery) -> Settlement:
    """An outcome that writes nothing: the message is done."""
    return Settlement(delivery)
