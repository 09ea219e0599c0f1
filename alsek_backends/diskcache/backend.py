"""The embedded backend: key-value storage in a DiskCache, the queue in SQLite
tables beside it (queue.sqlite3 in the same directory).

Both are safe across processes on one host: every operation is an SQLite
transaction. The queue keeps its own file rather than sharing DiskCache's
``cache.db`` so that claims and acks never wait for status and result writes
(SQLite admits one writer per file), and so that it depends on no private
detail of DiskCache's schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from alsek_backends.diskcache.connections import Connections
from alsek_backends.diskcache.queue import SQLiteQueue
from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.lazy import LazyClient, resolve
from alsek_core.ports import Serializer

DEFAULT_DIRECTORY = ".alsek"
QUEUE_FILE = "queue.sqlite3"
_MISSING = object()


class DiskCacheBackend(SQLiteQueue, Backend):
    """``conn`` is a directory, a ``diskcache.Cache``, or a LazyClient of one.

    Picklable: a copy (say, in a spawned worker process) reopens the same
    directory with its own connections. A ``diskcache.Cache`` given as ``conn``
    is reopened by directory there, with DiskCache's default settings.
    """

    def __init__(
        self,
        conn: str | Path | diskcache.Cache | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        if conn is None or isinstance(conn, (str, Path)):
            directory = str(conn or DEFAULT_DIRECTORY)
            conn = LazyClient(lambda: diskcache.Cache(directory))
        else:
            directory = None
        self._conn: diskcache.Cache | LazyClient = conn
        self._directory = directory
        self._queue_db: Connections | None = None

    @property
    def conn(self) -> diskcache.Cache:
        if isinstance(self._conn, LazyClient):
            self._conn = resolve(self._conn)
        return self._conn

    @property
    def directory(self) -> str:
        if self._directory is None:
            self._directory = str(self.conn.directory)
        return self._directory

    @property
    def queue_db(self) -> Connections:
        if self._queue_db is None:
            self._queue_db = Connections(os.path.join(self.directory, QUEUE_FILE))
        return self._queue_db

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "namespace": self.namespace, "serializer": self.serializer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["namespace"], state["serializer"])  # type: ignore[misc]

    def exists(self, name: str) -> bool:
        return self.full_name(name) in self.conn

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        expire = None if ttl is None else ttl / 1000
        if nx:
            if not self.conn.add(self.full_name(name), data, expire=expire):
                raise KeyExistsError(f"name {name!r} already exists")
        else:
            self.conn.set(self.full_name(name), data, expire=expire)

    def get(self, name: str, default: Any = None) -> Any:
        data = self.conn.get(self.full_name(name), default=_MISSING)
        return default if data is _MISSING else self.serializer.loads(data)

    def delete(self, name: str, missing_ok: bool = False) -> None:
        if not self.conn.delete(self.full_name(name)) and not missing_ok:
            raise KeyError(f"no such name: {name!r}")

    def delete_if(self, name: str, value: Any) -> bool:
        key, data = self.full_name(name), self.serializer.dumps(value)
        with self.conn.transact():  # one SQLite write transaction: no one between
            if self.conn.get(key, default=_MISSING) != data:
                return False
            return bool(self.conn.delete(key))

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        """DiskCache iterates keys in SQLite's sort order (for strings, the same
        as Python's), so the names sharing the pattern's literal head are one
        run: the scan stops at its end instead of reading every later key."""
        head = self.full_name(_literal_head(pattern or ""))
        for key in self.conn.iterkeys():
            if not isinstance(key, str) or key < head:
                continue
            if not key.startswith(head):
                break
            name = self.short_name(key)
            if self.matches(name, pattern) and key in self.conn:
                yield name

    def close(self) -> None:
        if not isinstance(self._conn, LazyClient):
            self._conn.close()
        if self._queue_db is not None:
            self._queue_db.close()


def _literal_head(pattern: str) -> str:
    """The part of a glob before its first wildcard."""
    for i, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:i]
    return pattern
