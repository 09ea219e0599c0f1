"""Running one claimed message and recording its outcome: the part every
worker pool shares, whatever runs the function (a thread, a process, a test).

An outcome (result, callback, status, removal; or status and retry; or
status and dead letter) is settled in one step where the backend can
(:mod:`alsek_core.outcome`, ``Queue.settle``); elsewhere in ordered steps,
the removal last, so a crash or an outage in between only causes a rerun,
and reruns are harmless (results are stored once, a callback has a fixed
uuid). A failing write raises, so the message is not settled and runs again
when its lease ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from alsek_core import outcome
from alsek_core.broker import Broker
from alsek_core.errors import SerializationError
from alsek_core.message import Message
from alsek_core.ports import Delivery
from alsek_core.status import TaskStatus
from alsek_core.task import Task

log = logging.getLogger(__name__)


class PoisonMessageError(Exception):
    """Delivered too many times without an outcome: its workers keep dying."""


def set_status(task: Task | None, message: Message, status: TaskStatus) -> None:
    """Best effort, for a status a later write replaces (RUNNING, SUBMITTED
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
    thread pool's interrupt window for timeouts)."""
    broker = broker or task.broker
    window = user_code or nullcontext()
    if is_poison(task, message):
        deliveries = message.delivery.deliveries if message.delivery else 0
        fail(task, message, PoisonMessageError(
            f"delivered {deliveries} times without finishing (its workers died); not retried"), broker)
        return
    # A revoked or expired message is failed here, never run.
    if (refusal := task.refusal(message)) is not None:
        fail(task, message, refusal, broker)
        return
    outcome.running(broker, message, task.status_tracker)
    try:
        with window:
            task.pre_op(message)
        with window:
            result = task.execute(message)
        with window:
            task.post_op(message, result)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: see settle_failure
        settle_failure(task, message, exc, broker)
        return
    settle_success(task, message, result, tasks, broker)


def settle_success(
    task: Task,
    message: Message,
    result: Any,
    tasks: Mapping[str, Task] | None = None,
    broker: Broker | None = None,
) -> None:
    """Result, callback, SUCCEEDED and removal, settled in one step."""
    broker = broker or task.broker
    try:
        callback = None
        if message.callback_message_data and task.do_callback(message, result):
            callback = callback_of(message, result)
        settlement = outcome.succeeded(broker, message, task.status_tracker, task.result_store, result, callback)
    except SerializationError as exc:  # retrying cannot make the result encodable
        log.error("%s: its result cannot be stored: %s", message.summary, exc)
        fail(task, message, exc, broker)
        return
    if callback is not None:
        mark_submitted((tasks or {}).get(callback.task_name), callback)
    broker.settle(settlement, message)


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


def settle_failure(task: Task, message: Message, exc: BaseException, broker: Broker | None = None) -> None:
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
        fail(task, message, exc, broker)
        return
    log.info("%s raised %s: retry %d", message.summary, type(exc).__name__, message.retries + 1)
    broker.settle(outcome.retrying(broker, message, task.status_tracker, exc), message)


def fail(task: Task, message: Message, exc: BaseException, broker: Broker | None = None) -> None:
    log.error("%s failed: %s: %s", message.summary, type(exc).__name__, exc)
    broker = broker or task.broker
    broker.settle(outcome.failed(broker, message, task.status_tracker, exc), message)
