"""TriggerTask: a Task that submits itself on a schedule (an apscheduler trigger)."""

from __future__ import annotations

import inspect
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from alsek_core.broker import checked_ttl
from alsek_core.errors import (
    DuplicateMessageError,
    KeyExistsError,
    SchedulingError,
    ValidationError,
)
from alsek_core.message import Message
from alsek_core.task.base import Task

log = logging.getLogger(__name__)

#: How late a scheduled fire may run and still be found by its scheduled time
#: (apscheduler skips a fire more than a second late by default).
FIRE_LATENESS = timedelta(seconds=5)


class TriggerTask(Task):
    """A task submitted on a schedule (an apscheduler trigger).

    ``generate()`` returns the progenitor message and starts the schedule in
    this process; each fire submits a copy descending from it. Nothing runs
    before ``generate()``: importing a module of trigger tasks (as every worker
    pool does) starts no thread. ``alsek scheduler TARGET`` is the process that
    calls ``generate()`` for them. When the same TriggerTask runs in several
    processes or hosts, each fire time is submitted once: the fire takes a
    lock on the backend keyed by task name and fire time.
    """

    def __init__(self, *args: Any, trigger: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parameters = [
            p
            for name, p in inspect.signature(self.function).parameters.items()
            if name != "message"
        ]
        if parameters:
            raise SchedulingError(
                f"task {self.name!r} has a trigger, so it cannot take parameters "
                f"(it has {', '.join(p.name for p in parameters)})"
            )
        self.trigger = trigger
        self._paused = False
        self._schedule_lock = threading.Lock()
        self.scheduler = self._new_scheduler()

    @staticmethod
    def _new_scheduler() -> Any:
        """A scheduler not started yet: its thread starts with the first schedule."""
        from apscheduler.schedulers.background import BackgroundScheduler

        return BackgroundScheduler()

    def generate(  # type: ignore[override]
        self,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Message:
        schedule = options.pop("submit", True) and not self._deferred
        try:
            if args or kwargs:
                raise ValidationError(f"task {self.name!r} has a trigger: it takes no args or kwargs")
            ttl = checked_ttl(options.pop("ttl", None))  # each fire's: Alsek passes it to every fire
        except ValidationError:
            self.cancel_defer()
            raise
        if not schedule:
            return super().generate(submit=False, **options)
        with self._schedule_lock:  # two threads calling generate() at once schedule once
            if self.generated:
                self.cancel_defer()
                raise SchedulingError(f"task {self.name!r} is already scheduled; clear() it first")
            message = super().generate(submit=False, **options)
            self.scheduler.add_job(
                self._fire,
                trigger=self.trigger,
                args=(message, ttl),
                id=message.uuid,
                max_instances=1,
                coalesce=True,
            )
            if not self.scheduler.running:
                self.scheduler.start(paused=self._paused)
        return message

    def _fire_slot(self, now: datetime) -> int:
        """The same number in every process for the same scheduled fire.

        An interval trigger starts counting when its process starts, so
        processes fire out of step: one fire per interval-long window of the
        clock. Cron and date triggers agree on their fire times, so the slot
        is the scheduled time of this fire (the latest one not after ``now``),
        whatever the lateness of the process that runs it."""
        interval = getattr(self.trigger, "interval_length", None)
        if interval:
            return int(now.timestamp() * 1000) // int(interval * 1000)
        due = self.trigger.get_next_fire_time(None, now - FIRE_LATENESS)
        while due is not None and due <= now:
            after = self.trigger.get_next_fire_time(due, due)
            if after is None or after > now:
                return int(due.timestamp() * 1000)
            due = after
        return round(now.timestamp())  # no fire found near now: fall back to the second

    def _fire(self, progenitor: Message, ttl: int | None = None) -> None:
        slot = self._fire_slot(datetime.now(UTC))
        try:
            self.broker.backend.set(
                f"triggers:{self.name}:{slot}", progenitor.uuid, nx=True, ttl=24 * 3600 * 1000
            )
        except KeyExistsError:
            log.debug("fire %s of %r: another scheduler submitted it", slot, self.name)
            return
        data = progenitor.data
        data.update(uuid=None, progenitor_uuid=progenitor.uuid, created_at=None, updated_at=None)
        message = Message(**data)
        try:
            self._submit(message, ttl=ttl)
        except DuplicateMessageError as exc:  # a unique task whose last fire is still queued
            log.info("fire %s of %r: skipped, message %s holds its unique key", slot, self.name,
                     exc.existing_uuid)
            return
        log.info("fire %s of %r: submitted %s", slot, self.name, message.uuid)

    @property
    def generated(self) -> bool:
        """Whether ``generate()`` has started the schedule (and neither ``clear()``
        nor ``shutdown()`` ended it)."""
        return bool(self.scheduler.get_jobs())

    def pause(self) -> None:
        """No fires until ``resume()``; before ``generate()``, it starts paused."""
        with self._schedule_lock:
            self._paused = True
            if self.scheduler.running:
                self.scheduler.pause()

    def resume(self) -> None:
        with self._schedule_lock:
            self._paused = False
            if self.scheduler.running:
                self.scheduler.resume()

    def clear(self) -> None:
        self.scheduler.remove_all_jobs()

    def shutdown(self, wait: bool = False) -> None:
        """Stop the scheduler's thread and end the schedule (``wait``: let a fire
        under way finish first). A later ``generate()`` starts afresh: a
        shut-down apscheduler cannot be started again, so a new one replaces it."""
        with self._schedule_lock:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=wait)
            self.scheduler = self._new_scheduler()
