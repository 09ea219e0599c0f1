"""Redis (or Redis Cluster) as an alsek backend: the key-value methods here,
the native queue operations in :mod:`alsek_backends.redis.queue`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from alsek_backends.redis.connection import (
    DEFAULT_URL,
    Client,
    ClientRecipe,
    check_client,
    translated,
    where,
)
from alsek_backends.redis.queue import RedisQueue, lua_script
from alsek_core.backend import DEFAULT_NAMESPACE
from alsek_core.errors import KeyExistsError
from alsek_core.lazy import LazyClient, resolve
from alsek_core.ports import Serializer

DELETE_IF_LUA, DELETE_IF_SHA = lua_script("delete_if.lua")


class RedisBackend(RedisQueue):
    """``conn`` is a URL (``redis://``, ``rediss://``, ``unix://`` or
    ``redis+cluster://``), a ``redis.Redis`` or ``redis.RedisCluster`` client
    (one built with ``decode_responses=True``, as Alsek asks for, is used for
    its connection settings only), a LazyClient of one, or None for
    ``redis://localhost:6379/0``. Nothing connects until first use.

    Pickling carries the connection parameters, not the sockets, so a worker
    pool's child processes rebuild their own client.
    """

    def __init__(
        self,
        conn: str | Client | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self._recipe: ClientRecipe | None = None
        if conn is None or isinstance(conn, str):
            self._recipe = ClientRecipe.from_url(conn or DEFAULT_URL)
            conn = LazyClient(self._recipe.build)
        elif isinstance(conn, (redis.Redis, RedisCluster)) and conn.get_encoder().decode_responses:
            # Alsek asks for a decoding client, but payloads are bytes: talk
            # to the same server through a non-decoding client of our own.
            self._recipe = ClientRecipe.from_client(conn)
            conn = LazyClient(self._recipe.build)
        elif not isinstance(conn, LazyClient):
            conn = check_client(conn)
        self._conn: Client | LazyClient = conn

    @property
    def conn(self) -> Client:
        """The live client (a LazyClient is evaluated on first use)."""
        if isinstance(self._conn, LazyClient):
            self._conn = check_client(resolve(self._conn))
        return self._conn

    @property
    def where(self) -> str:
        if self._recipe is not None:
            return self._recipe.where
        if isinstance(self._conn, LazyClient):
            return "(a client not built yet)"
        return where(self._conn)

    @translated
    def exists(self, name: str) -> bool:
        return bool(self.conn.exists(self.full_name(name)))

    @translated
    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        if self.conn.set(self.full_name(name), data, nx=nx, px=ttl) is None:
            raise KeyExistsError(f"name {name!r} already exists")

    @translated
    def get(self, name: str, default: Any = None) -> Any:
        data = cast(bytes | None, self.conn.get(self.full_name(name)))
        return default if data is None else self.serializer.loads(data)

    @translated
    def delete(self, name: str, missing_ok: bool = False) -> None:
        if not self.conn.delete(self.full_name(name)) and not missing_ok:
            raise KeyError(f"no such name: {name!r}")

    @translated
    def delete_if(self, name: str, value: Any) -> bool:
        data = self.serializer.dumps(value)
        return bool(self._script(DELETE_IF_LUA, DELETE_IF_SHA, self.full_name(name), data))

    @translated
    def scan(self, pattern: str | None = None) -> Iterator[str]:
        # SCAN may return a key twice; the namespace is escaped so that its
        # own characters never act as glob syntax.
        match = re.sub(r"([\\\[\]])", r"\\\1", self.namespace) + ":" + (pattern or "") + "*"
        seen: set[bytes] = set()
        for key in self.conn.scan_iter(match=match, count=1000):
            if key not in seen:
                seen.add(key)
                yield self.short_name(key.decode())

    def close(self) -> None:
        """Drop connections this backend opened; it reconnects if used again.
        A client the caller passed in stays theirs to close."""
        self.close_waiters()
        if self._recipe is not None and not isinstance(self._conn, LazyClient):
            self._conn.close()
            self._conn = LazyClient(self._recipe.build)

    def __getstate__(self) -> dict[str, Any]:
        recipe = self._recipe or ClientRecipe.from_client(self.conn)
        return {"namespace": self.namespace, "serializer": self.serializer, "recipe": recipe}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.namespace = state["namespace"]
        self.serializer = state["serializer"]
        self._recipe = state["recipe"]
        self._conn = LazyClient(state["recipe"].build)
        self._reset_queue_state()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, namespace={self.namespace!r})"
