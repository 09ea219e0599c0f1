"""Queue operations built only on the five key-value methods.

``KVQueue(kv)`` is what makes a five-method plugin a complete backend: the
base class :class:`alsek_core.backend.Backend` hands every queue operation to
one, built on the backend itself. It is correct but slow (a claim scans the
queue); the built-in adapters bring native queues instead.

Layout, under the backend's namespace (queue names never contain ``:``, so a
prefix scan of ``q1`` never sees ``q10``)::

    queues:<queue>:messages:<uuid>   {"p": priority, "r": ready_at, "s": seq, "d": deliveries, "b": payload}
    queues:<queue>:leases:<uuid>     lease token, with a TTL of the lease length
    queues:<queue>:dead:<uuid>       a message record, dead-lettered
    unique:<queue>:<key>             {"u": holder uuid, "c": confirmed}, TTL the window
    chords:<queue>:<callback>:m:<index> {"b": data} a settled chord member's share
    chords:<queue>:<callback>:done   set by whoever saw the chord complete first

Mutual exclusion comes from ``set(nx=True)`` on the lease name: whoever
creates it holds the message until it expires or is deleted. A unique key is
taken the same way, before its message is queued: unconfirmed (``"c"``
false) it lives at most ``PENDING_MS``, so a submitter dying between the two
steps blocks the key no longer than that; confirmed, it is held while its
holder is queued, and a key whose holder is gone (settled by a worker that
died before freeing it) is taken over by the next submit. That take-over
removes the stale key with ``delete_if``: exact where the backend makes it
atomic (every built-in); with the base class's read-then-delete, two submits
racing to take over the same stale key may both queue.
"""

from __future__ import annotations

import base64
import time
import uuid as uuid_lib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alsek_core.clock import now_ms
from alsek_core.errors import AlsekError, KeyExistsError
from alsek_core.kv_limits import KVLimits
from alsek_core.ports import (
    PARKED,
    ChordJoin,
    Delivery,
    Envelope,
    KeyValue,
    Queue,
    QueueCounts,
    QueuedMessage,
    Settlement,
    Wakeups,
)
from alsek_core.result import record_names, result_channels
from alsek_core.status import status_name

Record = dict[str, Any]

#: How long a unique key taken by a submit that has not yet queued its
#: message holds (a submitter dying in between frees it after this).
PENDING_MS = 30_000


def _messages(queue: str) -> str:
    return f"queues:{queue}:messages:"


def _leases(queue: str) -> str:
    return f"queues:{queue}:leases:"


def _dead(queue: str) -> str:
    return f"queues:{queue}:dead:"


def _unique(queue: str, key: str) -> str:
    return f"unique:{queue}:{key}"
def _members(queue: str, callback: str) -> str:
    return f"chords:{queue}:{callback}:m:"


def _record(envelope: Envelope, seq: int) -> Record:
    return {
        "p": envelope.priority,
        "r": envelope.ready_at,
        "s": seq,
        "d": 0,
        "b": base64.b64encode(envelope.payload).decode("ascii"),
    }


def _payload(record: Record) -> bytes:
    return base64.b64decode(record["b"])


