"""The registry of live worker pools: each pool writes a record of itself to
the backend (``workers:<id>``) and rewrites it every ``HEARTBEAT_S``, with a
TTL of a few beats, so a pool that died without a word disappears on its own.

It uses only the key-value methods (``set`` with a TTL, ``scan``, ``get``,
``delete``), so it works on every backend, five-method ones included.

The pool's supervisor (the parent process) beats from its own loop rather
than from a thread: a thread running backend calls while the parent forks a
child could leave a lock (logging's, a connection pool's) held forever in
that child.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from alsek_core.clock import now_ms
from alsek_core.ports import KeyValue

log = logging.getLogger(__name__)

PREFIX = "workers:"
#: How often a pool rewrites its record.
HEARTBEAT_S = 5.0
#: A record lives this many beats: one late beat does not drop a live pool.
BEATS_TO_LIVE = 3


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """What ``alsek workers`` shows of a pool. Times are ms since the epoch."""

    id: str
    host: str
    pid: int
    kind: str
    queues: list[str]
    slots: int
    busy: int
    started_at: int
    last_beat: int
    #: The uuids of the messages it runs (records of older versions lack it).
    running: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record(value: Any) -> WorkerRecord | None:
    """A record as stored, or None for anything else (the namespace is shared
    with whoever can write to the backend: a bad record must not break a listing)."""
    if not isinstance(value, dict):
        return None
    try:
        record = WorkerRecord(**value)
    except TypeError:
        return None
    numbers = (record.pid, record.slots, record.busy, record.started_at, record.last_beat)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    for names in (record.queues, record.running):
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            return None
    return record


def holders(workers: list[WorkerRecord]) -> dict[str, str]:
    """Which pool (its id) runs each message, by uuid, as of their last beats."""
    return {uuid: worker.id for worker in workers for uuid in worker.running}


def live_workers(backend: KeyValue) -> list[WorkerRecord]:
    """Every registered pool whose last beat is recent enough, by host then pid."""
    oldest = now_ms() - int(HEARTBEAT_S * BEATS_TO_LIVE * 1000)
    found = []
    for name in list(backend.scan(PREFIX + "*")):
        record = _record(backend.get(name))
        if record is not None and record.last_beat >= oldest:
            found.append(record)
    return sorted(found, key=lambda r: (r.host, r.pid, r.id))


class Heartbeat:
    """One pool's registration. ``beat()`` is cheap to call often: it writes
    only once ``interval_s`` has passed since the last write."""

    def __init__(
        self,
        backend: KeyValue,
        kind: str,
        queues: Sequence[str],
        slots: int,
        busy: Callable[[], int],
        running: Callable[[], list[str]] = list,
        interval_s: float = HEARTBEAT_S,
    ) -> None:
        self.backend = backend
        self.busy = busy
        self.running = running
        self.interval_s = interval_s
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fields: dict[str, Any] = {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "kind": kind,
            "queues": list(queues),
            "slots": slots,
            "started_at": now_ms(),
        }
        self._next = 0.0
        self._failing = False

    @property
    def key(self) -> str:
        return PREFIX + self.id

    def beat(self) -> None:
        """Rewrite the record if it is due. A backend error is logged (once per
        outage) and never stops the pool: the record then just expires."""
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.interval_s
        record = {**self._fields, "busy": self.busy(), "running": self.running(), "last_beat": now_ms()}
        try:
            self.backend.set(self.key, record, ttl=int(self.interval_s * BEATS_TO_LIVE * 1000))
        except Exception as exc:
            if not self._failing:
                log.warning("cannot register this pool as a worker: %s: %s", type(exc).__name__, exc)
            self._failing = True
            return
        self._failing = False

    def stop(self) -> None:
        """Unregister: a pool that stops cleanly leaves the listing at once."""
        try:
            self.backend.delete(self.key, missing_ok=True)
        except Exception as exc:
            log.warning("cannot unregister this pool: %s: %s", type(exc).__name__, exc)
