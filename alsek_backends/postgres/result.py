"""Results as rows of a ``results`` table: one row per message, whatever its
family. A callback's or a triggered run's row names its progenitor, so a
family is a WHERE on that column, in write order, not a copy per ancestor.

The value goes through the backend's serializer on its own (a result the
serializer cannot encode raises SerializationError before anything is
written); ``timestamp`` and ``uuid`` of ``with_metadata`` are columns. Each
write NOTIFYs ``results:<uuid>`` (and the progenitor's) in the same
statement, on the backend's channels, so ``get(timeout=...)`` and
``ResultPool`` waits are pushed. Fetching without ``keep`` deletes in the
same statement that reads. Rows past ``result_ttl`` are invisible at once
and pruned now and then by writers.
"""

from __future__ import annotations

import time
from typing import Any

from alsek_backends.postgres.backend import PRUNE_INTERVAL_S, PostgresBackend
from alsek_backends.postgres.listen import channel_name
from alsek_backends.postgres.queries import queries
from alsek_backends.postgres.schema import Conn
from alsek_core.message import Message
from alsek_core.result import ResultStore, result_name


class PostgresResultStore(ResultStore):
    """Results of ``backend``'s namespace, in its schema's ``results`` table
    (``alsek db upgrade`` makes it). A drop-in for ResultStore."""

    backend: PostgresBackend

    def __init__(self, backend: PostgresBackend) -> None:
        super().__init__(backend)
        self._sql = queries("status_results.sql", backend.schema)
        self._pruned_at = time.monotonic()

    def _run(self, name: str, **params: Any) -> list[tuple[Any, ...]]:
        params["namespace"] = self.backend.namespace
        sql = self._sql[name]

        def work(conn: Conn) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

        return self.backend.db.run(work)

    def set(self, message: Message, result: Any, nx: bool = True) -> None:
        """Store once (``nx``): a redelivered message that ran twice keeps its first result."""
        data = self.backend.serializer.dumps(result)
        progenitor = message.progenitor_uuid if message.progenitor_uuid != message.uuid else None
        uuids = [message.uuid] + ([progenitor] if progenitor else [])
        channels = [channel_name(self.backend.schema, self.backend.namespace, result_name(u)) for u in uuids]
        self._run("set_result", uuid=message.uuid, progenitor_uuid=progenitor, result=data,
                  ttl=message.result_ttl, nx=nx, channels=channels)
        if message.result_ttl is not None and time.monotonic() - self._pruned_at > PRUNE_INTERVAL_S:
            self._pruned_at = time.monotonic()
            self._run("prune_results")

    def exists(self, message: Message, descendants: bool = False) -> bool:
        if descendants:
            [(complete,)] = self._run("family_complete", uuid=message.uuid,
                                      members=list(message.descendant_uuids or ()))
            return bool(complete)
        return bool(self._run("result_exists", uuid=message.uuid))

    def get(
        self,
        message: Message,
        timeout: int = 0,
        keep: bool = False,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Any:
        """The result, waiting up to ``timeout`` ms for it. Deleted once fetched
        unless ``keep``. With ``descendants``, a list for the whole family in
        the order the results were written. Raises KeyError when there is no
        result, TimeoutError when the wait ran out."""
        self._wait(message, timeout, descendants)
        if descendants:
            rows = self._run("get_family" if keep else "take_family", uuid=message.uuid)
        else:
            rows = self._run("get_result" if keep else "take_result", uuid=message.uuid)
            if not rows:  # taken or expired since it was seen
                raise KeyError(f"no result for {message.summary}")
        rows.sort(key=lambda row: row[3])
        shaped = [self._row(row, with_metadata) for row in rows]
        return shaped if descendants else shaped[0]

    def _row(self, row: tuple[Any, ...], with_metadata: bool) -> Any:
        uuid, data, written_at, _ = row
        result = self.backend.serializer.loads(bytes(data))
        return {"result": result, "timestamp": written_at, "uuid": uuid} if with_metadata else result

    def delete(self, message: Message, descendants: bool = True, missing_ok: bool = False) -> int:
        """Forget the message's result and, with ``descendants``, its family's;
        returns how many there were."""
        [(removed,)] = self._run("delete_family" if descendants else "delete_result", uuid=message.uuid)
        if not removed and not missing_ok:
            raise KeyError(f"no result for {message.summary}")
        return int(removed)
