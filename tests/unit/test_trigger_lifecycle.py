"""When a TriggerTask's scheduler thread exists: only from ``generate()`` on,
so importing trigger tasks (as every pool does) starts nothing."""

from __future__ import annotations

import threading
import time
import uuid as uuid_lib
from collections.abc import Iterator
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from alsek_core.broker import Broker
from alsek_core.errors import SchedulingError, ValidationError
from alsek_core.task import TriggerTask, task
from tests import five_method
from tests.five_method import DictBackend


def scheduler_threads() -> int:
    return sum(thread.name == "APScheduler" and thread.is_alive() for thread in threading.enumerate())


@pytest.fixture
def beat() -> Iterator[TriggerTask]:
    store = uuid_lib.uuid4().hex

    @task(Broker(DictBackend(store=store)), queue="beats", trigger=IntervalTrigger(seconds=1))
    def beat() -> None:
        pass

    assert isinstance(beat, TriggerTask)
    yield beat
    beat.shutdown(wait=True)
    five_method._STORES.pop(store, None)


def wait_for_fire(beat: TriggerTask) -> None:
    deadline = time.monotonic() + 30
    while not beat.broker.counts("beats").ready:
        assert time.monotonic() < deadline, "no fire"
        time.sleep(0.05)


def test_no_thread_until_generate(beat: TriggerTask) -> None:
    before = scheduler_threads()
    assert not beat.scheduler.running and not beat.generated
    beat.generate(submit=False)
    assert scheduler_threads() == before and not beat.generated, "submit=False schedules nothing"
    beat.generate()
    assert beat.scheduler.running and scheduler_threads() == before + 1
    wait_for_fire(beat)


def test_paused_before_generate_starts_paused(beat: TriggerTask) -> None:
    beat.pause()
    beat.generate()
    time.sleep(1.5)
    assert beat.broker.counts("beats").ready == 0
    beat.resume()
    wait_for_fire(beat)


def test_generate_after_shutdown_schedules_afresh(beat: TriggerTask) -> None:
    beat.generate()
    beat.shutdown(wait=True)
    assert not beat.generated and not beat.scheduler.running
    beat.generate()
    wait_for_fire(beat)


def test_concurrent_generates_schedule_once(beat: TriggerTask) -> None:
    outcomes: list[Any] = []
    start = threading.Barrier(8)

    def generate() -> None:
        start.wait()
        try:
            outcomes.append(beat.generate())
        except SchedulingError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=generate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not isinstance(o, SchedulingError) for o in outcomes) == 1
    assert len(beat.scheduler.get_jobs()) == 1


@pytest.mark.parametrize("call", [{"ttl": -1}, {"args": (1,)}])
def test_a_refused_generate_ends_deferral(beat: TriggerTask, call: dict[str, Any]) -> None:
    beat.defer()
    with pytest.raises(ValidationError):
        beat.generate(**call)
    assert not beat.deferred
