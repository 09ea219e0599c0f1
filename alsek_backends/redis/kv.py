"""The key-value part of the Redis backend: one Redis key per name, values
through the serializer, TTLs as PX, scans by SCAN; ``notify``/``listen`` over
pub/sub. On its own it is a complete five-method backend (the generic queue);
:mod:`alsek_backends.redis.backend` assembles it with the native queue."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, cast

from alsek_backends.redis.connection import Client, RedisConnection, translated
from alsek_backends.redis.scripts import Script
from alsek_backends.redis.wakeups import PubSubListener
from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.ports import Queue, Serializer

DELETE_IF = Script("delete_if.lua")


class RedisKeyValue(Backend):
    def __init__(
        self,
        connection: RedisConnection,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        queue: Queue | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer, queue=queue)
        self.connection = connection

    @property
    def conn(self) -> Client:
        return self.connection.client

    @property
    def where(self) -> str:
        return self.connection.where

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
        return bool(DELETE_IF(self.conn, self.full_name(name), data))

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

    @translated
    def notify(self, channel: str) -> None:
        self.conn.publish(self.full_name(channel), b"")

    @translated
    def listen(self, channels: Sequence[str]) -> PubSubListener:
        return PubSubListener(self.conn, [self.full_name(c) for c in channels])

    def close(self) -> None:
        self.connection.close()
