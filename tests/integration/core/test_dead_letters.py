"""Dead letters on every registered backend: whatever a payload holds, it is
listed under its row's id, can be retried or purged by that id, and a
payload that names another message than its row is dead-lettered instead of
running unacked forever."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.consumer import Consumer
from alsek_core.message import Message
from alsek_core.ports import Backend, Envelope
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task, task
from alsek_core.testing.runner import run_until_empty

QUEUE = "dlq"
GARBAGE = b"\x00\xff\x1b[2J not a message \xe2\x80\xae"


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return Broker(backend)


@pytest.fixture
def tracker(backend: Backend) -> StatusTracker:
    return StatusTracker(backend)


@pytest.fixture
def ran() -> list[Any]:
    return []


@pytest.fixture
def echo(broker: Broker, tracker: StatusTracker, ran: list[Any]) -> Task:
    @task(broker, queue=QUEUE, status_tracker=tracker, mechanism="thread")
    def echo(x: Any) -> Any:
        ran.append(x)
        return x

    return echo


def raw(broker: Broker, uuid: str, payload: bytes, queue: str = QUEUE) -> None:
    assert broker.backend.submit([Envelope(queue, uuid, 0, now_ms(), payload)]) == 1


def payload_of(broker: Broker, message: Message, **changes: Any) -> bytes:
    data = {**message.data, **changes}
    return broker.backend.serializer.dumps({k: v for k, v in data.items() if v is not Ellipsis})


def test_a_payload_nested_too_deeply_to_decode_is_dead_lettered(broker: Broker, echo: Task) -> None:
    raw(broker, "row-deep", b"[" * 100_000 + b"]" * 100_000)  # before: RecursionError stalled the claim loop
    assert Consumer(broker, subset=[QUEUE], wait_ms=0).claim(1) == []
    [dead] = broker.dead_letters(QUEUE)
    assert (dead.uuid, dead.message) == ("row-deep", None)
    assert dead.exception_details is not None and dead.exception_details["name"] == "SerializationError"


def test_an_undecodable_payload_is_listed_retried_as_it_was_and_purged(broker: Broker, echo: Task) -> None:
    raw(broker, "row-garbage", GARBAGE)
    assert Consumer(broker, subset=[QUEUE], wait_ms=0).claim(1) == []
    [dead] = broker.dead_letters(QUEUE)
    assert (dead.queue, dead.uuid, dead.payload, dead.message) == (QUEUE, "row-garbage", GARBAGE, None)
    assert dead.task_name == "(undecodable)"
    assert dead.exception_details is not None and dead.exception_details["name"] == "SerializationError"
    assert broker.counts(QUEUE).dead == 1

    broker.replay(dead)  # the bytes as they were: it fails again unless the code changed
    assert broker.dead_letters(QUEUE) == [] and broker.counts(QUEUE).ready == 1
    [queued] = list(broker.backend.messages(QUEUE))
    assert (queued.uuid, queued.payload) == ("row-garbage", GARBAGE)
    run_until_empty([echo], timeout=10)
    [dead] = broker.dead_letters(QUEUE)
    assert broker.remove_dead_letter(dead)
    assert broker.dead_letters(QUEUE) == [] and broker.counts(QUEUE).dead == 0
    assert not broker.remove_dead_letter(dead)


@pytest.mark.parametrize(
    "changes",
    [{"uuid": Ellipsis}, {"uuid": None}, {"uuid": "someone-else"}, {"queue": "elsewhere"}],
    ids=["uuid-missing", "uuid-null", "uuid-differs", "queue-differs"],
)
def test_a_payload_that_names_another_message_is_dead_lettered_under_its_row(
    broker: Broker, tracker: StatusTracker, echo: Task, ran: list[Any], changes: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = Message(echo.name, queue=QUEUE, args=["row"])
    raw(broker, message.uuid, payload_of(broker, message, **changes))
    with caplog.at_level(logging.ERROR):
        run_until_empty([echo], timeout=10)  # before: it ran, was never acked, and stayed in flight
    assert ran == []
    assert broker.counts(QUEUE) == type(broker.counts(QUEUE))(dead=1)
    [dead] = broker.dead_letters(QUEUE)
    assert (dead.queue, dead.uuid, dead.task_name) == (QUEUE, message.uuid, echo.name)
    assert dead.exception_details is not None and "its row" in dead.exception_details["text"]
    assert tracker.get(message) == TaskStatus.FAILED
    assert message.uuid in caplog.text and "its row" in caplog.text

    broker.replay(dead)  # retried under the id the listing shows
    run_until_empty([echo], timeout=10)
    assert ran == ["row"] and tracker.get(message) == TaskStatus.SUCCEEDED
    assert broker.counts(QUEUE) == type(broker.counts(QUEUE))()


def test_replay_keeps_the_dead_letter_when_the_message_is_queued_again(broker: Broker, echo: Task) -> None:
    message = echo.generate(args=[1])
    message.delivery = broker.claim([QUEUE], 1, 60_000)[0]
    broker.fail(message, RuntimeError("no"))
    [dead] = broker.dead_letters(QUEUE)
    broker.submit(Message(echo.name, queue=QUEUE, uuid=message.uuid))
    with pytest.raises(Exception, match="already queued"):
        broker.replay(dead)
    assert broker.dead_letters(QUEUE) == [dead]
