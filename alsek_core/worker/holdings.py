"""The messages a pool holds under lease, from claim to outcome, and how long
its messages take to run.

Tiny tasks make the round trip of a claim the cost that matters, so a pool
may claim a little ahead of its free slots: never more than about
``CLAIM_AHEAD_S`` of work (judged by how long its recent messages ran, so a
pool of slow tasks claims only into free slots) and never more than
``MAX_CLAIM_AHEAD`` messages. A message claimed ahead that has not started
after ``RELEASE_UNSTARTED_S`` (it got stuck behind a slow one) is handed back
for another worker to take.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from alsek_core.ports import Delivery, Settlement

CLAIM_AHEAD_S = 0.05
MAX_CLAIM_AHEAD = 32
RELEASE_UNSTARTED_S = 1.0
#: Weight of the newest run time in the moving average.
SMOOTHING = 0.2


@dataclass
class Entry:
    delivery: Delivery
    claimed_at: float
    started: bool = False
    record: int = -1  # where a subclass wrote it down, if it did


class Holdings:
    """Thread-safe. A subclass may also write each entry elsewhere
    (``_added`` / ``_finished`` / ``_removed`` are called under the lock).

    A message that finished while its ack (or its settlement) waits in the
    pool's batch is no longer held, but it is kept apart
    (``finish(awaiting_ack=True)``) until ``acked``: whoever recovers the
    pool's messages after it died must ack (or settle) it, never hand it out
    again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._awaiting_ack: dict[str, Entry] = {}
        self._acked_early: set[str] = set()  # acked before ``finish`` said it waited
        self.average_run_s: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _added(self, entry: Entry) -> None:
        """Hook: ``entry`` is now held."""

    def _finished(self, entry: Entry, settlement: Settlement | None) -> bool:
        """Hook: ``entry`` finished; its ack, or its ``settlement``, waits in
        a batch. False if the settlement could not be kept: settle it now."""
        return True

    def _removed(self, entry: Entry) -> None:
        """Hook: ``entry`` is no longer held (nor waiting for its ack)."""

    def _pop(self, uuid: str) -> Entry | None:
        entry = self._entries.pop(uuid, None)
        if entry is not None:
            self._removed(entry)
        return entry

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._pop(delivery.uuid)
            entry = self._entries[delivery.uuid] = Entry(delivery, time.monotonic())
            self._added(entry)

    def start(self, delivery: Delivery) -> bool:
        """Mark as running; False if it was handed back meanwhile (do not run it)."""
        with self._lock:
            entry = self._entries.get(delivery.uuid)
            if entry is None or entry.delivery.token != delivery.token:
                return False
            entry.started = True
            return True

    def finish(self, uuid: str, run_s: float, awaiting_ack: bool = False,
               settlement: Settlement | None = None) -> bool:
        """False if ``settlement``, waiting in a batch, could not be kept for
        whoever recovers the pool's messages: settle it now."""
        kept = True
        with self._lock:
            entry = self._entries.pop(uuid, None)
            if entry is not None and awaiting_ack and uuid not in self._acked_early:
                self._awaiting_ack[uuid] = entry
                kept = self._finished(entry, settlement)
            elif entry is not None:
                self._removed(entry)
            self._acked_early.discard(uuid)
            previous = self.average_run_s
            self.average_run_s = run_s if previous is None else previous + SMOOTHING * (run_s - previous)
        return kept

    def acked(self, uuids: Iterable[str]) -> None:
        """These messages' acks are done: forget them."""
        with self._lock:
            for uuid in uuids:
                entry = self._awaiting_ack.pop(uuid, None)
                if entry is not None:
                    self._removed(entry)
                elif uuid in self._entries:
                    self._acked_early.add(uuid)

    def drop(self, uuid: str) -> Delivery | None:
        with self._lock:
            entry = self._pop(uuid)
        return entry.delivery if entry else None

    def holds(self, delivery: Delivery) -> bool:
        with self._lock:
            entry = self._entries.get(delivery.uuid)
            return entry is not None and entry.delivery.token == delivery.token

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return [entry.delivery for entry in self._entries.values()]

    def take_unstarted(self, older_than_s: float = RELEASE_UNSTARTED_S) -> list[Delivery]:
        """Remove and return messages claimed ahead that have waited too long."""
        limit = time.monotonic() - older_than_s
        with self._lock:
            stale = [u for u, e in self._entries.items() if not e.started and e.claimed_at < limit]
            return [entry.delivery for u in stale if (entry := self._pop(u)) is not None]

    def claim_ahead(self, slots: int) -> int:
        """How many messages beyond ``slots`` free ones are worth claiming now."""
        average = self.average_run_s
        if average is None:
            return 0
        return min(MAX_CLAIM_AHEAD, int(slots * CLAIM_AHEAD_S / max(average, 1e-6)))