class KVQueue(KVLimits, Queue):
    """The ``Queue`` port on top of any store's key-value methods (its limit
    operations from :class:`~alsek_core.kv_limits.KVLimits`)."""

    blocking_claim = False
    atomic_settle = False

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    def submit_in_transaction(self, envelopes: Iterable[Envelope], connection: Any) -> int:
        """Key-value storage has no transaction of the caller's to join; the
        error names the storage the user chose, not this class."""
        raise AlsekError(f"{type(self.kv).__name__} cannot submit inside a caller's transaction")

    def submit(self, envelopes: Iterable[Envelope]) -> int:
        base = time.time_ns()
        added = 0
        for i, envelope in enumerate(envelopes):
            try:
                self.kv.set(
                    _messages(envelope.queue) + envelope.uuid, _record(envelope, base + i), nx=True
                )
            except KeyExistsError:
                continue
            added += 1
        return added

    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        """Two steps, as ``set(nx=True)`` allows: take the key (unconfirmed),
        queue the message, confirm the key for the rest of its window."""
        name, uuid = _unique(envelope.queue, key), envelope.uuid
        deadline = None if window_ms is None else now_ms() + window_ms
        pending = {"u": uuid, "c": False}
        while True:
            try:
                self.kv.set(name, pending, nx=True, ttl=min(PENDING_MS, window_ms or PENDING_MS))
                break
            except KeyExistsError:
                holder = self.kv.get(name)
            if holder is None:  # freed or expired since: take it again
                continue
            if not holder["c"] or self.contains(envelope.queue, holder["u"]):
                return str(holder["u"])
            self.kv.delete_if(name, holder)  # its holder settled without freeing it
        if self.contains(envelope.queue, uuid):
            self.kv.delete_if(name, pending)
            return uuid
        self.submit([envelope])
        ttl = None if deadline is None else max(1, deadline - now_ms())
        self.kv.set(name, {"u": uuid, "c": True}, ttl=ttl)
        return None

    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        return self.kv.delete_if(_unique(queue, key), {"u": uuid, "c": True})

    def _records(self, prefix: str) -> list[tuple[str, Record]]:
        found = []
        for name in list(self.kv.scan(prefix)):
            record = self.kv.get(name)
            if record is not None:
                found.append((name[len(prefix) :], record))
        found.sort(key=lambda item: (item[1]["p"], item[1]["s"]))
        return found

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        claimed: list[Delivery] = []
        now = now_ms()
        for queue in queues:
            for uuid, record in self._records(_messages(queue)):
                if len(claimed) >= limit:
                    return claimed
                if record["r"] > now:
                    continue
                delivery = self._lease(queue, uuid, lease_ms)
                if delivery is not None:
                    claimed.append(delivery)
        return claimed

    def _lease(self, queue: str, uuid: str, lease_ms: int) -> Delivery | None:
        token = uuid_lib.uuid4().hex
        lease_name = _leases(queue) + uuid
        try:
            self.kv.set(lease_name, token, nx=True, ttl=lease_ms)
        except KeyExistsError:
            return None
        record = self.kv.get(_messages(queue) + uuid)
        if record is None:  # acked between our scan and our lease
            self.kv.delete(lease_name, missing_ok=True)
            return None
        record["d"] += 1
        self.kv.set(_messages(queue) + uuid, record)
        return Delivery(queue, uuid, _payload(record), token, record["d"])

    def _holds(self, delivery: Delivery) -> bool:
        return bool(self.kv.get(_leases(delivery.queue) + delivery.uuid) == delivery.token)

    def ack(self, queue: str, uuid: str) -> None:
        self.kv.delete(_messages(queue) + uuid, missing_ok=True)
        self.kv.delete(_leases(queue) + uuid, missing_ok=True)

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        for uuid in uuids:
            self.ack(queue, uuid)

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        if not self._holds(delivery):
            return False
        self.kv.set(_leases(delivery.queue) + delivery.uuid, delivery.token, ttl=lease_ms)
        return True

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        name = _messages(delivery.queue) + delivery.uuid
        record = self.kv.get(name)
        if record is None or not self._holds(delivery):
            return False
        record.update(
            r=ready_at, s=time.time_ns(), d=0, b=base64.b64encode(payload).decode("ascii")
        )
        self.kv.set(name, record)
        self.kv.delete(_leases(delivery.queue) + delivery.uuid, missing_ok=True)
        return True

    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        name = _messages(delivery.queue) + delivery.uuid
        record = self.kv.get(name)
        if record is None or not self._holds(delivery):
            return False
        record.update(b=base64.b64encode(payload).decode("ascii"), s=time.time_ns())
        self.kv.set(_dead(delivery.queue) + delivery.uuid, record)
        self.ack(delivery.queue, delivery.uuid)
        return True

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        return [self._settle(settlement) for settlement in settlements]

    def _settle(self, settlement: Settlement) -> bool:
        """The ordered, idempotent steps ``Settlement`` describes: result,
        callback, status, then the message's removal, release or dead letter."""
        delivery, result, status = settlement.delivery, settlement.result, settlement.status
        channels = []
        if result is not None:
            for name in record_names(result.uuid, result.progenitor_uuid):
                try:
                    self.kv.set(name, result.record, nx=True, ttl=result.ttl)
                except KeyExistsError:  # a rerun's result: the first one stays
                    continue
            channels += result_channels(result.uuid, result.progenitor_uuid)
        if settlement.callback is not None:
            self.submit([settlement.callback])  # skipped when a rerun submitted it already
        if status is not None:
            self.kv.set(status_name(status.uuid), status.record, ttl=status.ttl)
            channels.append(status_name(status.uuid))
        if isinstance(self.kv, Wakeups):
            for channel in channels:
                self.kv.notify(channel)
        if settlement.join is not None:
            self._join(settlement.join)
        if settlement.ready_at is not None:
            return self.reschedule(delivery, settlement.payload or b"", settlement.ready_at)
        if settlement.dead:
            return self.dead_letter(delivery, settlement.payload or b"")
        self.ack(delivery.queue, delivery.uuid)
        return True

    def _join(self, join: ChordJoin) -> None:
        """Drop, record, then make ready: each step safe to repeat. Dropping
        first means no other member can complete the chord and release its
        callback between this failure's record and its drop. Of concurrent
        members seeing the chord complete, the one that sets ``done`` first
        releases the callback; a rerun of a member already recorded releases
        it too (its first run may have died before doing so): releasing only
        touches a callback still parked, so a second release changes nothing."""
        if join.drop:
            self.ack(join.queue, join.callback)
        members = _members(join.queue, join.callback)
        try:
            self.kv.set(members + str(join.index), {"b": base64.b64encode(join.data).decode("ascii")}, nx=True)
            added = True
        except KeyExistsError:
            added = False
        if self.kv.count(members) < join.size:
            return
        try:
            self.kv.set(f"chords:{join.queue}:{join.callback}:done", True, nx=True)
        except KeyExistsError:
            if added:
                return
        name = _messages(join.queue) + join.callback
        record = self.kv.get(name)
        if record is not None and record["r"] == PARKED:
            record.update(r=now_ms())
            self.kv.set(name, record)

    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        members = _members(queue, callback)
        found = {}
        for name in list(self.kv.scan(members)):
            record = self.kv.get(name)
            if record is not None:
                found[int(name[len(members):])] = base64.b64decode(record["b"])
        return found

    def forget_join(self, queue: str, callback: str) -> None:
        for name in list(self.kv.scan(f"chords:{queue}:{callback}:")):
            self.kv.delete(name, missing_ok=True)

    def contains(self, queue: str, uuid: str) -> bool:
        return self.kv.exists(_messages(queue) + uuid)

    def queue_names(self) -> list[str]:
        return sorted({name.split(":", 2)[1] for name in self.kv.scan("queues:")})

    def counts(self, queue: str) -> QueueCounts:
        now = now_ms()
        ready = delayed = in_flight = 0
        for uuid, record in self._records(_messages(queue)):
            if self.kv.exists(_leases(queue) + uuid):
                in_flight += 1
            elif record["r"] > now:
                delayed += 1
            else:
                ready += 1
        dead = sum(1 for _ in self.kv.scan(_dead(queue)))
        return QueueCounts(ready=ready, delayed=delayed, in_flight=in_flight, dead=dead)

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        now = now_ms()
        prefix = _dead(queue) if dead else _messages(queue)
        for uuid, record in self._records(prefix):
            if dead:
                state = "dead"
            elif self.kv.exists(_leases(queue) + uuid):
                state = "in_flight"
            else:
                state = "delayed" if record["r"] > now else "ready"
            yield QueuedMessage(queue, uuid, _payload(record), state, record["r"])

    def remove_dead(self, queue: str, uuid: str) -> bool:
        name = _dead(queue) + uuid
        if not self.kv.exists(name):
            return False
        self.kv.delete(name, missing_ok=True)
        return True

    def purge(self, queue: str) -> int:
        for name in list(self.kv.scan(_unique(queue, ""))):
            self.kv.delete(name, missing_ok=True)
        removed = 0
        for name in list(self.kv.scan(_messages(queue))):
            self.ack(queue, name[len(_messages(queue)) :])
            removed += 1
        return removed
