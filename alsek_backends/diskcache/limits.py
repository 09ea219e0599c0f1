"""The limit operations of the ``Queue`` port on DiskCache: each one read and
write inside one cache transaction (an SQLite write transaction), so every
process on the host sees them happen one at a time. The arithmetic is the
generic path's (:mod:`alsek_core.kv_limits`); the layout is its too, in the
cache, as JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import diskcache

from alsek_backends.diskcache.connection import DiskCacheConnection
from alsek_core.clock import now_ms
from alsek_core.kv_limits import live_holders, reserve_token


class DiskCacheLimits:
    """``take_token`` / ``acquire_slot`` / ``release_slot`` (see ``Queue``)."""

    connection: DiskCacheConnection
    namespace: str

    def _cache(self) -> diskcache.Cache:
        return self.connection.cache

    @staticmethod
    def _read(cache: diskcache.Cache, key: str) -> Any:
        data = cache.get(key)
        return None if data is None else json.loads(data)

    @staticmethod
    def _write(cache: diskcache.Cache, key: str, value: Any, ttl_ms: float) -> None:
        cache.set(key, json.dumps(value).encode(), expire=max(ttl_ms, 1) / 1000)

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        cache, key = self._cache(), f"{self.namespace}:limits:rate:{bucket}"
        with cache.transact(retry=True):
            now = now_ms()
            tat, wait_ms = reserve_token(self._read(cache, key), now, rate_per_s, burst)
            self._write(cache, key, tat, math.ceil(tat - now))
        return wait_ms

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        cache, key = self._cache(), f"{self.namespace}:limits:slots:{group}"
        with cache.transact(retry=True):
            now = now_ms()
            holders = live_holders(self._read(cache, key), now)
            if holder not in holders and len(holders) >= limit:
                return False
            holders[holder] = now + lease_ms
            self._write(cache, key, holders, max(holders.values()) - now)
        return True

    def release_slot(self, group: str, holder: str) -> None:
        cache, key = self._cache(), f"{self.namespace}:limits:slots:{group}"
        with cache.transact(retry=True):
            now = now_ms()
            holders = live_holders(self._read(cache, key), now)
            if holders.pop(holder, None) is None:
                return
            if holders:
                self._write(cache, key, holders, max(holders.values()) - now)
            else:
                cache.delete(key)
