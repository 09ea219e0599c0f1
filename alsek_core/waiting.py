"""Waiting for something stored to change: time budgets for blocking calls
(status waits, result fetches), and what storage without push offers."""

from __future__ import annotations

import time

#: Even a push listener re-reads this often, in case a notification was lost.
WAKE_CHECK_MS = 1000


class Deadline:
    """``None`` seconds means never."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def remaining_ms(self, cap: int) -> int:
        if self.end is None:
            return cap
        return max(0, min(cap, int((self.end - time.monotonic()) * 1000)))


class PollingListener:
    """What a backend without push offers: a short sleep, then "look again"."""

    interval_ms = 50

    def wait(self, timeout_ms: int) -> bool:
        time.sleep(max(0, min(timeout_ms, self.interval_ms)) / 1000)
        return False

    def close(self) -> None:
        pass
