"""Redis (or Redis Cluster) as an alsek backend: the key-value part
(:mod:`.kv`) assembled with the native queue (:mod:`.queue`, in Lua), both
on one shared client (:mod:`.connection`)."""

from __future__ import annotations

from alsek_backends.redis.connection import Client, RedisConnection
from alsek_backends.redis.history import RedisHistory
from alsek_backends.redis.keys import QueueKeys
from alsek_backends.redis.kv import RedisKeyValue
from alsek_backends.redis.queue import RedisQueue
from alsek_backends.redis.status import RedisStatusTracker
from alsek_core.backend import DEFAULT_NAMESPACE
from alsek_core.lazy import LazyClient
from alsek_core.ports import Serializer


class RedisBackend(RedisKeyValue):
    """``conn`` is a URL (``redis://``, ``rediss://``, ``unix://`` or
    ``redis+cluster://``), a ``redis.Redis`` or ``redis.RedisCluster`` client
    (one built with ``decode_responses=True``, as Alsek asks for, is used for
    its connection settings only), a LazyClient of one, or None for
    ``redis://localhost:6379/0``. Nothing connects until first use.

    Pickling carries the connection parameters, not the sockets, so a worker
    pool's child processes rebuild their own client.
    """

    queue: RedisQueue
    history_store: RedisHistory
    status_tracker_class = RedisStatusTracker

    def __init__(
        self,
        conn: str | Client | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        connection = RedisConnection(conn)
        queue = RedisQueue(connection, namespace)
        super().__init__(connection, namespace=namespace, serializer=serializer, queue=queue)
        self.history_store = RedisHistory(connection, namespace, self.serializer)

    @property
    def registry_key(self) -> str:
        """Where the queue's names are kept (for inspection)."""
        return self.queue.registry_key

    def keys(self, queue: str) -> QueueKeys:
        """The names of one queue's keys (for inspection)."""
        return self.queue.keys(queue)

    def close(self) -> None:
        """Drop connections this backend opened; it reconnects if used again.
        A client the caller passed in stays theirs to close."""
        self.queue.close()
        super().close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, namespace={self.namespace!r})"
