"""What each worker slot is running, and which leases each child holds, in
memory shared between a pool's processes.

A child writes a slot when it starts and when it ends a message; the parent
only reads, and only acts on what it read after the child is gone (killed for
a timeout, or dead on its own). The one thing the parent writes is a stop
request (the message a slot runs was revoked), naming the record's sequence
number, so that it can never be mistaken for a request to stop the slot's
next message. That way the parent can settle or release a
message a child held without a message ever crossing a pipe: the fast path
(claim, run, ack) stays entirely inside the child.

Each record is guarded by a sequence number (a seqlock): odd while being
written, so a reader never mistakes half a write for a record.
"""

from __future__ import annotations

import ctypes
import struct
import time
from dataclasses import dataclass
from typing import Any

from alsek_core.ports import Delivery

#: Room for queue, uuid, lease token and payload. A payload that does not fit
#: is left out; the parent then looks it up in the queue when it needs it.
BUFFER_BYTES = 16 * 1024
_HEADER = struct.Struct("!HHHi")  # len(queue), len(uuid), len(token), deliveries


class _Record(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("busy", ctypes.c_bool),
        ("terminate", ctypes.c_bool),
        ("has_payload", ctypes.c_bool),
        ("stop_seq", ctypes.c_uint64),  # written by the parent: stop the run of this seq
        ("deadline", ctypes.c_double),
        ("changed_at", ctypes.c_double),
        ("length", ctypes.c_int32),
        ("data", ctypes.c_char * BUFFER_BYTES),
    ]


_DATA_OFFSET = _Record.data.offset


@dataclass(frozen=True)
class SlotState:
    """One consistent read of a slot. ``delivery`` is None when the slot is idle
    or its record could not hold the lease (a very long queue name or token);
    ``delivery.payload`` is empty when the payload was too big to keep."""

    busy: bool
    terminate: bool
    deadline: float
    changed_at: float
    seq: int
    delivery: Delivery | None
    has_payload: bool


def _header(delivery: Delivery) -> bytes:
    queue, uuid, token = (s.encode() for s in (delivery.queue, delivery.uuid, delivery.token))
    return _HEADER.pack(len(queue), len(uuid), len(token), delivery.deliveries) + queue + uuid + token


def _encode(delivery: Delivery) -> tuple[bytes, bool]:
    header = _header(delivery)
    if len(header) + len(delivery.payload) <= BUFFER_BYTES:
        return header + delivery.payload, True
    return header, False


def _decode(data: bytes, has_payload: bool) -> Delivery:
    nq, nu, nt, deliveries = _HEADER.unpack_from(data)
    at = _HEADER.size
    queue, uuid, token = (data[at : at + nq], data[at + nq : at + nq + nu], data[at + nq + nu : at + nq + nu + nt])
    payload = data[at + nq + nu + nt :] if has_payload else b""
    return Delivery(queue.decode(), uuid.decode(), payload, token.decode(), deliveries)


class SlotTable:
    """``size`` records in shared memory; ``context`` is a multiprocessing context."""

    def __init__(self, context: Any, size: int) -> None:
        self.size = size
        self._records: Any = context.RawArray(_Record, size)
        now = time.monotonic()
        for i in range(size):
            self._records[i].changed_at = now

    def begin(self, index: int, delivery: Delivery, timeout_ms: int, terminate: bool) -> None:
        record = self._records[index]
        data, has_payload = _encode(delivery)
        fits = len(data) <= BUFFER_BYTES
        record.seq += 1
        record.busy = True
        record.terminate = terminate
        record.has_payload = has_payload and fits
        now = time.monotonic()
        record.deadline = now + timeout_ms / 1000
        record.changed_at = now
        record.length = len(data) if fits else -1
        if fits:
            ctypes.memmove(ctypes.addressof(record) + _DATA_OFFSET, data, len(data))
        record.seq += 1

    def end(self, index: int) -> None:
        record = self._records[index]
        record.seq += 1
        record.busy = False
        record.changed_at = time.monotonic()
        record.seq += 1

    def request_stop(self, index: int, seq: int) -> None:
        """Parent side: ask the child to stop the run it recorded as ``seq``."""
        self._records[index].stop_seq = seq

    def stop_requested(self, index: int) -> bool:
        """Child side: whether the parent asked to stop what this slot runs now."""
        record = self._records[index]
        return bool(record.busy) and record.stop_seq == record.seq

    def reset(self, index: int) -> None:
        """Mark idle for a new child, even if the old one died mid-write."""
        record = self._records[index]
        record.seq = (record.seq | 1) + 1
        record.busy = False
        record.changed_at = time.monotonic()

    def read(self, index: int) -> SlotState | None:
        """None if a write kept overlapping the read (the writer is alive and busy)."""
        record = self._records[index]
        for _ in range(100):
            seq = record.seq
            if seq % 2:
                continue
            busy, terminate, has_payload = record.busy, record.terminate, record.has_payload
            deadline, changed_at, length = record.deadline, record.changed_at, record.length
            data = ctypes.string_at(ctypes.addressof(record) + _DATA_OFFSET, max(length, 0)) if busy else b""
            if record.seq != seq:
                continue
            delivery = _decode(data, has_payload) if busy and length >= 0 else None
            return SlotState(busy, terminate, deadline, changed_at, seq, delivery, has_payload)
        return None


