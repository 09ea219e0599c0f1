"""Unique tasks: what a declaration refuses, how a key is made, and the
crash story of the five-method path (a key taken by a submitter that died
before queueing its message blocks no longer than its pending lifetime)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from alsek_backends.memory.backend import MemoryBackend
from alsek_core.broker import Broker
from alsek_core.errors import DuplicateMessageError, ValidationError
from alsek_core.group import group
from alsek_core.message import Message
from alsek_core.task import task


@pytest.fixture
def broker() -> Broker:
    return Broker(MemoryBackend(namespace=f"unique-{uuid.uuid4().hex[:8]}"))


def _job(x: Any = None) -> Any:
    return x


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"unique_key": "name"}, "unique_key must be a function of the message returning a str, or True"),
        ({"unique_key": False}, "unique_key must be a function"),
        ({"unique_key": True, "unique_for": -1}, "unique_for must be positive, got -1"),
        ({"unique_key": True, "unique_for": 0}, "unique_for must be positive"),
        ({"unique_key": True, "unique_for": timedelta(seconds=-5)}, "unique_for must be positive"),
        ({"unique_key": True, "unique_for": 1.5}, "unique_for must be an int (ms) or a timedelta"),
        ({"unique_key": True, "unique_for": True}, "unique_for must be an int (ms) or a timedelta"),
        ({"unique_for": 1000}, "unique_for is the window of a unique key: give unique_key too"),
    ],
)
def test_bad_declarations_are_refused(broker: Broker, options: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        task(broker, **options)(_job)


def test_a_key_function_must_return_a_non_empty_str(broker: Broker) -> None:
    bad = task(broker, unique_key=lambda message: None)(_job)
    with pytest.raises(ValidationError, match="must return a non-empty str, got None"):
        bad.generate()
    assert broker.counts("alsek_queue").ready == 0


def test_true_keys_by_task_and_arguments(broker: Broker) -> None:
    job = task(broker, unique_key=True, unique_for=timedelta(minutes=1))(_job)
    assert job.unique_for == 60_000
    first = job.generate(args=[1])
    with pytest.raises(DuplicateMessageError) as raised:
        job.generate(args=[1])
    assert raised.value.existing_uuid == first.uuid
    job.generate(args=[2])
    job.generate(kwargs={"x": 1})
    other = task(broker, name="other", unique_key=True)(_job)
    other.generate(args=[1])
    assert broker.counts("alsek_queue").ready == 4


def test_a_key_function_sees_the_message(broker: Broker) -> None:
    job = task(broker, unique_key=lambda message: f"user:{message.kwargs['x']}")(_job)
    made = job.generate(kwargs={"x": 5})
    assert made.unique_key == "user:5"
    with pytest.raises(DuplicateMessageError):
        job.generate(kwargs={"x": 5})


def test_generate_many_skips_held_keys(broker: Broker) -> None:
    job = task(broker, unique_key=True)(_job)
    job.generate_many([[1], [1], [2]])
    assert broker.counts("alsek_queue").ready == 2


def test_a_unique_message_cannot_join_a_group(broker: Broker) -> None:
    job = task(broker, unique_key=True)(_job)
    with pytest.raises(ValidationError, match="is of a unique task: it cannot join a group"):
        group([job.generate(args=[1], submit=False)])
    assert broker.counts("alsek_queue").ready == 0


def test_a_unique_message_cannot_join_a_callers_transaction(broker: Broker) -> None:
    with pytest.raises(ValidationError, match="cannot be submitted inside a caller's transaction"):
        broker.submit(Message("t", unique_key="k"), connection=object())


def test_a_pending_key_of_a_dead_submitter_blocks_only_until_it_expires(broker: Broker) -> None:
    """What a submitter leaves when it dies between taking the key and
    queueing: an unconfirmed key, with a TTL of at most ``kv_queue.PENDING_MS``
    (here a short one, written by hand)."""
    backend = broker.backend
    backend.set("unique:alsek_queue:k", {"u": "never-queued", "c": False}, ttl=300)
    with pytest.raises(DuplicateMessageError):
        broker.submit(Message("t", unique_key="k"))
    deadline = time.monotonic() + 30
    while True:
        try:
            broker.submit(Message("t", unique_key="k"))
            break
        except DuplicateMessageError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
