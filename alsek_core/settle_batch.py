"""Successes waiting to be settled in one round trip, and the RUNNING statuses
of the messages still running (a worker pool's batching broker holds one).

A message's RUNNING status costs a round trip of its own when written as it
starts; most tiny tasks end before anyone could read it, and their
SUCCEEDED says more. So RUNNING waits here, and is dropped when its
message's outcome comes first: only a message still running at a flush has
its RUNNING written, and only once it has run ``RUNNING_AFTER_S`` (so a
flush before a claim does not pay a round trip for a sibling thread's message
about to end): a running message reads RUNNING at most that plus a flush
interval late.

Whoever applies outcomes holds ``applying`` meanwhile, so a RUNNING written
by a flush never lands after the outcome of its message.

The batch also keeps the messages with a unique key whose settlement or ack
waits (``hold_key``): their keys are freed by the flush that applies them
(``take_keys``), never before, so no duplicate is queued while the holder
may still run again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from alsek_core.message import Message
from alsek_core.ports import Settlement
from alsek_core.ports import StatusTracker as StatusTrackerPort

#: How long a message runs before its RUNNING status is worth a round trip.
RUNNING_AFTER_S = 0.05


class SettleBatch:
    """Thread-safe. A settlement counts as pending until the round trip that
    applies it is over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.applying = threading.Lock()
        self._settlements: dict[str, Settlement] = {}
        self._in_flight: dict[str, Settlement] = {}
        self._running: dict[str, tuple[StatusTrackerPort, Message, float]] = {}
        self._keys: dict[str, Message] = {}

    def __len__(self) -> int:
        return len(self._settlements)

    def get(self, uuid: str) -> Settlement | None:
        """The settlement of ``uuid`` if it is pending (or being applied)."""
        with self._lock:
            return self._settlements.get(uuid) or self._in_flight.get(uuid)

    def add(self, settlement: Settlement, message: Message | None = None) -> None:
        """``message``: the one settled, whose unique key the flush frees."""
        with self._lock:  # with its key, so that no flush takes one without the other
            self._hold_key(message)
            self._running.pop(settlement.delivery.uuid, None)
            self._settlements[settlement.delivery.uuid] = settlement

    def hold_key(self, message: Message | None) -> None:
        """Keep ``message`` until its settlement or ack is applied, if it
        holds a unique key; before it joins its batch."""
        with self._lock:
            self._hold_key(message)

    def _hold_key(self, message: Message | None) -> None:
        if message is not None and message.unique_key is not None:
            self._keys[message.uuid] = message

    def take_keys(self, uuids: Iterable[str]) -> list[Message]:
        """The messages holding a unique key among ``uuids`` (applied, or given up)."""
        with self._lock:
            if not self._keys:
                return []
            return [message for uuid in uuids if (message := self._keys.pop(uuid, None)) is not None]

    def running(self, tracker: StatusTrackerPort, message: Message) -> None:
        with self._lock:
            self._running[message.uuid] = (tracker, message, time.monotonic())

    def ended(self, uuid: str) -> None:
        """The message's outcome is applied some other way: its RUNNING is moot."""
        with self._lock:
            self._running.pop(uuid, None)

    def take(self) -> tuple[list[tuple[StatusTrackerPort, Message]], list[Settlement]]:
        """The RUNNING statuses due and the settlements to apply now (under
        ``applying``); ``done`` once applied (or given up)."""
        started = time.monotonic() - RUNNING_AFTER_S
        with self._lock:
            due = [uuid for uuid, (_, _, at) in self._running.items() if at <= started]
            running = [self._running.pop(uuid)[:2] for uuid in due]
            settlements, self._settlements = self._settlements, {}
            self._in_flight.update(settlements)
        return running, list(settlements.values())

    def done(self, uuids: Iterable[str]) -> None:
        with self._lock:
            for uuid in uuids:
                self._in_flight.pop(uuid, None)
