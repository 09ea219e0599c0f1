"""Where a claimed message meets its task's limits (:mod:`alsek_core.limits`),
just before it runs. A message over a limit is handed back, delayed, with
its retries untouched; it is never failed for it.

* Concurrency: the message takes one of its group's slots, leased like the
  message itself (extended by the pool's lease keeper, released once the
  message is settled). A pool that dies stops extending, so its slots end
  with its leases. No slot free: it is tried again ``SLOT_WAIT_MS`` (plus
  up to as much again, so that waiting messages spread out) later.
* Rate: the message reserves the next token of its bucket. Due now: it runs.
  Due later: it is delayed to exactly then, carrying the reservation
  (``Message.rate_token_at``), and runs then without another token, so a
  backlog costs one extra claim per message, not a claim per token. A
  reservation it comes back for more than ``TOKEN_GRACE_MS`` late (every
  worker was busy) no longer counts: it reserves anew, so reservations that
  piled up can never run together as a burst.
"""

from __future__ import annotations

import logging
import random
import threading

from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.execution import is_poison
from alsek_core.limits import Limits
from alsek_core.message import Message
from alsek_core.task import Task

log = logging.getLogger(__name__)

SLOT_WAIT_MS = 250
TOKEN_GRACE_MS = 1_000


class Gate:
    """The slots one pool (one worker process) holds, by message uuid."""

    def __init__(self, lease_ms: int) -> None:
        self.lease_ms = lease_ms
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, int]] = {}

    def admit(self, broker: Broker, task: Task, message: Message) -> int | None:
        """None: run it now (holding its slot, if it needs one). Otherwise when
        to try again (ms since the epoch); it holds nothing then. A message
        that will not run anyway (revoked, expired, poison) spends nothing."""
        limits = task.limits
        if limits is None or is_poison(task, message) or task.refusal(message) is not None:
            return None
        if limits.concurrency is not None:
            group = limits.slot_group(task.name, message)
            if not broker.acquire_slot(group, message.uuid, limits.concurrency, self.lease_ms):
                return now_ms() + SLOT_WAIT_MS + random.randrange(SLOT_WAIT_MS)
            with self._lock:
                self._held[message.uuid] = (group, limits.concurrency)
        if limits.rate is not None:
            try:
                due = self._token_due(broker, limits, task, message)
            except BaseException:
                self.release(broker, message.uuid)
                raise
            if due is not None:
                self.release(broker, message.uuid)
                return due
        return None

    @staticmethod
    def _token_due(broker: Broker, limits: Limits, task: Task, message: Message) -> int | None:
        assert limits.rate is not None
        now = now_ms()
        reserved = message.rate_token_at
        if reserved is not None and now <= reserved + TOKEN_GRACE_MS:
            if now < reserved:  # another host's clock ran ahead: wait for it
                return reserved
            message.rate_token_at = None
            return None
        bucket = limits.rate_bucket(task.name, message)
        wait_ms = broker.take_token(bucket, limits.rate.per_second, limits.rate.count)
        message.rate_token_at = None if wait_ms == 0 else now + wait_ms
        return message.rate_token_at

    def extend(self, broker: Broker) -> None:
        """Extend every slot held (the lease keeper calls this with the leases)."""
        with self._lock:
            held = list(self._held.items())
        for holder, (group, limit) in held:
            if not broker.acquire_slot(group, holder, limit, self.lease_ms) and holder in self._held:
                log.warning("message %s lost its slot of %r (its lease ran out): more than %d may run",
                            holder, group, limit)

    def release(self, broker: Broker, uuid: str) -> None:
        """Free the slot of message ``uuid``, if it holds one; on a backend
        error its lease frees it instead."""
        with self._lock:
            held = self._held.pop(uuid, None)
        if held is None:
            return
        try:
            broker.release_slot(held[0], uuid)
        except Exception:
            log.exception("could not free the slot of message %s in %r; it is freed when its lease ends",
                          uuid, held[0])
