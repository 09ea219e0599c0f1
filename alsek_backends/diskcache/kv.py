"""The key-value part of the DiskCache backend: one DiskCache entry per name,
holding the serializer's bytes; TTLs are DiskCache's expiry. On its own it is
a complete five-method backend (the generic queue);
:mod:`alsek_backends.diskcache.backend` assembles it with the SQLite queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import diskcache

from alsek_backends.diskcache.connection import DiskCacheConnection
from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.ports import Queue, Serializer

_MISSING = object()


class DiskCacheKeyValue(Backend):
    def __init__(
        self,
        connection: DiskCacheConnection,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        queue: Queue | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer, queue=queue)
        self.connection = connection

    @property
    def conn(self) -> diskcache.Cache:
        return self.connection.cache

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
        self.connection.close()


def _literal_head(pattern: str) -> str:
    """The part of a glob before its first wildcard."""
    for i, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:i]
    return pattern
