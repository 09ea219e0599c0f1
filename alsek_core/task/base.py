"""The Task: a function plus where and how to run it.

A Task is still callable as before; ``generate()`` makes (and by default
submits) a Message for it. Subclass ``Task`` and pass it as ``base_task`` to
``@task`` to change ``pre_op``, ``post_op``, ``do_retry`` or ``do_callback``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import typing
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypedDict
from weakref import WeakKeyDictionary

from alsek_core.backoff import Backoff, ExponentialBackoff, no_backoff
from alsek_core.broker import Broker
from alsek_core.errors import AlsekError, MessageExpiredError, RevokedError, ValidationError
from alsek_core.limits import KeyFunction, Limits
from alsek_core.message import DEFAULT_QUEUE, DEFAULT_TIMEOUT, MECHANISMS, Message
from alsek_core.ports import ResultStore, StatusTracker
from alsek_core.revocation import revoke
from alsek_core.status import TaskStatus

#: Messages made by ``generate(submit=False)`` (or deferred), with the task
#: that made them: how ``group()`` learns where to submit them and where their
#: results and statuses go. Weak: a message dropped is forgotten with it.
_UNSUBMITTED: WeakKeyDictionary[Message, Task] = WeakKeyDictionary()

#: ``backoff`` not given: an ExponentialBackoff (None means no backoff at all).
_UNSET: Any = object()


#: A task's ``unique_key``: a function of the message giving its key, or True
#: for "the same task with the same arguments".
UniqueKey = Callable[[Message], str] | bool


class TaskOptions(TypedDict, total=False):
    """How a task runs, as ``@task`` passes it on to the Task it makes;
    ``Task.__init__`` declares each one's default."""

    timeout: int
    max_retries: int | None
    backoff: Backoff | None
    mechanism: str
    priority: int
    result_store: ResultStore | None
    status_tracker: StatusTracker | None
    unique_key: UniqueKey | None
    unique_for: int | timedelta | None
    rate_limit: str | None
    rate_limit_key: KeyFunction | None
    concurrency_limit: int | None
    concurrency_key: KeyFunction | None


def args_key(message: Message) -> str:
    """``unique_key=True``: the task's name and a digest of its arguments
    (compared as JSON, keys sorted; what JSON cannot hold, by its repr)."""
    text = json.dumps([list(message.args), message.kwargs], sort_keys=True, default=repr)
    return f"{message.task_name}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def checked_unique(unique_key: Any, unique_for: Any) -> tuple[Callable[[Message], str] | None, int | None]:
    """The key function and window (ms) of a task, or a ValidationError at declaration."""
    if unique_key is True:
        key: Callable[[Message], str] | None = args_key
    elif unique_key is None:
        key = None
    elif callable(unique_key) and not isinstance(unique_key, bool):
        key = unique_key
    else:
        raise ValidationError(
            f"unique_key must be a function of the message returning a str, or True, got {unique_key!r}"
        )
    if unique_for is None:
        return key, None
    if key is None:
        raise ValidationError("unique_for is the window of a unique key: give unique_key too")
    if isinstance(unique_for, timedelta):
        window = unique_for // timedelta(milliseconds=1)
    elif isinstance(unique_for, int) and not isinstance(unique_for, bool):
        window = unique_for
    else:
        raise ValidationError(f"unique_for must be an int (ms) or a timedelta, got {unique_for!r}")
    if window <= 0:
        raise ValidationError(f"unique_for must be positive, got {unique_for!r}")
    return key, window


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


