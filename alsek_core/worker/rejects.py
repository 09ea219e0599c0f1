"""Bad input never crashes a worker and never silently disappears: a message
for a task nobody here knows, or one that cannot be decoded, is logged with
its uuid and why, marked FAILED, and moved to the dead letters."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Delivery, StatusTracker
from alsek_core.status import TaskStatus
from alsek_core.task import Task

log = logging.getLogger(__name__)

#: The task name a FAILED status gets when the message could not be decoded.
UNDECODABLE_TASK = "(undecodable)"


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
    log.error("message %s in queue %r: %s; dead-lettered", message.uuid, message.queue, reason)
    mark_failed(tasks, message)
    broker.fail(message, LookupError(reason))


def reject_undecodable(broker: Broker, tasks: Mapping[str, Task], delivery: Delivery, exc: Exception) -> None:
    log.error("message %s in queue %r cannot be decoded (%s: %s); dead-lettered",
              delivery.uuid, delivery.queue, type(exc).__name__, exc)
    mark_failed(tasks, Message(UNDECODABLE_TASK, queue=delivery.queue, uuid=delivery.uuid))
    broker.dead_letter_as_is(delivery)
