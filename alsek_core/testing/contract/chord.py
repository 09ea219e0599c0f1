"""Contract: a chord's join (``ports.ChordJoin``), applied by ``Queue.settle``
with each member's outcome: every member counted once however often its
settlement is applied, the parked callback released exactly once, by the
member completing the set, and never brought back by a rerun."""

from __future__ import annotations

import threading
from dataclasses import replace

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Backend, ChordJoin, Settlement

LEASE = 30_000
QUEUE, CALLBACKS = "chord-members", "chord-callbacks"


def parked_chord(backend: Backend, size: int) -> tuple[Message, list[Settlement]]:
    """A parked callback and the success settlements of ``size`` claimed members."""
    broker = Broker(backend)
    callback = Message("callback", queue=CALLBACKS)
    broker.park(callback)
    broker.submit_many(Message("member", queue=QUEUE) for _ in range(size))
    deliveries = backend.claim([QUEUE], size, LEASE)
    assert len(deliveries) == size
    settlements = [
        Settlement(delivery, join=ChordJoin(CALLBACKS, callback.uuid, index, size, f"r{index}".encode()))
        for index, delivery in enumerate(deliveries)
    ]
    return callback, settlements


def released(backend: Backend) -> int:
    return len(backend.claim([CALLBACKS], 10, LEASE))


class ChordJoinContract:
    def test_each_member_counts_once(self, backend: Backend) -> None:
        callback, settlements = parked_chord(backend, 3)
        try:
            first, second, third = settlements
            assert backend.settle([first, first, second]) == [True, True, True]
            assert backend.settle([second]) == [True]  # a redelivered member settling again
            assert released(backend) == 0  # two of three: still parked
            assert backend.counts(CALLBACKS).delayed == 1
            assert backend.settle([third]) == [True]
            assert backend.joined(CALLBACKS, callback.uuid) == {0: b"r0", 1: b"r1", 2: b"r2"}
            [delivery] = backend.claim([CALLBACKS], 10, LEASE)
            assert delivery.uuid == callback.uuid
            backend.ack(CALLBACKS, callback.uuid)  # the callback ran
            assert backend.settle(settlements) == [True] * 3  # reruns of every member
            assert backend.counts(CALLBACKS).ready + backend.counts(CALLBACKS).delayed == 0
        finally:
            backend.forget_join(CALLBACKS, callback.uuid)

    def test_completion_exactly_once_under_concurrent_settlers(self, backend: Backend) -> None:
        size, rounds = 24, 3
        callback, settlements = parked_chord(backend, size)
        start = threading.Barrier(size)
        errors: list[BaseException] = []

        def settle(settlement: Settlement) -> None:
            try:
                start.wait()
                for _ in range(rounds):  # the member, and reruns of it racing the others
                    backend.settle([settlement])
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=settle, args=(s,)) for s in settlements]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert sorted(backend.joined(CALLBACKS, callback.uuid)) == list(range(size))
            assert released(backend) == 1
            backend.ack(CALLBACKS, callback.uuid)
            assert backend.settle(settlements) == [True] * size
            assert released(backend) == 0
        finally:
            backend.forget_join(CALLBACKS, callback.uuid)

    def test_a_failure_drops_the_callback(self, backend: Backend) -> None:
        callback, (first, second) = parked_chord(backend, 2)
        assert first.join is not None
        failed = replace(first, join=replace(first.join, drop=True))
        try:
            assert backend.settle([failed]) == [True]
            assert not backend.contains(CALLBACKS, callback.uuid)
            assert backend.settle([second, failed]) == [True, True]  # complete: nothing to release
            assert released(backend) == 0
            assert sorted(backend.joined(CALLBACKS, callback.uuid)) == [0, 1]
        finally:
            backend.forget_join(CALLBACKS, callback.uuid)

    def test_the_join_is_forgotten(self, backend: Backend) -> None:
        callback, [only] = parked_chord(backend, 1)
        assert backend.settle([only]) == [True]
        assert backend.joined(CALLBACKS, callback.uuid) == {0: b"r0"}
        backend.forget_join(CALLBACKS, callback.uuid)
        backend.forget_join(CALLBACKS, callback.uuid)
        assert backend.joined(CALLBACKS, callback.uuid) == {}
