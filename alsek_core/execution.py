"""Running one claimed message and recording its outcome: the part every
worker pool shares, whatever runs the function (a thread, a process, a test).

An outcome (result, callback, status, removal; or status and retry; or
status and dead letter) is settled in one step where the backend can
(:mod:`alsek_core.outcome`, ``Queue.settle``); elsewhere in ordered steps,
the removal last, so a crash or an outage in between only causes a rerun,
and reruns are harmless (results are stored once, a callback has a fixed
uuid). A failing write raises, so the message is not settled and runs again
when its lease ends.

On a pool's batching broker a success waits in a batch (``Broker.batching``)
and is told (:func:`~alsek_core.finished.told`: its log line and the
middleware's ``after_outcome``, which reads its run's tracing span) when it is
handed off there, not when a flush applies it: in a pool's worker process
its lease-book record makes the settle the supervisor's to apply if the
process dies (``worker.settlement_record``). Only a pool killed whole, or a
flush that fails, has a success told and then run again. Its job-history
entry and the freeing of its unique key wait for the flush that applies it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from alsek_core import middleware, outcome
from alsek_core.broker import Broker
from alsek_core.chord import gather, is_callback
from alsek_core.errors import RevokedError, SerializationError, TaskTimeoutError
from alsek_core.finished import told
from alsek_core.message import Message
from alsek_core.ports import Delivery
from alsek_core.status import TaskStatus
from alsek_core.task import Task

log = logging.getLogger(__name__)


class PoisonMessageError(Exception):
    """Delivered too many times without an outcome: its workers keep dying."""


def set_status(task: Task | None, message: Message, status: TaskStatus) -> None:
    """Best effort, for a status a later write replaces (SUBMITTED
    again): a status store outage must not stop the work. The status of an
    outcome is part of its settlement instead."""
    if task is None or task.status_tracker is None:
        return
    try:
        task.status_tracker.set(message, status)
    except Exception:
        log.exception("could not record status %s of %s", status.name, message.summary)


def set_waiting(broker: Broker, tasks: Mapping[str, Task], delivery: Delivery) -> None:
    """Status SUBMITTED again for a message that ran but is handed back to its
    queue unfinished (its worker stopped or died), so that it does not read
    RUNNING while it waits. Set before the message is handed back, so that
    the RUNNING of whoever claims it next is the last word."""
    try:
        message = broker.decode(broker.payload(delivery))
    except Exception:
        log.exception("could not read message %s to record that it waits again", delivery.uuid)
        return
    set_status(tasks.get(message.task_name), message, TaskStatus.SUBMITTED)


def is_poison(task: Task, message: Message) -> bool:
    delivery = message.delivery
    return delivery is not None and delivery.deliveries > task.broker.max_deliveries


def admit(task: Task, message: Message, broker: Broker | None = None) -> bool:
    """Whether ``message`` may run now; if not (a poison message, a revoked
    or expired one) it is settled here. If so, its status becomes RUNNING
    (at once, or at a batching broker's flush if it still runs then:
    ``outcome.running``)."""
    broker = broker or task.broker
    if is_poison(task, message):
        deliveries = message.delivery.deliveries if message.delivery else 0
        fail(task, message, PoisonMessageError(
            f"delivered {deliveries} times without finishing (its workers died); not retried"), broker)
        return False
    # A revoked or expired message is failed here, never run.
    if (refusal := task.refusal(message)) is not None:
        fail(task, message, refusal, broker)
        return False
    outcome.running(broker, message, task.status_tracker)
    return True


def process(
    task: Task,
    message: Message,
    tasks: Mapping[str, Task] | None = None,
    broker: Broker | None = None,
    user_code: AbstractContextManager[Any] | None = None,
) -> None:
    """Run ``message`` on ``task`` here and now, then settle it through
    ``broker`` (the task's own by default; a pool passes its batching one).
    ``user_code`` is entered around each piece of the task's own code (a
    thread pool's interrupt window for timeouts). An ``async def`` task runs
    to its end on an event loop of its own, here (pools run them many at
    once instead: :mod:`alsek_core.worker.aio`)."""
    broker = broker or task.broker
    with middleware.running(message):
        _process(task, message, tasks, broker, user_code or nullcontext())


def _process(task: Task, message: Message, tasks: Mapping[str, Task] | None, broker: Broker,
             window: AbstractContextManager[Any]) -> None:
    if not admit(task, message, broker):
        return
    started = time.time()
    try:
        if is_callback(message):
            message.previous_result = gather(broker, message)
        with window:
            task.pre_op(message)
        with window:
            result = task.execute(message)
            if inspect.isawaitable(result):
                result = asyncio.run(_within_timeout(result, message.timeout))
        with window:
            task.post_op(message, result)
    except RevokedError as exc:  # raised in its thread by its pool (or by the task itself)
        if broker.is_revoked(message):
            settle_revoked(task, message, broker, started)
        else:
            settle_failure(task, message, exc, broker, started)
        return
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: see settle_failure
        settle_failure(task, message, exc, broker, started)
        return
    settle_success(task, message, result, tasks, broker, started)


async def _within_timeout(awaitable: Awaitable[Any], timeout_ms: int) -> Any:
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            return await awaitable
    except TimeoutError as exc:
        raise TaskTimeoutError(f"ran past its timeout of {timeout_ms} ms; cancelled") from exc


def settle_success(
    task: Task,
    message: Message,
    result: Any,
    tasks: Mapping[str, Task] | None = None,
    broker: Broker | None = None,
    started: float | None = None,
) -> None:
    """Result, callback, SUCCEEDED and removal, settled in one step.
    ``started``: when it started running (seconds since the epoch)."""
    broker = broker or task.broker
    attempt = message.retries + 1
    try:
        callback = None
        if message.callback_message_data and task.do_callback(message, result):
            callback = callback_of(message, result)
        settlement = outcome.succeeded(broker, message, task.status_tracker, task.result_store, result, callback)
    except SerializationError as exc:  # retrying cannot make the result encodable
        log.error("%s: its result cannot be stored: %s", message.summary, exc)
        fail(task, message, exc, broker, started)
        return
    if callback is not None:
        mark_submitted((tasks or {}).get(callback.task_name), callback)
    if broker.settle(settlement, message, batch=not is_callback(message)):
        forget_join(broker, message)
        told(broker, message, "succeeded", started, attempt)


def forget_join(broker: Broker, message: Message) -> None:
    """A chord's callback that settled for good (its lease held: no other
    delivery of it will read the join) needs its join no more. Best effort:
    one left behind (this worker died first) only takes space. Its settle was
    not batched: the callback has left its queue, so it never runs again
    without its join."""
    if not is_callback(message):
        return
    try:
        broker.forget_join(message)
    except Exception:
        log.exception("could not remove the chord join of %s", message.summary)


def callback_of(message: Message, result: Any) -> Message:
    assert message.callback_message_data is not None
    callback = Message(**message.callback_message_data)
    return callback.update(
        previous_result=result,
        previous_message_uuid=message.uuid,
        progenitor_uuid=message.progenitor_uuid or message.uuid,
    )


def mark_submitted(task: Task | None, callback: Message) -> None:
    """SUBMITTED for a callback about to be settled in, unless a rerun of its
    parent already settled it (then it may have run since). Before the
    settle, while nobody can claim it yet, so its own RUNNING comes later."""
    tracker = task.status_tracker if task is not None else None
    try:
        if tracker is not None and not tracker.exists(callback):
            tracker.set(callback, TaskStatus.SUBMITTED)
    except Exception:
        log.exception("could not record status SUBMITTED of %s", callback.summary)


def settle_failure(task: Task, message: Message, exc: BaseException, broker: Broker | None = None,
                   started: float | None = None) -> None:
    """Retry if the task says so, else fail. Whatever the task's code raised
    counts, ``SystemExit`` and ``KeyboardInterrupt`` included: a ``sys.exit()``
    in a task is that task's failure, never its worker's end (a worker stops
    on its signals, which its pool handles, not on exceptions)."""
    broker = broker or task.broker
    try:
        retry = task.do_retry(message, exc)
    except Exception:
        log.exception("do_retry of %s raised; not retrying", task.name)
        retry = False
    if not retry:
        fail(task, message, exc, broker, started)
        return
    attempt = message.retries + 1
    if broker.settle(outcome.retrying(broker, message, task.status_tracker, exc), message):
        told(broker, message, "retried", started, attempt, exc)


def settle_revoked(task: Task, message: Message, broker: Broker | None = None,
                   started: float | None = None) -> None:
    """End a run that was stopped because its message was revoked: status
    REVOKED and the message removed. Pools call it however they stopped the
    run (an exception raised in its thread, its process killed, a coroutine
    cancelled)."""
    broker = broker or task.broker
    attempt = message.retries + 1
    if broker.settle(outcome.revoked(broker, message, task.status_tracker), message):
        told(broker, message, "revoked", started, attempt)


def fail(task: Task, message: Message, exc: BaseException, broker: Broker | None = None,
         started: float | None = None) -> None:
    """Failed for good: ``started`` when it ran (then it "failed"), None when
    it is given up without running (then it is "dead")."""
    broker = broker or task.broker
    attempt = message.retries + 1
    settlement = outcome.failed(broker, message, task.status_tracker, exc)
    if broker.settle(settlement, message, batch=not is_callback(message)):
        forget_join(broker, message)
        told(broker, message, "dead" if started is None else "failed", started, attempt, exc)
