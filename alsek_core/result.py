"""Task results, stored on any backend (it need not be the broker's).

Layout: ``results:<uuid>`` for a message, and for a message that descends from
another (a callback or a triggered run) also a copy under
``results:<progenitor>:descendants:<uuid>`` so all of a family can be fetched
at once. Writers notify ``results:<uuid>`` (and the progenitor's) so waiters
are woken where the backend can push.
"""

from __future__ import annotations

import time
from typing import Any

from alsek_core.errors import KeyExistsError
from alsek_core.message import Message
from alsek_core.ports import Backend, ResultWrite
from alsek_core.waiting import WAKE_CHECK_MS, Deadline

#: What ``get(..., with_metadata=True)`` returns for each result, as in Alsek.
METADATA_KEYS = ("result", "timestamp", "uuid")


def result_name(uuid: str) -> str:
    return f"results:{uuid}"


def descendants_prefix(uuid: str) -> str:
    return f"results:{uuid}:descendants:"


def family_of(message: Message) -> str | None:
    """The progenitor whose family the message's result joins, if any."""
    progenitor = message.progenitor_uuid
    return progenitor if progenitor and progenitor != message.uuid else None


def record_names(uuid: str, progenitor_uuid: str | None) -> list[str]:
    """Where a result's record is kept, in the order it is written: its
    family's copy first, then its own name, so a family reads complete (every
    member's own name exists) only once every copy is there too."""
    own = result_name(uuid)
    return [descendants_prefix(progenitor_uuid) + uuid, own] if progenitor_uuid else [own]


def result_channels(uuid: str, progenitor_uuid: str | None) -> list[str]:
    """What a result's writer notifies: its own waiters and its family's."""
    return [result_name(uuid)] + ([result_name(progenitor_uuid)] if progenitor_uuid else [])


class ResultStore:
    """Results where ``backend`` keeps them: key-value records, unless the
    backend names a home of its own (its ``result_store_class``, a subclass:
    PostgreSQL's ``results`` table). Then ``ResultStore(backend)`` is an
    instance of that class, so what a user constructs writes where
    ``alsek result`` reads. A user's own subclass keeps the storage it chose."""

    def __new__(cls, backend: Backend) -> ResultStore:
        home: type[ResultStore] = cls
        if cls is ResultStore:
            home = getattr(backend, "result_store_class", None) or cls
        return super().__new__(home)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r})"

    def _names(self, message: Message) -> list[str]:
        return record_names(message.uuid, family_of(message))

    @staticmethod
    def record(message: Message, result: Any) -> dict[str, Any]:
        written = time.time_ns()  # orders a family's results even within one millisecond
        return {"result": result, "timestamp": written // 1_000_000, "written_ns": written, "uuid": message.uuid}

    def set(self, message: Message, result: Any, nx: bool = True) -> None:
        """Store once (``nx``): a redelivered message that ran twice keeps its first result."""
        record = self.record(message, result)
        for name in self._names(message):
            try:
                self.backend.set(name, record, nx=nx, ttl=message.result_ttl)
            except KeyExistsError:
                continue
        for channel in result_channels(message.uuid, family_of(message)):
            self.backend.notify(channel)

    def write(self, message: Message, result: Any) -> ResultWrite:
        """The result as part of its message's settlement (``Queue.settle``):
        encoded now, so a result the serializer refuses fails before anything
        is written."""
        record = self.record(message, result)
        return ResultWrite(message.uuid, family_of(message), record, message.result_ttl,
                           self.backend.serializer.dumps(record))

    def exists(self, message: Message, descendants: bool = False) -> bool:
        if descendants:
            return bool(self._family(message)) and self._family_complete(message)
        return self.backend.exists(result_name(message.uuid))

    def _family(self, message: Message) -> list[tuple[str, dict[str, Any]]]:
        names = [result_name(message.uuid), *self.backend.scan(descendants_prefix(message.uuid))]
        found = []
        for name in names:
            record = self.backend.get(name)
            if isinstance(record, dict):
                found.append((name, record))
        found.sort(key=lambda item: item[1].get("written_ns", item[1]["timestamp"] * 1_000_000))
        return found

    def _family_complete(self, message: Message) -> bool:
        """Every known member has a result (callbacks: the whole chain)."""
        return all(self.backend.exists(result_name(u)) for u in message.descendant_uuids or ())

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
            family = self._family(message)
            records = [record for _, record in family]
            if not keep:
                for name, record in family:
                    self.backend.delete(name, missing_ok=True)
                    self.backend.delete(result_name(record["uuid"]), missing_ok=True)
            return [self._shape(r, with_metadata) for r in records]
        record = self.backend.get(result_name(message.uuid))
        if not keep:
            for name in self._names(message):
                self.backend.delete(name, missing_ok=True)
        return self._shape(record, with_metadata)

    def _wait(self, message: Message, timeout: int, descendants: bool) -> None:
        """Until the result (or the family) exists: KeyError at once without a
        ``timeout``, TimeoutError when it runs out. Woken by the writer's notify."""
        deadline = Deadline(timeout / 1000)
        listener = self.backend.listen([result_name(message.uuid)])
        try:
            while not self.exists(message, descendants=descendants):
                if not timeout:
                    raise KeyError(f"no result for {message.summary}")
                if deadline.expired:
                    raise TimeoutError(f"no result for {message.summary} within {timeout} ms")
                listener.wait(deadline.remaining_ms(cap=WAKE_CHECK_MS))
        finally:
            listener.close()

    @staticmethod
    def _shape(record: dict[str, Any], with_metadata: bool) -> Any:
        """The documented metadata keys only (``written_ns`` orders a family
        but is not part of what ``get`` promises)."""
        if not with_metadata:
            return record["result"]
        return {key: record[key] for key in METADATA_KEYS}

    def delete(self, message: Message, descendants: bool = True, missing_ok: bool = False) -> int:
        names = self._names(message)
        if descendants:
            names += list(self.backend.scan(descendants_prefix(message.uuid)))
        removed = 0
        for name in names:
            if self.backend.exists(name):
                self.backend.delete(name, missing_ok=True)
                removed += 1
        if not removed and not missing_ok:
            raise KeyError(f"no result for {message.summary}")
        return removed


def store_for(backend: Backend) -> ResultStore:
    """The backend's own result store when it has one, else key-value records."""
    native = getattr(backend, "result_store", None)
    return native() if callable(native) else ResultStore(backend)