def is_coroutine_function(function: Callable[..., Any]) -> bool:
    """Whether calling ``function`` makes a coroutine: an ``async def``
    (through ``functools.partial`` too) or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None))  # noqa: B004 - the method, not callability


def _check_coroutine_options(function: Callable[..., Any], mechanism: str) -> None:
    """Refuse, at declaration, what a worker could only fail at run time."""
    if inspect.isasyncgenfunction(function) or inspect.isasyncgenfunction(getattr(function, "__call__", None)):  # noqa: B004
        raise ValidationError(
            f"{getattr(function, '__name__', function)!r} is an async generator: a task returns one "
            "result; collect the items in a list (or write an 'async def' that returns them)")
    if mechanism == "thread" and is_coroutine_function(function):
        raise ValidationError(
            f"{getattr(function, '__name__', function)!r} is a coroutine function: it runs on its worker "
            "process's event loop and its timeout cancels it there, so mechanism='thread' does not "
            "apply; leave mechanism at its default")


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
        unique_key: UniqueKey | None = None,
        unique_for: int | timedelta | None = None,
        rate_limit: str | None = None,
        rate_limit_key: KeyFunction | None = None,
        concurrency_limit: int | None = None,
        concurrency_key: KeyFunction | None = None,
    ) -> None:
        if not callable(function):
            raise ValidationError(f"a task needs a callable, got {function!r}")
        if not isinstance(broker, Broker):
            raise ValidationError(f"a task needs a Broker, got {broker!r}")
        if mechanism not in MECHANISMS:
            raise ValidationError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValidationError(f"max_retries must be an int >= 0 or None, got {max_retries!r}")
        _check_coroutine_options(function, mechanism)
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
        #: Messages of a unique task are queued only while no queued message
        #: of their queue holds the same key (see ``Broker.submit``).
        self.unique_key, self.unique_for = checked_unique(unique_key, unique_for)
        #: Rate and concurrency limits shared by every pool (alsek_core.limits).
        self.limits = Limits.declare(rate_limit, rate_limit_key, concurrency_limit, concurrency_key)
        self._deferred = False
        self._origin: Task | None = None
        self.takes_message = _takes_message(function)
        #: An ``async def`` task: pools run it on an event loop, many at once
        #: per worker process (``n_async``); called directly it returns a coroutine.
        self.is_async = is_coroutine_function(function)
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
        transaction when given, on PostgreSQL).

        For a unique task whose key is held by a queued message, nothing is
        queued and DuplicateMessageError (a MessageAlreadyExistsError) is
        raised; its ``existing_uuid`` names the message holding the key."""
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
            if self.unique_key is not None:
                message.unique_key = self._unique_key(message)
            if submit and not self._deferred:
                self._submit(message, connection, ttl)
            else:
                _UNSUBMITTED[message] = self
        finally:
            self.cancel_defer()
        return message

    def _unique_key(self, message: Message) -> str:
        assert self.unique_key is not None
        key = self.unique_key(message)
        if not (isinstance(key, str) and key):
            raise ValidationError(f"unique_key of task {self.name!r} must return a non-empty str, got {key!r}")
        return key

    def generate_many(
        self, args_list: Iterable[list[Any] | tuple[Any, ...]], **options: Any
    ) -> list[Message]:
        """One message per entry of ``args_list`` (other :meth:`generate`
        options apply to all), submitted in one batch (``Broker.submit_many``)
        rather than a round trip each; ``submit=False`` only builds them."""
        submit = options.pop("submit", True)
        messages = [self.generate(args=args, submit=False, **options) for args in args_list]
        if submit:
            self.broker.submit_many(messages, unique_for=self.unique_for)
            if self.status_tracker is not None:
                for message in messages:
                    self.status_tracker.set(message, TaskStatus.SUBMITTED)
        return messages

    def _submit(self, message: Message, connection: Any = None, ttl: int | None = None) -> None:
        self.broker.submit(message, ttl=ttl, connection=connection, unique_for=self.unique_for)
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
        when the function asks for it and kwargs do not already say ``message``).
        For an ``async def`` task this returns the coroutine, not yet run."""
        kwargs = dict(message.kwargs)
        if self.takes_message and "message" not in kwargs:
            kwargs["message"] = message
        return self.function(*message.args, **kwargs)


def maker_of(message: Message) -> Task | None:
    """The task whose ``generate()`` made ``message`` without submitting it."""
    return _UNSUBMITTED.get(message)