#: Room for queue, uuid, lease token and (when it fits) the payload, which
#: the parent needs to hand a message back untouched.
LEASE_BYTES = 4096


class _Lease(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("length", ctypes.c_int32),  # 0: unused
        ("has_payload", ctypes.c_bool),
        ("finished", ctypes.c_bool),  # ran to its end; only its ack (or settlement) is missing
        ("has_settlement", ctypes.c_bool),  # the data past the header is its settlement, not its payload
        ("data", ctypes.c_char * LEASE_BYTES),
    ]


_LEASE_OFFSET = _Lease.data.offset


@dataclass(frozen=True)
class Held:
    """A lease a gone child held: ``delivery`` (its payload empty if it did
    not fit), whether its message ``finished``, and then its ``settlement``
    (``settlement_record``) if that waited in the child's batch, else only
    its ack did."""

    delivery: Delivery
    finished: bool
    settlement: bytes | None = None


class LeaseBook:
    """Every message a child holds (running or claimed ahead), so that the
    parent can make them claimable again at once when the child dies."""

    def __init__(self, context: Any, size: int) -> None:
        self.size = size
        self._records: Any = context.RawArray(_Lease, size)

    def put(self, index: int, delivery: Delivery) -> bool:
        data = _header(delivery)
        if len(data) > LEASE_BYTES:
            return False
        has_payload = len(data) + len(delivery.payload) <= LEASE_BYTES
        if has_payload:
            data += delivery.payload
        record = self._records[index]
        record.seq += 1
        ctypes.memmove(ctypes.addressof(record) + _LEASE_OFFSET, data, len(data))
        record.length = len(data)
        record.has_payload = has_payload
        record.finished = False
        record.has_settlement = False
        record.seq += 1
        return True

    def mark_finished(self, index: int, settlement: bytes | None = None) -> bool:
        """The message at ``index`` ran to its end; its ack, or its
        ``settlement`` (``settlement_record``), waits in a batch. The
        settlement replaces the payload after the lease's header. False if
        it does not fit: then the record says nothing more."""
        record = self._records[index]
        base = ctypes.addressof(record) + _LEASE_OFFSET
        if settlement is not None:
            nq, nu, nt, _ = _HEADER.unpack(ctypes.string_at(base, _HEADER.size))
            at = _HEADER.size + nq + nu + nt
            if at + len(settlement) > LEASE_BYTES:
                return False
        record.seq += 1
        if settlement is not None:
            ctypes.memmove(base + at, settlement, len(settlement))
            record.length = at + len(settlement)
            record.has_payload = False
            record.has_settlement = True
        record.finished = True
        record.seq += 1
        return True

    def clear(self, index: int) -> None:
        record = self._records[index]
        record.seq += 1
        record.length = 0
        record.seq += 1

    def count(self, indexes: range) -> int:
        """How many of these records are in use (a snapshot, not a consistent read)."""
        return sum(1 for i in indexes if self._records[i].length > 0)

    def take(self, index: int) -> Held | None:
        """The lease written at ``index``, clearing it; only for a writer
        that is gone. None when unused or torn by its writer's death."""
        record = self._records[index]
        seq, length = record.seq, record.length
        found = None
        if seq % 2 == 0 and length > 0:
            data = ctypes.string_at(ctypes.addressof(record) + _LEASE_OFFSET, length)
            if record.has_settlement:
                nq, nu, nt, _ = _HEADER.unpack_from(data)
                at = _HEADER.size + nq + nu + nt
                found = Held(_decode(data[:at], False), True, data[at:])
            else:
                found = Held(_decode(data, record.has_payload), bool(record.finished))
        record.seq = (seq | 1) + 1
        record.length = 0
        return found


class SharedState:
    """What a pool's supervisor shares with its worker processes: one slot
    table and one lease book for all of them, each process owning a fixed
    range of records, and ``careful``: how many messages are still to run
    one at a time after a process died running several (see
    ``SupervisedPool.claim_limit``), and ``draining``: per process, whether
    its supervisor waits for it to finish its messages before stopping it."""

    def __init__(self, context: Any, n_processes: int, slots_per_process: int, leases_per_process: int) -> None:
        self.slots_per_process = slots_per_process
        self.leases_per_process = leases_per_process
        self.slot_table = SlotTable(context, n_processes * slots_per_process)
        self.lease_book = LeaseBook(context, n_processes * leases_per_process)
        self.careful: Any = context.Value(ctypes.c_int, 0)
        self.draining: Any = context.RawArray(ctypes.c_bool, n_processes)

    def slots_of(self, index: int) -> range:
        return range(index * self.slots_per_process, (index + 1) * self.slots_per_process)

    def leases_of(self, index: int) -> range:
        return range(index * self.leases_per_process, (index + 1) * self.leases_per_process)

    def states(self, index: int) -> list[SlotState | None]:
        return [self.slot_table.read(s) for s in self.slots_of(index)]
