"""The consumer: pulls ready messages off the broker, queue by queue in the
given order, holding each under a lease until the worker settles it.

It waits natively when the backend can block (Redis, PostgreSQL) and backs off
by itself otherwise (LinearBackoff by default).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from alsek_core.backoff import Backoff, LinearBackoff
from alsek_core.broker import Broker
from alsek_core.errors import AlsekError, SerializationError
from alsek_core.message import Message, validate_queue_name
from alsek_core.pause import VIEW_MS as PAUSE_VIEW_MS
from alsek_core.ports import Delivery

log = logging.getLogger(__name__)

#: How long a claim holds a message before another worker may take it, unless
#: extended. Workers extend it while a task runs, so this bounds how long a
#: message waits after its worker dies.
DEFAULT_LEASE_MS = 15_000
#: How long one claim may block waiting for work on a backend that can.
DEFAULT_WAIT_MS = 1_000
#: How often the list of queues is refreshed when consuming all of them.
QUEUE_REFRESH_S = 5.0

Undecodable = Callable[[Delivery, Exception], None]


class Consumer:
    """``subset``: the queues to consume, in order; all of them (alphabetical) when None."""

    def __init__(
        self,
        broker: Broker,
        subset: Iterable[str] | None = None,
        backoff: Backoff | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        wait_ms: int = DEFAULT_WAIT_MS,
        on_undecodable: Undecodable | None = None,
    ) -> None:
        self.broker = broker
        self.subset = [validate_queue_name(q) for q in subset] if subset is not None else None
        self.backoff = backoff or LinearBackoff(factor=50, floor=0, ceiling=1_000, zero_override=True)
        self.lease_ms = lease_ms
        self.wait_ms = wait_ms
        self.on_undecodable = on_undecodable or self.dead_letter_undecodable
        self.stop_event = threading.Event()
        self._empty_passes = 0
        self._queues: list[str] = []
        self._queues_at = 0.0

    def queues(self) -> list[str]:
        if self.subset is not None:
            return self.subset
        if time.monotonic() - self._queues_at > QUEUE_REFRESH_S or not self._queues:
            self._queues = self.broker.queues()
            self._queues_at = time.monotonic()
        return self._queues

    def claim(self, limit: int = 1) -> list[Message]:
        """One pass: up to ``limit`` ready messages, or none after waiting/backing off.
        Paused queues are skipped; while any is, a wait is no longer than
        ``pause.VIEW_MS``, so that a resume (or a pause) is seen soon."""
        wanted = self.queues()
        queues = self.broker.claimable(wanted)
        if wanted and not queues:  # all paused: look again once the view may have changed
            self.stop_event.wait(PAUSE_VIEW_MS / 1000)
            return []
        blocking = self.broker.can_wait
        wait_ms = self.wait_ms if len(queues) == len(wanted) else min(self.wait_ms, PAUSE_VIEW_MS)
        deliveries = (
            self.broker.claim(queues, limit, self.lease_ms, wait_ms if blocking else 0) if queues else []
        )
        messages = [m for m in map(self._decode, deliveries) if m is not None]
        if deliveries:
            self._empty_passes = 0
        elif not blocking or not queues:
            self._empty_passes += 1
            backoff_ms = self.backoff.get(self._empty_passes)
            if len(queues) < len(wanted):
                backoff_ms = min(backoff_ms, PAUSE_VIEW_MS)
            self.stop_event.wait(backoff_ms / 1000)
        return messages

    def _decode(self, delivery: Delivery) -> Message | None:
        try:
            return self.broker.open(delivery)
        except (SerializationError, AlsekError, TypeError, ValueError) as exc:
            self.on_undecodable(delivery, exc)
            return None

    def dead_letter_undecodable(self, delivery: Delivery, exc: Exception) -> None:
        log.error("message %s in queue %r cannot run (%s: %s); dead-lettered",
                  delivery.uuid, delivery.queue, type(exc).__name__, exc)
        self.broker.reject(delivery)

    def stream(self) -> Iterator[Message]:
        """Messages one at a time until ``stop()``."""
        while not self.stop_event.is_set():
            yield from self.claim(1)

    def stop(self) -> None:
        self.stop_event.set()
