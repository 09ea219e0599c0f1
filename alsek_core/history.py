"""Job history: what became of finished messages, kept for a bounded while.

A worker pool records one :class:`HistoryEntry` per finished message
(succeeded, failed after running, or dead-lettered without running) and
writes them in batches, in the round trip that flushes its acks, so the hot
path pays nothing beyond its settle. Storage is the backend's ``History``
port (``ports.History``): a capped sorted set per queue on Redis, key-value
records on every other backend (``alsek_core.kv_history``).

Retention is bounded in time and in count, per queue and per kind (successes
and failures apart), so a pool draining at full speed cannot fill a Redis:
by default successes are kept an hour, failures a week, and at most the
last 10,000 of each per queue. 0 for either bound of a kind keeps none.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from alsek_core.errors import ValidationError

#: Kept an hour / a week, and at most this many per queue and kind.
SUCCEEDED_MS = 3_600_000
FAILED_MS = 7 * 86_400_000
MAX_PER_QUEUE = 10_000

#: The two retention groups a queue's history is kept in.
KINDS = ("succeeded", "failed")
#: What became of a message: ran and succeeded; ran and failed for good;
#: stopped while running because it was revoked; dead-lettered without
#: running (poison, revoked, expired, unknown task).
STATES = ("succeeded", "failed", "revoked", "dead")


def kind_of(state: str) -> str:
    return "succeeded" if state == "succeeded" else "failed"


def _bound(name: str, value: Any) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValidationError(f"history retention {name} must be an int >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Retention:
    """How long (ms) and how many (per queue) finished messages of each kind
    are kept; 0 keeps none of that kind."""

    succeeded_ms: int = SUCCEEDED_MS
    succeeded_max: int = MAX_PER_QUEUE
    failed_ms: int = FAILED_MS
    failed_max: int = MAX_PER_QUEUE

    def __post_init__(self) -> None:
        for name in ("succeeded_ms", "succeeded_max", "failed_ms", "failed_max"):
            _bound(name, getattr(self, name))

    def bounds(self, kind: str) -> tuple[int, int]:
        """(ms, count) for ``kind``; either 0 means the kind is not kept."""
        if kind == "succeeded":
            return self.succeeded_ms, self.succeeded_max
        return self.failed_ms, self.failed_max

    def keeps(self, state: str) -> bool:
        ms, count = self.bounds(kind_of(state))
        return ms > 0 and count > 0


#: No history at all.
NO_HISTORY = Retention(0, 0, 0, 0)


class HistoryEntry(NamedTuple):
    """One finished message. Times are ms since the epoch (``started_at`` is
    None for one that never ran); ``exception`` is ``{"name", "text",
    "traceback"}`` for a failure; ``worker`` names the pool process that
    finished it (``alsek workers`` lists pools by the part before ``/``).
    A named tuple, not a dataclass: a pool makes one per message, and a
    tuple is built in a fraction of a frozen dataclass's time."""

    uuid: str
    queue: str
    task: str
    state: str
    submitted_at: int
    started_at: int | None
    finished_at: int
    attempts: int
    worker: str | None = None
    exception: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.state)

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def to_row(self) -> tuple[Any, ...]:
        """The fields after ``uuid`` and ``queue``, in order: what a store
        that keeps those two apart (its key, a field of its own) encodes.
        Values alone encode in about a third of a dict's time, and take
        about a third of its bytes."""
        return self[2:]

    @classmethod
    def from_row(cls, uuid: str, queue: str, row: Any) -> HistoryEntry | None:
        """An entry from ``to_row``, or None for anything else."""
        if not isinstance(row, list | tuple) or len(row) != len(cls._fields) - 2:
            return None
        return cls.from_dict({"uuid": uuid, "queue": queue, **dict(zip(cls._fields[2:], row, strict=True))})

    @classmethod
    def from_dict(cls, value: Any) -> HistoryEntry | None:
        """An entry as stored, or None for anything else (storage is shared
        with whoever can write to it: a bad record must not break a listing)."""
        if not isinstance(value, dict):
            return None
        try:
            entry = cls(**value)
        except TypeError:
            return None
        ints = (entry.submitted_at, entry.finished_at, entry.attempts)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in ints):
            return None
        if entry.state not in STATES or not isinstance(entry.uuid, str) or not isinstance(entry.queue, str):
            return None
        return entry


class HistoryBatch:
    """Entries waiting for the next flush of a pool's batching broker. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[HistoryEntry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: HistoryEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def take(self) -> list[HistoryEntry]:
        with self._lock:
            entries, self._entries = self._entries, []
        return entries

    def discard(self, uuids: Collection[str]) -> None:
        """Drop the entries of these messages (their settlement failed)."""
        with self._lock:
            self._entries = [entry for entry in self._entries if entry.uuid not in uuids]
