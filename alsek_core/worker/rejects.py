"""Bad input never crashes a worker and never silently disappears: a message
for a task nobody here knows, a payload that cannot be decoded, or one that
names another message than its row, is logged with its row's uuid and why,
marked FAILED under that uuid, and moved to the dead letters, where it is
listed, retried and purged by that uuid."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from alsek_core.broker import Broker
from alsek_core.dead_letter import UNDECODABLE_TASK
from alsek_core.finished import told
from alsek_core.message import Message
from alsek_core.ports import Delivery, StatusTracker
from alsek_core.status import TaskStatus
from alsek_core.task import Task

log = logging.getLogger(__name__)

def status_trackers(tasks: Mapping[str, Task]) -> list[StatusTracker]:
    """The distinct status trackers of ``tasks``: where a FAILED status goes
    when the message's own task is unknown."""
    found: dict[int, StatusTracker] = {}
    for task in tasks.values():
        if task.status_tracker is not None:
            found.setdefault(id(task.status_tracker), task.status_tracker)
    return list(found.values())


def mark_failed(tasks: Mapping[str, Task], message: Message) -> None:
    for tracker in status_trackers(tasks):
        try:
            tracker.set(message, TaskStatus.FAILED)
        except Exception:
            log.exception("could not record status FAILED of %s", message.summary)


def reject_unknown(broker: Broker, tasks: Mapping[str, Task], message: Message) -> None:
    reason = f"no task named {message.task_name!r} here (known: {', '.join(sorted(tasks))})"
    mark_failed(tasks, message)
    exc = LookupError(reason)
    broker.fail(message, exc)
    told(broker, message, "dead", None, message.retries + 1, exc)


def reject_undecodable(broker: Broker, tasks: Mapping[str, Task], delivery: Delivery, exc: Exception) -> None:
    """A payload that holds no message, or one that names another message
    than its row (which would run and never be acked)."""
    stand_in = Message(UNDECODABLE_TASK, queue=delivery.queue, uuid=delivery.uuid,
                       exception_details={"name": type(exc).__name__, "text": str(exc), "traceback": ""})
    mark_failed(tasks, stand_in)
    broker.reject(delivery)
    told(broker, stand_in, "dead", None, delivery.deliveries, exc)
