"""Statuses on Redis as on any backend (one key per message, the layout of
:class:`alsek_core.status.StatusTracker`), with each write and the
notification that wakes its waiters sent in one round trip instead of two:
a worker writes RUNNING for every message it starts."""

from __future__ import annotations

from redis.cluster import RedisCluster

from alsek_backends.redis.connection import translated
from alsek_backends.redis.kv import RedisKeyValue
from alsek_core.message import Message
from alsek_core.status import StatusTracker, TaskStatus, status_name


class RedisStatusTracker(StatusTracker):
    """The home of ``StatusTracker(backend)`` on a RedisBackend."""

    backend: RedisKeyValue

    @property
    def where(self) -> str:
        return self.backend.where

    @translated
    def set(self, message: Message, status: TaskStatus) -> None:
        key = self.backend.full_name(status_name(message.uuid))
        record = self.backend.serializer.dumps(self.make_record(message, status))
        conn = self.backend.conn
        if isinstance(conn, RedisCluster):  # a cluster pipeline refuses PUBLISH: two calls
            conn.set(key, record, px=self.ttl)
            conn.publish(key, b"")
            return
        pipe = conn.pipeline(transaction=False)
        pipe.set(key, record, px=self.ttl)
        pipe.publish(key, b"")
        pipe.execute()
