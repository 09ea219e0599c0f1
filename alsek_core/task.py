"""Tasks: a function plus where and how to run it.

``@task(broker)`` turns a function into a :class:`Task` that is still callable
as before; ``generate()`` makes (and by default submits) a Message for it.
Subclass ``Task`` and pass it as ``base_task`` to change ``pre_op``,
``post_op``, ``do_retry`` or ``do_callback``.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from alsek_core.backoff import Backoff, ExponentialBackoff, no_backoff
from alsek_core.broker import Broker, checked_ttl
from alsek_core.errors import (
    AlsekError,
    KeyExistsError,
    MessageExpiredError,
    RevokedError,
    SchedulingError,
    ValidationError,
)
from alsek_core.message import DEFAULT_QUEUE, DEFAULT_TIMEOUT, MECHANISMS, Message
from alsek_core.ports import ResultStore, StatusTracker
from alsek_core.revocation import revoke
from alsek_core.status import TaskStatus

log = logging.getLogger(__name__)

#: Messages made by ``generate(submit=False)`` (or deferred), with the task
#: that made them: how ``group()`` learns where to submit them and where their
#: results and statuses go. Weak: a message dropped is forgotten with it.
_UNSUBMITTED: WeakKeyDictionary[Message, Task] = WeakKeyDictionary()

_UNSET: Any = object()
#: How late a scheduled fire may run and still be found by its scheduled time
#: (apscheduler skips a fire more than a second late by default).
FIRE_LATENESS = timedelta(seconds=5)


def _takes_message(function: Callable[..., Any]) -> bool:
    """True when ``function`` has a ``message`` parameter that is unannotated or
    annotated as Message (the seed's rule)."""
    try:
        parameter = inspect.signature(function).parameters.get("message")
    except (TypeError, ValueError):
        return False
    if parameter is None:
        return False
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return True
    if isinstance(annotation, str):
        try:
            annotation = typing.get_type_hints(function).get("message", annotation)
        except Exception:
            return bool(annotation.rsplit(".", 1)[-1] == "Message")
    return annotation is Message


def nest_callbacks(callback: Message | tuple[Message, ...]) -> Message:
    """Turn a flat tuple of callbacks into the nested chain it stands for,
    updating each message's ``callback_message_data`` in place."""
    if isinstance(callback, Message):
        return callback
    if (
        not isinstance(callback, tuple)
        or not callback
        or not all(isinstance(m, Message) for m in callback)
    ):
        raise ValidationError("callback must be a Message or a non-empty tuple of Messages")
    for parent, child in zip(reversed(callback[:-1]), reversed(callback[1:]), strict=True):
        parent.callback_message_data = child.data
    return callback[0]


class Task:
    def __init__(
        self,
        function: Callable[..., Any],
        broker: Broker,
        name: str | None = None,
        queue: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
        max_retries: int | None = 3,
        backoff: Backoff | None = _UNSET,
        mechanism: str = "process",
        priority: int = 0,
        result_store: ResultStore | None = None,
        status_tracker: StatusTracker | None = None,
    ) -> None:
        if not callable(function):
            raise ValidationError(f"a task needs a callable, got {function!r}")
        if not isinstance(broker, Broker):
            raise ValidationError(f"a task needs a Broker, got {broker!r}")
        if mechanism not in MECHANISMS:
            raise ValidationError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValidationError(f"max_retries must be an int >= 0 or None, got {max_retries!r}")
        self.function = function
        self.broker = broker
        self.name: str = name or str(getattr(function, "__name__", "task"))
        self.queue = queue or DEFAULT_QUEUE
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff: Backoff = (
            ExponentialBackoff() if backoff is _UNSET else (backoff or no_backoff())
        )
        self.mechanism = mechanism
        self.priority = priority
        self.result_store = result_store
        self.status_tracker = status_tracker
        self._deferred = False
        self._origin: Task | None = None
        self.takes_message = _takes_message(function)
        Message(
            self.name, queue=self.queue, timeout=timeout, priority=priority, mechanism=mechanism
        )
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, queue={self.queue!r}, broker={self.broker!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    # --- producing ----------------------------------------------------------------

    @property
    def deferred(self) -> bool:
        """Whether the next ``generate()`` makes its message without submitting it."""
        return self._deferred

    def defer(self) -> Task:
        """The next ``generate()`` makes its message without submitting it.

        Returns a deferred copy as well as deferring this task, so that
        ``t.defer().generate(callback=t.defer().generate())`` defers both calls
        even though the inner one runs (and cancels deferral) first.
        """
        self._deferred = True
        deferred = copy.copy(self)
        deferred._origin = self
        return deferred

    def cancel_defer(self) -> Task:
        self._deferred = False
        if self._origin is not None:
            self._origin._deferred = False
        return self

    def generate(
        self,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        priority: int | None = None,
        metadata: dict[str, Any] | None = None,
        result_ttl: int | None = None,
        uuid: str | None = None,
        timeout_override: int | None = None,
        delay: int | None = None,
        previous_result: Any = None,
        callback: Message | tuple[Message, ...] | None = None,
        queue: str | None = None,
        submit: bool = True,
        connection: Any = None,
        ttl: int | None = None,
    ) -> Message:
        """Make a message for this task and, unless deferred or ``submit=False``,
        submit it (with ``ttl``, see ``Broker.submit``; inside ``connection``'s
        transaction when given, on PostgreSQL)."""
        if result_ttl is not None and self.result_store is None:
            self.cancel_defer()
            raise ValidationError(
                f"result_ttl given, but task {self.name!r} has no result_store to keep results in"
            )
        try:
            message = Message(
                task_name=self.name,
                queue=queue or self.queue,
                args=args,
                kwargs=kwargs,
                priority=self.priority if priority is None else priority,
                metadata=metadata,
                result_ttl=result_ttl,
                uuid=uuid,
                timeout=timeout_override or self.timeout,
                delay=delay,
                previous_result=previous_result,
                callback_message_data=None if callback is None else nest_callbacks(callback).data,
                backoff_settings=self.backoff.settings,
                mechanism=self.mechanism,
            )
            if submit and not self._deferred:
                self._submit(message, connection, ttl)
            else:
                _UNSUBMITTED[message] = self
        finally:
            self.cancel_defer()
        return message

    def generate_many(
        self, args_list: Iterable[list[Any] | tuple[Any, ...]], **options: Any
    ) -> list[Message]:
        """One message per entry of ``args_list`` (other :meth:`generate`
        options apply to all), submitted in one batch (``Broker.submit_many``)
        rather than a round trip each; ``submit=False`` only builds them."""
        submit = options.pop("submit", True)
        messages = [self.generate(args=args, submit=False, **options) for args in args_list]
        if submit:
            self.broker.submit_many(messages)
            if self.status_tracker is not None:
                for message in messages:
                    self.status_tracker.set(message, TaskStatus.SUBMITTED)
        return messages

    def _submit(self, message: Message, connection: Any = None, ttl: int | None = None) -> None:
        self.broker.submit(message, ttl=ttl, connection=connection)
        if self.status_tracker is not None:
            self.status_tracker.set(message, TaskStatus.SUBMITTED)

    # --- hooks a base_task may override ---------------------------------------------

    def pre_op(self, message: Message) -> None:
        """Runs before the function."""

    def post_op(self, message: Message, result: Any) -> None:
        """Runs after the function succeeded."""

    def do_retry(self, message: Message, exception: BaseException) -> bool:
        if self.max_retries is None:
            return True
        return message.retries < self.max_retries

    def do_callback(self, message: Message, result: Any) -> bool:
        """Only asked for messages that have a callback."""
        return True

    # --- revoking -------------------------------------------------------------------

    def revoke(self, message: Message, skip_if_running: bool = False) -> None:
        """Make sure ``message`` never runs; see :func:`alsek_core.revocation.revoke`."""
        revoke(self.broker, message, self.status_tracker, skip_if_running)

    def is_revoked(self, message: Message) -> bool:
        return self.broker.is_revoked(message)

    def refusal(self, message: Message) -> AlsekError | None:
        """Why a claimed message must not run (revoked, or expired), or None.
        A worker asks just before running it, and fails it with this error."""
        if message.expired:
            return MessageExpiredError(f"{message.summary} was not claimed before it expired")
        if self.broker.refuses(message):
            return RevokedError(f"{message.summary} was revoked")
        return None

    # --- running --------------------------------------------------------------------

    def execute(self, message: Message) -> Any:
        """Run ``op`` (Alsek's order: a base_task may override either)."""
        return self.op(message)

    def op(self, message: Message) -> Any:
        """Call the function with the message's arguments (and the message itself
        when the function asks for it and kwargs do not already say ``message``)."""
        kwargs = dict(message.kwargs)
        if self.takes_message and "message" not in kwargs:
            kwargs["message"] = message
        return self.function(*message.args, **kwargs)


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
        self._submit(message, ttl=ttl)
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


def maker_of(message: Message) -> Task | None:
    """The task whose ``generate()`` made ``message`` without submitting it."""
    return _UNSUBMITTED.get(message)


def task(
    broker: Broker,
    name: str | None = None,
    queue: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    max_retries: int | None = 3,
    backoff: Backoff | None = _UNSET,
    trigger: Any = None,
    mechanism: str = "process",
    priority: int = 0,
    result_store: ResultStore | None = None,
    status_tracker: StatusTracker | None = None,
    base_task: type[Task] | None = None,
) -> Callable[[Callable[..., Any]], Task]:
    """Decorate a function to make it a Task (a TriggerTask with ``trigger``)."""
    if base_task is not None and not (isinstance(base_task, type) and issubclass(base_task, Task)):
        raise ValidationError(f"base_task must be a subclass of Task, got {base_task!r}")

    def wrapper(function: Callable[..., Any]) -> Task:
        options: dict[str, Any] = dict(
            broker=broker,
            name=name,
            queue=queue,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            mechanism=mechanism,
            priority=priority,
            result_store=result_store,
            status_tracker=status_tracker,
        )
        if trigger is None:
            return (base_task or Task)(function, **options)
        cls = (
            base_task
            if base_task is not None and issubclass(base_task, TriggerTask)
            else TriggerTask
        )
        if base_task is not None and not issubclass(base_task, TriggerTask):
            cls = type(f"Trigger{base_task.__name__}", (TriggerTask, base_task), {})
        return cls(function, trigger=trigger, **options)

    return wrapper
