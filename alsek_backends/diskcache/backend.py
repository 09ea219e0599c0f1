"""DiskCache key-value storage; safe across processes on one host because
DiskCache commits every operation in an SQLite transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.lazy import LazyClient, resolve
from alsek_core.ports import Serializer

DEFAULT_DIRECTORY = ".alsek"
_MISSING = object()


class DiskCacheBackend(Backend):
    """``conn`` is a directory, a ``diskcache.Cache``, or a LazyClient of one."""

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
        self._conn: diskcache.Cache | LazyClient = conn

    @property
    def conn(self) -> diskcache.Cache:
        if isinstance(self._conn, LazyClient):
            self._conn = resolve(self._conn)
        return self._conn

    @property
    def directory(self) -> str:
        return str(self.conn.directory)

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

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        prefix = self.full_name("")
        for key in list(self.conn.iterkeys()):
            if isinstance(key, str) and key.startswith(prefix):
                name = self.short_name(key)
                if self.matches(name, pattern) and key in self.conn:
                    yield name

    def close(self) -> None:
        if not isinstance(self._conn, LazyClient):
            self._conn.close()
