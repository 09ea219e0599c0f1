"""Which fire a TriggerTask's lock is keyed on: every process must name the
same scheduled fire the same way, however late its scheduler runs it."""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alsek_core.broker import Broker
from alsek_core.task import TriggerTask, task
from tests.five_method import DictBackend

SCHEDULED = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[TriggerTask] = []

    def make(trigger: Any) -> TriggerTask:
        @task(Broker(DictBackend(store=uuid_lib.uuid4().hex)), trigger=trigger)
        def beat() -> None:
            pass

        assert isinstance(beat, TriggerTask)
        made.append(beat)
        return beat

    yield make
    for beat in made:
        beat.shutdown()


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize("late_ms", [0, 1, 499, 501, 999, 2_500])
def test_a_late_cron_fire_keeps_its_scheduled_time(make: Any, late_ms: int) -> None:
    beat = make(CronTrigger(second="*/10", timezone="UTC"))
    assert beat._fire_slot(SCHEDULED + timedelta(milliseconds=late_ms)) == ms(SCHEDULED)


def test_cron_fires_in_other_timezones_agree(make: Any) -> None:
    here = make(CronTrigger(minute="*", timezone="Europe/Paris"))
    there = make(CronTrigger(minute="*", timezone="America/New_York"))
    fire = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)
    late = fire + timedelta(milliseconds=800)
    assert here._fire_slot(late) == there._fire_slot(late.astimezone(there.trigger.timezone))
    assert here._fire_slot(late) == ms(fire)


def test_every_second_cron_fires_get_their_own_slots(make: Any) -> None:
    beat = make(CronTrigger(second="*", timezone="UTC"))
    slots = [beat._fire_slot(SCHEDULED + timedelta(milliseconds=t)) for t in (600, 1_600, 2_600)]
    assert slots == [ms(SCHEDULED) + 1_000 * i for i in range(3)]


def test_date_trigger_slot_is_its_run_date(make: Any) -> None:
    beat = make(DateTrigger(run_date=SCHEDULED))
    assert beat._fire_slot(SCHEDULED + timedelta(milliseconds=700)) == ms(SCHEDULED)


def test_interval_processes_out_of_step_share_one_window(make: Any) -> None:
    one, other = make(IntervalTrigger(seconds=60)), make(IntervalTrigger(seconds=60))
    window = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert one._fire_slot(window + timedelta(seconds=5)) == other._fire_slot(
        window + timedelta(seconds=41)
    )
    assert one._fire_slot(window + timedelta(seconds=61)) == one._fire_slot(window) + 1
