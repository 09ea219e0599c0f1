"""Acks in batches: one round trip for many finished messages.

A message's outcome (result, callback, status) is written before its ack,
and an ack only removes it from the queue, so an ack may wait a few
milliseconds for others to share its round trip. The cost of a crash in
between is the usual at-least-once one: the message runs again once its lease
ends, and its result is not stored twice.

A pool flushes before each claim (so acks ride along with the claim rhythm),
from its housekeeping thread, when ``BATCH`` are waiting, and before it exits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Backend
from alsek_core.task import Task

log = logging.getLogger(__name__)

#: Flush at once when this many acks wait.
BATCH = 64


class AckBatcher:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._pending: dict[str, list[str]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, queue: str, uuid: str) -> None:
        with self._lock:
            self._pending.setdefault(queue, []).append(uuid)
            self._count += 1
            full = self._count >= BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        if not self._count:
            return
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
        for queue, uuids in pending.items():
            try:
                self.backend.ack_many(queue, uuids)
            except Exception:
                log.exception("could not ack %d finished message(s) of queue %r; they will run again "
                              "when their leases end", len(uuids), queue)


class _BatchingBroker:
    """The task's broker, except that ``ack`` joins the batch."""

    def __init__(self, broker: Broker, acks: AckBatcher) -> None:
        self._broker = broker
        self._acks = acks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def ack(self, message: Message) -> None:
        self._acks.add(message.queue, message.uuid)
        message.delivery = None


class _BatchingTask:
    """A task as ``execution.process`` sees it: itself, with a batching broker."""

    def __init__(self, task: Task, broker: _BatchingBroker) -> None:
        self._task = task
        self.broker = broker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


def batching(task: Task, acks: AckBatcher) -> Task:
    """``task`` whose successful messages are acked through ``acks``."""
    return cast(Task, _BatchingTask(task, _BatchingBroker(task.broker, acks)))
