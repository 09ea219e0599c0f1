"""Contract: pausing a queue (``Broker.pause`` and friends, on key-value flags).
A paused queue keeps its messages; only claims through a consumer skip it."""

from __future__ import annotations

import time

import pytest

from alsek_core.broker import Broker
from alsek_core.consumer import Consumer
from alsek_core.errors import ValidationError
from alsek_core.message import Message
from alsek_core.ports import Backend


def claimed_within(consumer: Consumer, seconds: float) -> list[Message]:
    """Claim until something comes or ``seconds`` pass (a generous bound)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if messages := consumer.claim(10):
            return messages
    return []


class PauseContract:
    def test_pause_and_resume_set_and_clear_the_flag(self, backend: Backend) -> None:
        broker = Broker(backend)
        assert not broker.is_paused("pq") and broker.paused() == []
        broker.pause("pq")
        broker.pause("pq")  # idempotent
        broker.pause("pq2")
        assert broker.is_paused("pq") and broker.paused() == ["pq", "pq2"]
        assert Broker(backend).claimable(["pq", "other", "pq2"]) == ["other"]
        broker.resume("pq")
        broker.resume("pq")
        assert not broker.is_paused("pq") and broker.paused() == ["pq2"]
        assert Broker(backend).claimable(["pq", "pq2"]) == ["pq"]

    def test_invalid_queue_name_is_refused(self, backend: Backend) -> None:
        broker = Broker(backend)
        for bad in ("", "a:b", "x*", None):
            with pytest.raises(ValidationError):
                broker.pause(bad)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                broker.is_paused(bad)  # type: ignore[arg-type]

    def test_a_paused_queue_keeps_its_messages_until_resumed(self, backend: Backend) -> None:
        broker = Broker(backend)
        broker.pause("pq")
        message = broker.submit(Message("job", queue="pq"))
        delayed = broker.submit(Message("job", queue="pq", delay=3_600_000))
        consumer = Consumer(Broker(backend), subset=["pq"], wait_ms=100)
        assert consumer.claim(10) == []
        assert broker.counts("pq").ready == 1 and broker.counts("pq").delayed == 1
        broker.resume("pq")
        [got] = claimed_within(consumer, 30)
        assert got.uuid == message.uuid
        assert broker.counts("pq").delayed == 1 and broker.contains("pq", delayed.uuid)
