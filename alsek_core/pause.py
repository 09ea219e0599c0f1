"""Paused queues: one key-value flag per paused queue (``paused:<queue>``),
plus a stamp (``paused``) rewritten on every pause and resume.

A paused queue keeps its messages (ready, delayed, in flight) exactly as they
are; only claiming stops. Every claim of a pool asks whether its queues are
paused, and a read per claim would cost a round trip each, so a process
rereads the stamp at most every ``VIEW_MS`` and the flags only when the stamp
changed: a pause reaches every pool within ``VIEW_MS`` plus one claim's wait.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from alsek_core.message import new_uuid, validate_queue_name
from alsek_core.ports import KeyValue

#: How stale a process's view of the paused queues may be.
VIEW_MS = 500
STAMP = "paused"
PREFIX = "paused:"


class PausedQueues:
    """The paused queues of one backend, and this process's view of them."""

    def __init__(self, backend: KeyValue) -> None:
        self.backend = backend
        self._refresh = threading.Lock()
        self._stamp: Any = None
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def pause(self, queue: str) -> None:
        self.backend.set(PREFIX + validate_queue_name(queue), 1)
        self._changed()

    def resume(self, queue: str) -> None:
        self.backend.delete(PREFIX + validate_queue_name(queue), missing_ok=True)
        self._changed()

    def _changed(self) -> None:
        # Flag first, stamp second: a reader that sees the new stamp sees the flag.
        self.backend.set(STAMP, new_uuid())
        self._read_at = float("-inf")  # this process sees its own change at once

    def is_paused(self, queue: str) -> bool:
        """Read now, from the backend."""
        return self.backend.exists(PREFIX + validate_queue_name(queue))

    def names(self) -> list[str]:
        """Read now, from the backend."""
        return sorted(name[len(PREFIX) :] for name in self.backend.scan(PREFIX))

    def seen(self) -> frozenset[str]:
        """As this process last read them: at most ``VIEW_MS`` old."""
        if time.monotonic() - self._read_at >= VIEW_MS / 1000:
            with self._refresh:
                started = time.monotonic()
                if started - self._read_at >= VIEW_MS / 1000:
                    stamp = self.backend.get(STAMP)
                    if stamp is None:  # nothing was ever paused here
                        self._paused = frozenset()
                    elif stamp != self._stamp:
                        self._paused = frozenset(self.names())
                    self._stamp = stamp
                    self._read_at = started
        return self._paused

    def __getstate__(self) -> dict[str, Any]:
        return {"backend": self.backend}  # a view is per process; a lock cannot be pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["backend"])  # type: ignore[misc]
