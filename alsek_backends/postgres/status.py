"""Statuses as rows of a ``statuses`` table, so an application can join them
with its own tables and watch them with plain SQL.

A write is one upsert that NOTIFYs ``status:<uuid>`` in the same statement,
on the backend's channel for it: waiters (``wait_for``, ``listen``) are
pushed, not polling, and a tracker on the key-value store would wake the
same listeners. Expired rows (with a ``ttl``) are invisible at once and
pruned now and then by writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alsek_backends.postgres.connection import PruneThrottle, Statements
from alsek_backends.postgres.kv import PostgresKeyValue
from alsek_backends.postgres.listen import channel_name
from alsek_core.message import Message
from alsek_core.ports import Listener
from alsek_core.status import TERMINAL_STATUSES, StatusTracker, TaskStatus, status_name


class PostgresStatusTracker(PruneThrottle, StatusTracker):
    """Statuses of ``backend``'s namespace, in its schema's ``statuses`` table
    (``alsek db upgrade`` makes it); ``ttl`` in ms, None to keep them. The
    home of ``StatusTracker(backend)`` on PostgreSQL."""

    backend: PostgresKeyValue

    def __init__(self, backend: PostgresKeyValue, ttl: int | None = None) -> None:
        self.backend = backend
        self.ttl = ttl
        self._sql = Statements(backend.db, "status_results.sql", namespace=backend.namespace)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, ttl={self.ttl!r})"

    def set(self, message: Message, status: TaskStatus) -> None:
        channel = channel_name(self.backend.schema, self.backend.namespace, status_name(message.uuid))
        self._sql.rows("set_status", uuid=message.uuid, ttl=self.ttl, channel=channel,
                  durable=status in TERMINAL_STATUSES, **self.make_record(message, status))
        if self.ttl is not None and self.prune_due():
            self._sql.rows("prune_statuses")

    def record(self, uuid: str) -> dict[str, Any] | None:
        rows = self._sql.rows("get_status", uuid=uuid)
        if not rows:
            return None
        return rows[0]._asdict()  # type: ignore[no-any-return]

    def exists(self, message: Message) -> bool:
        return self.record(message.uuid) is not None

    def uuids(self) -> Iterator[str]:
        return iter([row.uuid for row in self._sql.rows("status_uuids")])

    def remove(self, uuid: str) -> None:
        self._sql.rows("remove_status", uuid=uuid)

    def listener(self, uuid: str) -> Listener:
        return self.backend.listen([status_name(uuid)])
