"""The job history (``ports.History``) on Redis: per queue and kind a sorted
set of uuids by finish time and a hash of entries, capped in time and count
by ``history.lua`` in the call that adds a batch (so the count never exceeds
its cap, even for an instant).

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
from alsek_core.clock import now_ms
from alsek_core.history import KINDS, HistoryEntry, Retention
from alsek_core.ports import History, Serializer

HISTORY = Script("history.lua")
#: How often a process re-adds a queue to the set of queues with history.
REGISTRY_REFRESH_S = 10.0


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
            groups[(entry.queue, entry.kind)] += [entry.uuid, entry.finished_at,
                                                  self.serializer.dumps(entry.to_dict())]
        now = now_ms()
        for (queue, kind), args in groups.items():
            ms, count = retention.bounds(kind)
            if ms > 0 and count > 0:
                HISTORY(self.conn, self.key(queue, kind), now, ms, count, *args)
                self._register(queue)

    def _register(self, queue: str) -> None:
        if time.monotonic() - self._registered.get(queue, -REGISTRY_REFRESH_S) >= REGISTRY_REFRESH_S:
            self.conn.sadd(self.registry_key, queue)
            self._registered[queue] = time.monotonic()

    def _entries(self, key: str, uuids: list[bytes]) -> list[HistoryEntry]:
        if not uuids:
            return []
        found = []
        for data in cast(list[bytes | None], self.conn.hmget(key + ":e", uuids)):
            entry = None if data is None else HistoryEntry.from_dict(self.serializer.loads(data))
            if entry is not None:
                found.append(entry)
        return found

    @translated
    def history_of(self, queue: str, kind: str, limit: int) -> list[HistoryEntry]:
        key = self.key(queue, kind)
        return self._entries(key, cast(list[bytes], self.conn.zrevrange(key, 0, limit - 1)))

    @translated
    def history_entry(self, queue: str, uuid: str) -> HistoryEntry | None:
        for kind in KINDS:
            found = self._entries(self.key(queue, kind), [uuid.encode()])
            if found:
                return found[0]
        return None

    def count(self, queue: str, kind: str) -> int:
        """How many entries a queue's ``kind`` holds now (for inspection)."""
        return int(self.conn.zcard(self.key(queue, kind)))

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
