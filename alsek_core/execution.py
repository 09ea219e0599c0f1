"""Running one claimed message and recording its outcome: the part every
worker pool shares, whatever runs the function (a thread, a process, a test).

Order matters for at-least-once: the result, the callback and the outcome's
status are written before the message is acked, so a crash or an outage in
between only causes a rerun, and reruns are harmless (results are stored
once, a callback has a fixed uuid).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from alsek_core.broker import exception_details
from alsek_core.errors import MessageAlreadyExistsError, SerializationError
from alsek_core.message import Message
from alsek_core.status import TaskStatus
from alsek_core.task import Task

log = logging.getLogger(__name__)


class PoisonMessageError(Exception):
    """Delivered too many times without an outcome: its workers keep dying."""


def set_status(task: Task | None, message: Message, status: TaskStatus) -> None:
    """Best effort, for a status a later write replaces (RUNNING, a callback's
    SUBMITTED): a status store outage must not stop the work."""
    try:
        record_status(task, message, status)
    except Exception:
        log.exception("could not record status %s of %s", status.name, message.summary)


def record_status(task: Task | None, message: Message, status: TaskStatus) -> None:
    """The status of an outcome (SUCCEEDED, RETRYING, FAILED) is part of it,
    like the result: a write that fails once the backend client's own retries
    are spent raises, so the message is not settled and runs again when its
    lease ends, and that run writes it. Swallowed, the message would be acked
    with its status stuck at RUNNING."""
    if task is not None and task.status_tracker is not None:
        task.status_tracker.set(message, status)


def is_poison(task: Task, message: Message) -> bool:
    delivery = message.delivery
    return delivery is not None and delivery.deliveries > task.broker.max_deliveries


def process(task: Task, message: Message, tasks: Mapping[str, Task] | None = None) -> None:
    """Run ``message`` on ``task`` here and now, then settle it."""
    if is_poison(task, message):
        deliveries = message.delivery.deliveries if message.delivery else 0
        fail(task, message, PoisonMessageError(
            f"delivered {deliveries} times without finishing (its workers died); not retried"))
        return
    # compat: a revoked or expired message is failed here, never run
    if (refusal := task.refusal(message)) is not None:
        fail(task, message, refusal)
        return
    # end compat
    set_status(task, message, TaskStatus.RUNNING)
    try:
        task.pre_op(message)
        result = task.execute(message)
        task.post_op(message, result)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        settle_failure(task, message, exc)
        return
    settle_success(task, message, result, tasks)


def settle_success(task: Task, message: Message, result: Any, tasks: Mapping[str, Task] | None = None) -> None:
    try:
        if task.result_store is not None:
            task.result_store.set(message, result)
        if message.callback_message_data and task.do_callback(message, result):
            submit_callback(task, message, result, tasks or {})
    except SerializationError as exc:  # retrying cannot make the result encodable
        log.error("%s: its result cannot be stored: %s", message.summary, exc)
        fail(task, message, exc)
        return
    record_status(task, message, TaskStatus.SUCCEEDED)
    task.broker.ack(message)


def submit_callback(task: Task, message: Message, result: Any, tasks: Mapping[str, Task]) -> None:
    assert message.callback_message_data is not None
    callback = Message(**message.callback_message_data)
    callback.update(
        previous_result=result,
        previous_message_uuid=message.uuid,
        progenitor_uuid=message.progenitor_uuid or message.uuid,
    )
    try:
        task.broker.submit(callback)
    except MessageAlreadyExistsError:
        return  # a rerun of this message already submitted it
    set_status(tasks.get(callback.task_name), callback, TaskStatus.SUBMITTED)


def settle_failure(task: Task, message: Message, exc: BaseException) -> None:
    """Retry if the task says so, else fail."""
    try:
        retry = task.do_retry(message, exc)
    except Exception:
        log.exception("do_retry of %s raised; not retrying", task.name)
        retry = False
    if not retry:
        fail(task, message, exc)
        return
    message.exception_details = exception_details(exc)
    log.info("%s raised %s: retry %d", message.summary, type(exc).__name__, message.retries + 1)
    record_status(task, message, TaskStatus.RETRYING)
    task.broker.retry(message)


def fail(task: Task, message: Message, exc: BaseException) -> None:
    log.error("%s failed: %s: %s", message.summary, type(exc).__name__, exc)
    record_status(task, message, TaskStatus.FAILED)
    task.broker.fail(message, exc)
