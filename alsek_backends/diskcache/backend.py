"""The embedded backend: the key-value part (:mod:`.kv`, a DiskCache)
assembled with the native queue (:mod:`.queue`, SQLite tables in
queue.sqlite3 beside the cache), both in one directory (:mod:`.connection`).

Both are safe across processes on one host: every operation is an SQLite
transaction. The queue keeps its own file rather than sharing DiskCache's
``cache.db`` so that claims and acks never wait for status and result writes
(SQLite admits one writer per file), and so that it depends on no private
detail of DiskCache's schema.
"""

from __future__ import annotations

from pathlib import Path

import diskcache

from alsek_backends.diskcache.connection import DiskCacheConnection
from alsek_backends.diskcache.kv import DiskCacheKeyValue
from alsek_backends.diskcache.queue import SQLiteQueue
from alsek_core.backend import DEFAULT_NAMESPACE
from alsek_core.lazy import LazyClient
from alsek_core.ports import Serializer


class DiskCacheBackend(DiskCacheKeyValue):
    """``conn`` is a directory (default ``.alsek``), a ``diskcache.Cache``, or
    a LazyClient of one. Picklable: a copy reopens the same directory."""

    def __init__(
        self,
        conn: str | Path | diskcache.Cache | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        connection = DiskCacheConnection(conn)
        queue = SQLiteQueue(connection, namespace)
        super().__init__(connection, namespace=namespace, serializer=serializer, queue=queue)
