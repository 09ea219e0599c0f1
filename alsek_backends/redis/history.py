"""The job history (``ports.History``) on Redis: per queue and kind a stream,
capped in time and count by ``history.lua`` in the call that adds a batch
(so the count never exceeds its cap, even for an instant). A stream costs
the server little per entry (appends, trims from its head); finding one
message's entry reads it from the newest back, a page at a time.

Its keys are under the namespace (``<ns>:history:...``), so a key-value scan
of the namespace (``alsek purge``, tests' clean-up) sees and removes them,
and hash-tagged per queue, so a Redis Cluster holds them. Queues with
history are kept in the set ``<ns>:history:queues``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from alsek_backends.redis.connection import Client, RedisConnection, translated
from alsek_backends.redis.keys import queue_prefix
from alsek_backends.redis.scripts import Script
from alsek_core.errors import SerializationError
from alsek_core.history import KINDS, HistoryEntry, Retention
from alsek_core.ports import History, Serializer

HISTORY = Script("history.lua")
#: How often a process re-adds a queue to the set of queues with history.
REGISTRY_REFRESH_S = 10.0
#: Entries per read when looking for one message's.
PAGE = 1000


class RedisHistory(History):
    def __init__(self, connection: RedisConnection, namespace: str, serializer: Serializer) -> None:
        self.connection = connection
        self.namespace = namespace
        self.serializer = serializer
        self._registered: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"connection": self.connection, "namespace": self.namespace, "serializer": self.serializer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @property
    def conn(self) -> Client:
        return self.connection.client

    @property
    def where(self) -> str:
        return self.connection.where

    @property
    def registry_key(self) -> str:
        return f"{self.namespace}:history:queues"

    def key(self, queue: str, kind: str) -> str:
        return f"{self.namespace}:history:{queue_prefix(self.namespace, queue)}:{kind}"

    @translated
    def record_history(self, entries: Sequence[HistoryEntry], retention: Retention) -> None:
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for entry in entries:
            groups[(entry.queue, entry.kind)] += [entry.uuid, self.serializer.dumps(entry.to_row())]
        for (queue, kind), args in groups.items():
            ms, count = retention.bounds(kind)
            if ms > 0 and count > 0:
                HISTORY(self.conn, self.key(queue, kind), ms, count, *args)
                self._register(queue)

    def _register(self, queue: str) -> None:
        if time.monotonic() - self._registered.get(queue, -REGISTRY_REFRESH_S) >= REGISTRY_REFRESH_S:
            self.conn.sadd(self.registry_key, queue)
            self._registered[queue] = time.monotonic()

    def _entry(self, queue: str, fields: dict[bytes, bytes]) -> HistoryEntry | None:
        uuid, row = fields.get(b"u"), fields.get(b"e")
        if uuid is None or row is None:
            return None
        try:
            return HistoryEntry.from_row(uuid.decode(), queue, self.serializer.loads(row))
        except (UnicodeDecodeError, SerializationError):
            return None

    @translated
    def history_of(self, queue: str, kind: str, limit: int) -> list[HistoryEntry]:
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]],
                    self.conn.xrevrange(self.key(queue, kind), count=limit))
        return [entry for _, fields in rows if (entry := self._entry(queue, fields)) is not None]

    @translated
    def history_entry(self, queue: str, uuid: str) -> HistoryEntry | None:
        wanted = uuid.encode()
        for kind in KINDS:
            key, newest = self.key(queue, kind), "+"
            while rows := cast(list[tuple[bytes, dict[bytes, bytes]]],
                               self.conn.xrevrange(key, max=newest, count=PAGE)):
                for _, fields in rows:
                    if fields.get(b"u") == wanted:
                        return self._entry(queue, fields)
                newest = "(" + rows[-1][0].decode()
        return None

    def count(self, queue: str, kind: str) -> int:
        """How many entries a queue's ``kind`` holds now (for inspection)."""
        return int(self.conn.xlen(self.key(queue, kind)))

    @translated
    def history_queues(self) -> list[str]:
        """Queues whose history expired are dropped from the set as they are seen."""
        found = []
        for raw in cast(set[bytes], self.conn.smembers(self.registry_key)):
            queue = raw.decode()
            if any(self.conn.exists(self.key(queue, kind)) for kind in KINDS):
                found.append(queue)
            else:
                self.conn.srem(self.registry_key, queue)
        return sorted(found)
