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

from typing import Any

from alsek_backends.postgres.connection import PruneThrottle, Statements
from alsek_backends.postgres.kv import PostgresKeyValue
from alsek_backends.postgres.listen import channel_name
from alsek_core.message import Message
from alsek_core.ports import ResultWrite
from alsek_core.result import ResultStore, family_of, result_name


class PostgresResultStore(PruneThrottle, ResultStore):
    """Results of ``backend``'s namespace, in its schema's ``results`` table
    (``alsek db upgrade`` makes it). A drop-in for ResultStore."""

    backend: PostgresKeyValue

    def __init__(self, backend: PostgresKeyValue) -> None:
        super().__init__(backend)
        self._sql = Statements(backend.db, "status_results.sql", namespace=backend.namespace)

    def set(self, message: Message, result: Any, nx: bool = True) -> None:
        """Store once (``nx``): a redelivered message that ran twice keeps its first result."""
        data = self.backend.serializer.dumps(result)
        progenitor = message.progenitor_uuid if message.progenitor_uuid != message.uuid else None
        uuids = [message.uuid] + ([progenitor] if progenitor else [])
        channels = [channel_name(self.backend.schema, self.backend.namespace, result_name(u)) for u in uuids]
        self._sql.rows("set_result", uuid=message.uuid, progenitor_uuid=progenitor, result=data,
                  ttl=message.result_ttl, nx=nx, channels=channels)
        if message.result_ttl is not None and self.prune_due():
            self._sql.rows("prune_results")

    def write(self, message: Message, result: Any) -> ResultWrite:
        """As part of a settlement: the value alone is what the table keeps."""
        return ResultWrite(message.uuid, family_of(message), self.record(message, result), message.result_ttl,
                           self.backend.serializer.dumps(result))

    def exists(self, message: Message, descendants: bool = False) -> bool:
        if descendants:
            [row] = self._sql.rows("family_complete", uuid=message.uuid,
                              members=list(message.descendant_uuids or ()))
            return bool(row.complete)
        return bool(self._sql.rows("result_exists", uuid=message.uuid))

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
            rows = self._sql.rows("get_family" if keep else "take_family", uuid=message.uuid)
        else:
            rows = self._sql.rows("get_result" if keep else "take_result", uuid=message.uuid)
            if not rows:  # taken or expired since it was seen
                raise KeyError(f"no result for {message.summary}")
        rows.sort(key=lambda row: row.write_order)
        shaped = [self._row(row, with_metadata) for row in rows]
        return shaped if descendants else shaped[0]

    def _row(self, row: Any, with_metadata: bool) -> Any:
        result = self.backend.serializer.loads(bytes(row.result))
        if with_metadata:
            return {"result": result, "timestamp": row.written_at, "uuid": row.uuid}
        return result

    def delete(self, message: Message, descendants: bool = True, missing_ok: bool = False) -> int:
        """Forget the message's result and, with ``descendants``, its family's;
        returns how many there were."""
        [row] = self._sql.rows("delete_family" if descendants else "delete_result", uuid=message.uuid)
        if not row.removed and not missing_ok:
            raise KeyError(f"no result for {message.summary}")
        return int(row.removed)
