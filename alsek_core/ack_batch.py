"""Finished messages waiting to be acked in one round trip (a worker pool's
batching broker holds one)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from alsek_core.ports import Delivery


class AckBatch:
    """Finished messages waiting to be acked together, by queue. Thread-safe.
    A message counts as waiting until the round trip that acks it is over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, None]] = {}
        self._flushing: set[str] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, uuid: object) -> bool:
        with self._lock:
            return uuid in self._flushing or any(uuid in uuids for uuids in self._pending.values())

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            uuids = self._pending.setdefault(delivery.queue, {})
            if delivery.uuid not in uuids:
                uuids[delivery.uuid] = None
                self._count += 1

    def take(self) -> dict[str, list[str]]:
        """The batch, to ack now; ``done`` once acked (or given up)."""
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
            for uuids in pending.values():
                self._flushing.update(uuids)
        return {queue: list(uuids) for queue, uuids in pending.items()}

    def done(self, uuids: Iterable[str]) -> None:
        with self._lock:
            self._flushing.difference_update(uuids)
