"""One clock for the whole library: integer milliseconds since the epoch, the
unit every stored timestamp (ready_at, created_at, leases, TTLs) uses."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
