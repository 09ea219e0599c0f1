"""Time budgets for blocking calls (status waits, result fetches)."""

from __future__ import annotations

import time


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
