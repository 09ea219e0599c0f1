"""Rate and concurrency limits built only on the five key-value methods: the
generic half of the ``Queue`` port's limit operations, which
:class:`~alsek_core.kv_queue.KVQueue` (so every five-method backend) has.

Layout, under the backend's namespace::

    limits:rate:<bucket>    the bucket's theoretical arrival time (ms since
                            the epoch): when it would be full again if
                            nothing more were taken; expires then
    limits:slots:<group>    {holder: end of its lease (ms)}; expires with the
                            last lease

The five methods cannot read and write in one step, so each update holds the
lock ``locks:limits:...`` (:class:`alsek_core.lock.Lock`), whose TTL frees it
if its holder dies in between. Times are this host's clock: hosts sharing a
five-method backend should keep their clocks in sync (NTP), as they must for
leases anyway.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from alsek_core.clock import now_ms
from alsek_core.errors import AlsekError
from alsek_core.lock import Lock
from alsek_core.ports import KeyValue

#: Longest a limit update can take; a lock outliving it was its dead holder's.
LOCK_TTL_MS = 5_000
#: Give up (the worker retries the message later) after waiting this long.
LOCK_WAIT_S = 10.0


def reserve_token(tat: float | None, now: float, rate_per_s: float, burst: int) -> tuple[float, int]:
    """The bucket after one more token is reserved, and how long (ms) until
    that token is due (0: now). ``tat`` moves one interval further each time,
    so reservations queue up behind each other instead of racing for the
    next token (GCRA: a full bucket has ``tat <= now``)."""
    interval = 1000.0 / rate_per_s
    new_tat = max(tat if tat is not None else now, now) + interval
    return new_tat, max(0, math.ceil(new_tat - now - burst * interval))


def live_holders(holders: dict[str, int] | None, now: int) -> dict[str, int]:
    return {holder: end for holder, end in (holders or {}).items() if end > now}


class KVLimits:
    """``take_token`` / ``acquire_slot`` / ``release_slot`` (see ``Queue``) on ``self.kv``."""

    kv: KeyValue

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        lock = Lock(name, backend=self.kv, ttl=LOCK_TTL_MS, owner_id=uuid.uuid4().hex)
        deadline = time.monotonic() + LOCK_WAIT_S
        pause = 0.001
        while not lock.acquire():
            if time.monotonic() > deadline:
                raise AlsekError(f"could not lock {name!r} within {LOCK_WAIT_S:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        try:
            yield
        finally:
            lock.release()

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        name = f"limits:rate:{bucket}"
        with self._exclusive(name):
            now = now_ms()
            tat, wait_ms = reserve_token(self.kv.get(name), now, rate_per_s, burst)
            self.kv.set(name, tat, ttl=max(1, math.ceil(tat - now)))
        return wait_ms

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        name = f"limits:slots:{group}"
        with self._exclusive(name):
            now = now_ms()
            holders = live_holders(self.kv.get(name), now)
            if holder not in holders and len(holders) >= limit:
                return False
            holders[holder] = now + lease_ms
            self.kv.set(name, holders, ttl=max(holders.values()) - now)
        return True

    def release_slot(self, group: str, holder: str) -> None:
        name = f"limits:slots:{group}"
        with self._exclusive(name):
            now = now_ms()
            holders = live_holders(self.kv.get(name), now)
            if holders.pop(holder, None) is None:
                return
            if holders:
                self.kv.set(name, holders, ttl=max(holders.values()) - now)
            else:
                self.kv.delete(name, missing_ok=True)
