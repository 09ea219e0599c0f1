"""The limit operations of the ``Queue`` port on Redis: each one call of
``limits.lua`` (which documents the keys), atomic on the server, on one key
hash-tagged by namespace and bucket or group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsek_backends.redis.connection import Client, translated
from alsek_backends.redis.scripts import Script

LIMITS = Script("limits.lua")


class RedisLimits:
    """``take_token`` / ``acquire_slot`` / ``release_slot`` (see ``Queue``)."""

    namespace: str

    if TYPE_CHECKING:  # what the queue it is mixed into provides

        @property
        def conn(self) -> Client: ...

        @property
        def where(self) -> str: ...

    def _limit_key(self, name: str, kind: str) -> str:
        return f"{{{self.namespace}:limit:{name}}}:{kind}"

    @translated
    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        return int(LIMITS(self.conn, self._limit_key(bucket, "rate"), "TAKE", repr(float(rate_per_s)), burst))

    @translated
    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        return bool(LIMITS(self.conn, self._limit_key(group, "slots"), "ACQUIRE", holder, limit, lease_ms))

    @translated
    def release_slot(self, group: str, holder: str) -> None:
        LIMITS(self.conn, self._limit_key(group, "slots"), "RELEASE", holder)
