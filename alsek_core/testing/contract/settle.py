"""Contract: ``Queue.settle``, the outcome of a claimed message in one call
(see ``ports.Settlement``), written through the stores a user constructs."""

from __future__ import annotations

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Backend, Settlement
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus

LEASE = 30_000


def claimed(backend: Backend, broker: Broker, message: Message) -> Message:
    broker.submit(message)
    [delivery] = backend.claim([message.queue], 1, LEASE)
    return broker.open(delivery)


class SettleContract:
    def test_success_writes_result_callback_status_and_removes(self, backend: Backend) -> None:
        broker, statuses, results = Broker(backend), StatusTracker(backend), ResultStore(backend)
        message = claimed(backend, broker, Message("job", queue="settle"))
        callback = Message("next", queue="settle-next", progenitor_uuid=message.uuid)
        assert message.delivery is not None
        settlement = Settlement(
            message.delivery,
            status=statuses.write(message, TaskStatus.SUCCEEDED),
            result=results.write(message, {"answer": 42}),
            callback=broker.envelope(callback),
        )
        try:
            assert backend.settle([settlement]) == [True]
            assert backend.settle([settlement]) == [True]  # a rerun's settle changes nothing
            assert not backend.contains("settle", message.uuid)
            assert backend.counts("settle-next").ready == 1
            assert statuses.get(message) == TaskStatus.SUCCEEDED
            assert results.get(message) == {"answer": 42}
        finally:
            statuses.remove(message.uuid)
            results.delete(message, descendants=False, missing_ok=True)

    def test_the_first_result_stays(self, backend: Backend) -> None:
        broker, results = Broker(backend), ResultStore(backend)
        message = claimed(backend, broker, Message("job", queue="settle"))
        assert message.delivery is not None
        first = Settlement(message.delivery, result=results.write(message, "first"))
        rerun = Settlement(message.delivery, result=results.write(message, "rerun"))
        assert backend.settle([first, rerun]) == [True, True]
        assert results.get(message) == "first"

    def test_retry_releases_with_the_new_payload(self, backend: Backend) -> None:
        broker, statuses = Broker(backend), StatusTracker(backend)
        message = claimed(backend, broker, Message("job", queue="settle"))
        assert message.delivery is not None
        message.increment_retries()
        settlement = Settlement(message.delivery, status=statuses.write(message, TaskStatus.RETRYING),
                                payload=broker.encode(message), ready_at=0)
        try:
            assert backend.settle([settlement]) == [True]
            [again] = backend.claim(["settle"], 1, LEASE)
            assert broker.decode(again.payload).retries == 1
            assert statuses.get(message) == TaskStatus.RETRYING
            assert backend.settle([settlement]) == [False]  # that lease is gone
        finally:
            statuses.remove(message.uuid)

    def test_failure_dead_letters(self, backend: Backend) -> None:
        broker, statuses = Broker(backend), StatusTracker(backend)
        message = claimed(backend, broker, Message("job", queue="settle"))
        assert message.delivery is not None
        settlement = Settlement(message.delivery, status=statuses.write(message, TaskStatus.FAILED),
                                payload=broker.encode(message), dead=True)
        try:
            assert backend.settle([settlement]) == [True]
            assert [d.uuid for d in broker.dead_letters("settle")] == [message.uuid]
            assert statuses.get(message) == TaskStatus.FAILED
        finally:
            statuses.remove(message.uuid)

    def test_a_batch_settles_each_message_its_own_way(self, backend: Backend) -> None:
        """Successes of two queues, a retry, a failure and a retry whose lease
        was lost, in one call: a worker pool settles its batch so."""
        broker, statuses, results = Broker(backend), StatusTracker(backend), ResultStore(backend)
        done = [claimed(backend, broker, Message("job", queue=q)) for q in ("settle", "settle", "settle-b")]
        retried, failed, lost = (claimed(backend, broker, Message("job", queue="settle")) for _ in range(3))
        for m in (retried, lost):
            m.increment_retries()
        assert lost.delivery is not None
        stale = lost.delivery
        assert backend.reschedule(stale, broker.encode(lost), 0)
        [again] = backend.claim(["settle"], 1, LEASE)  # another worker holds it now
        batch = [
            *(Settlement(m.delivery, status=statuses.write(m, TaskStatus.SUCCEEDED), result=results.write(m, i))
              for i, m in enumerate(done) if m.delivery is not None),
            Settlement(retried.delivery, status=statuses.write(retried, TaskStatus.RETRYING),  # type: ignore[arg-type]
                       payload=broker.encode(retried), ready_at=0),
            Settlement(failed.delivery, status=statuses.write(failed, TaskStatus.FAILED),  # type: ignore[arg-type]
                       payload=broker.encode(failed), dead=True),
            Settlement(stale, payload=broker.encode(lost), ready_at=0),
        ]
        try:
            assert backend.settle(batch) == [True, True, True, True, True, False]
            assert [results.get(m) for m in done] == [0, 1, 2]
            assert {statuses.get(m) for m in done} == {TaskStatus.SUCCEEDED}
            assert not any(backend.contains(m.queue, m.uuid) for m in done)
            assert statuses.get(retried) == TaskStatus.RETRYING and backend.contains("settle", retried.uuid)
            assert [d.uuid for d in broker.dead_letters("settle")] == [failed.uuid]
            assert statuses.get(failed) == TaskStatus.FAILED
            assert backend.extend_lease(again, LEASE), "the lost lease's settlement left the new holder alone"
        finally:
            for m in (*done, retried, failed):
                statuses.remove(m.uuid)
            for m in done:
                results.delete(m, descendants=False, missing_ok=True)
