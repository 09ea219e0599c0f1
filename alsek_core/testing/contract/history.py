"""Contract: the job history (``ports.History``), written through the Broker
as a pool's batching broker writes it, and bounded in count per queue and
kind whatever the backend."""

from __future__ import annotations

import time

from alsek_core.broker import Broker
from alsek_core.history import NO_HISTORY, Retention
from alsek_core.message import Message
from alsek_core.middleware import Outcome
from alsek_core.ports import Backend


def _finish(broker: Broker, message: Message, state: str) -> None:
    now = time.time()
    broker.record_finished(message, Outcome(state, now, now + 0.25, attempt=1))


class HistoryContract:
    def test_finished_messages_are_kept_and_found(self, backend: Backend) -> None:
        broker = Broker(backend).batching()
        broker.worker = "host-1-abc/0"
        ok, bad = Message("job", queue="hist"), Message("job", queue="hist")
        bad.exception_details = {"name": "ValueError", "text": "boom", "traceback": "Traceback ...\nValueError: boom"}
        _finish(broker, ok, "succeeded")
        _finish(broker, bad, "failed")
        assert broker.history("hist") == []  # batched until the flush
        broker.flush_acks()
        assert [e.uuid for e in broker.history("hist", "succeeded")] == [ok.uuid]
        [failed] = broker.history("hist", "failed")
        assert failed.uuid == bad.uuid and failed.exception == bad.exception_details
        assert failed.worker == "host-1-abc/0" and failed.attempts == 1 and failed.task == "job"
        assert failed.started_at is not None and failed.submitted_at <= failed.started_at <= failed.finished_at
        assert broker.history_entry(ok.uuid) == broker.history_entry(ok.uuid, "hist")
        assert broker.history_entry(ok.uuid) is not None and broker.history_entry("no-such-uuid") is None
        assert "hist" in broker.history_queues()

    def test_the_count_never_exceeds_the_cap(self, backend: Backend) -> None:
        broker = Broker(backend, history=Retention(succeeded_max=5, failed_max=2))
        for _ in range(3):
            batching = broker.batching()
            for _ in range(4):
                _finish(batching, Message("job", queue="capped"), "succeeded")
                _finish(batching, Message("job", queue="capped"), "dead")
            batching.flush_acks()
            assert len(backend.history_of("capped", "succeeded", 100)) <= 5
            assert len(backend.history_of("capped", "failed", 100)) <= 2
        assert len(broker.history("capped", "succeeded", limit=100)) == 5
        assert {e.state for e in broker.history("capped", "failed", limit=100)} == {"dead"}
        assert len(broker.history("capped", limit=100)) == 7

    def test_zero_keeps_nothing(self, backend: Backend) -> None:
        broker = Broker(backend, history=Retention(succeeded_ms=0))
        _finish(broker, Message("job", queue="nothing"), "succeeded")
        _finish(Broker(backend, history=NO_HISTORY), Message("job", queue="nothing"), "failed")
        assert broker.history("nothing") == []
