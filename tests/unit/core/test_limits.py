"""Rate and concurrency limits: what a task may declare, and what a pool does
with a message over its limit (delays it, never fails it, never counts a
retry), on the five-method backend in one process. Pools on several hosts
are tests/integration/core/test_limits.py."""

from __future__ import annotations

import threading
import time
import uuid as uuid_lib
from typing import Any

import pytest

from alsek_core.broker import Broker
from alsek_core.errors import ValidationError
from alsek_core.limits import RateLimit
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import task
from tests.five_method import DictBackend
from tests.unit.core.test_worker import ExecutorPool, _stop_when


class CountingBroker(Broker):
    """Counts the tokens taken (a backlog must not make workers spin on them)
    and those that were not there yet (the message was delayed)."""

    takes = 0
    delays = 0

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        wait_ms = super().take_token(bucket, rate_per_s, burst)
        CountingBroker.takes += 1
        CountingBroker.delays += wait_ms > 0
        return wait_ms


@pytest.fixture
def broker() -> Broker:
    CountingBroker.takes = CountingBroker.delays = 0
    return CountingBroker(DictBackend(store=uuid_lib.uuid4().hex))


@pytest.mark.parametrize(
    ("text", "count", "period_ms"),
    [
        ("100/s", 100, 1_000),
        ("20/m", 20, 60_000),
        ("5/h", 5, 3_600_000),
        ("100/5s", 100, 5_000),
        (" 3 / 2m ", 3, 120_000),
    ],
)
def test_rates_parse(text: str, count: int, period_ms: int) -> None:
    assert RateLimit.parse(text) == RateLimit(count, period_ms)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"rate_limit": "100"}, "is not '<count>/<unit>'"),
        ({"rate_limit": "100/d"}, "is not '<count>/<unit>'"),
        ({"rate_limit": "ten/s"}, "is not '<count>/<unit>'"),
        ({"rate_limit": "-5/s"}, "is not '<count>/<unit>'"),
        ({"rate_limit": "0/s"}, "must allow a positive number"),
        ({"rate_limit": "5/0s"}, "must allow a positive number"),
        ({"rate_limit": 100}, "must be a str"),
        ({"rate_limit": "5/s", "rate_limit_key": "tenant"}, "rate_limit_key must be a callable"),
        ({"rate_limit_key": lambda m: "x"}, "rate_limit_key needs rate_limit"),
        ({"concurrency_limit": 0}, "concurrency_limit must be an int >= 1"),
        ({"concurrency_limit": True}, "concurrency_limit must be an int >= 1"),
        ({"concurrency_limit": 2.5}, "concurrency_limit must be an int >= 1"),
        ({"concurrency_limit": 2, "concurrency_key": 3}, "concurrency_key must be a callable"),
        ({"concurrency_key": lambda m: "x"}, "concurrency_key needs concurrency_limit"),
    ],
)
def test_bad_limits_fail_at_declaration(broker: Broker, options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        task(broker, **options)(lambda: None)


def test_a_rate_limited_backlog_is_delayed_not_failed_nor_retried(broker: Broker) -> None:
    results, tracker = ResultStore(broker.backend), StatusTracker(broker.backend)
    starts: list[float] = []

    @task(broker, rate_limit="10/s", result_store=results, status_tracker=tracker)
    def limited(i: int, message: Message) -> int:
        starts.append(time.monotonic())
        return message.retries

    messages = [limited.generate(args=(i,)) for i in range(25)]
    pool = ExecutorPool([limited], n_workers=4, backoff=None)
    _stop_when(pool, lambda: all(results.exists(m) for m in messages), timeout=30)
    pool.run()
    assert [results.get(m) for m in messages] == [0] * 25  # every one ran, none as a retry
    assert all(tracker.get(m) == TaskStatus.SUCCEEDED for m in messages)
    assert broker.dead_letters() == []
    # One token each (reserved once, then run on it), not a try per token due:
    # only a message coming back more than a second late takes another.
    assert 25 <= CountingBroker.takes < 50
    # A full bucket (10) at once, then one a tenth of a second: never more
    # than 10 + 10 in any second (a slow machine only starts fewer).
    starts.sort()
    assert max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts) <= 21


@pytest.mark.parametrize(("key", "delays"), [(None, 6), (lambda m: m.kwargs["tenant"], 0)])
def test_a_rate_limit_key_gives_each_key_its_own_bucket(broker: Broker, key: Any, delays: int) -> None:
    results = ResultStore(broker.backend)

    @task(broker, rate_limit="2/m", rate_limit_key=key, result_store=results)
    def keyed(tenant: str) -> str:
        return tenant

    messages = [keyed.generate(kwargs={"tenant": t}) for t in "abcd" * 2]
    pool = ExecutorPool([keyed], backoff=None)
    # Two a minute: one bucket runs 2 of the 8 at once; a bucket per tenant, all 8.
    _stop_when(pool, lambda: CountingBroker.takes == 8, timeout=30)
    pool.run()
    assert CountingBroker.delays == delays
    assert sum(results.exists(m) for m in messages) == 8 - delays


def test_concurrency_per_key_is_never_exceeded_and_its_slots_are_freed(broker: Broker) -> None:
    results = ResultStore(broker.backend)
    lock, running, most = threading.Lock(), {"a": 0, "b": 0}, {"a": 0, "b": 0}

    @task(broker, concurrency_limit=2, concurrency_key=lambda m: m.kwargs["tenant"], result_store=results)
    def tenant_job(tenant: str, message: Message) -> int:
        with lock:
            running[tenant] += 1
            most[tenant] = max(most[tenant], running[tenant])
        time.sleep(0.05)
        with lock:
            running[tenant] -= 1
        return message.retries

    messages = [tenant_job.generate(kwargs={"tenant": t}) for t in "ab" * 8]
    pool = ExecutorPool([tenant_job], n_workers=6, backoff=None)
    _stop_when(pool, lambda: all(results.exists(m) for m in messages), timeout=30)
    pool.run()
    assert [results.get(m) for m in messages] == [0] * 16
    assert most == {"a": 2, "b": 2}
    for tenant in "ab":  # every slot was released as its message settled
        group = f"tenant_job:{tenant}"
        assert broker.acquire_slot(group, "x", 2, 1_000) and broker.acquire_slot(group, "y", 2, 1_000)


def test_a_limit_key_that_raises_fails_the_message(broker: Broker) -> None:
    tracker = StatusTracker(broker.backend)

    @task(broker, rate_limit="5/s", rate_limit_key=lambda m: m.kwargs["missing"], status_tracker=tracker)
    def keyed() -> None:
        raise AssertionError("never runs")

    message = keyed.generate()
    pool = ExecutorPool([keyed], backoff=None)
    _stop_when(pool, lambda: bool(broker.dead_letters()))
    pool.run()
    (dead,) = broker.dead_letters()
    assert dead.uuid == message.uuid
    assert dead.exception_details["name"] == "LimitKeyError"
    assert "KeyError" in dead.exception_details["text"]
    assert tracker.get(message) == TaskStatus.FAILED
