"""Statuses as rows of a ``statuses`` table, so an application can join them
with its own tables and watch them with plain SQL.

A write is one upsert that NOTIFYs ``status:<uuid>`` in the same statement,
on the backend's channel for it: waiters (``wait_for``, ``listen``) are
pushed, not polling, and a tracker on the key-value store would wake the
same listeners. Expired rows (with a ``ttl``) are invisible at once and
pruned now and then by writers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from alsek_backends.postgres.backend import PRUNE_INTERVAL_S, PostgresBackend
from alsek_backends.postgres.listen import channel_name
from alsek_backends.postgres.queries import queries
from alsek_backends.postgres.schema import Conn
from alsek_core.message import Message
from alsek_core.ports import Listener
from alsek_core.status import BaseStatusTracker, TaskStatus, status_name


class PostgresStatusTracker(BaseStatusTracker):
    """Statuses of ``backend``'s namespace, in its schema's ``statuses`` table
    (``alsek db upgrade`` makes it); ``ttl`` in ms, None to keep them."""

    def __init__(self, backend: PostgresBackend, ttl: int | None = None) -> None:
        self.backend = backend
        self.ttl = ttl
        self._sql = queries("status_results.sql", backend.schema)
        self._pruned_at = time.monotonic()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, ttl={self.ttl!r})"

    def _run(self, name: str, **params: Any) -> list[tuple[Any, ...]]:
        params["namespace"] = self.backend.namespace
        sql = self._sql[name]

        def work(conn: Conn) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

        return self.backend.db.run(work)

    def set(self, message: Message, status: TaskStatus) -> None:
        channel = channel_name(self.backend.schema, self.backend.namespace, status_name(message.uuid))
        self._run("set_status", uuid=message.uuid, ttl=self.ttl, channel=channel,
                  **self.make_record(message, status))
        if self.ttl is not None and time.monotonic() - self._pruned_at > PRUNE_INTERVAL_S:
            self._pruned_at = time.monotonic()
            self._run("prune_statuses")

    def record(self, uuid: str) -> dict[str, Any] | None:
        rows = self._run("get_status", uuid=uuid)
        if not rows:
            return None
        status, queue, task_name, updated_at = rows[0]
        return {"status": status, "queue": queue, "task_name": task_name, "updated_at": updated_at}

    def uuids(self) -> Iterator[str]:
        return iter([row[0] for row in self._run("status_uuids")])

    def remove(self, uuid: str) -> None:
        self._run("remove_status", uuid=uuid)

    def listener(self, uuid: str) -> Listener:
        return self.backend.listen([status_name(uuid)])
