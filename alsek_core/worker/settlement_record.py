"""A settlement waiting in a worker process's batch, as bytes for its lease
record (``slots.LeaseBook``), so that the supervisor settles it if the
process dies before its batch is applied (``Broker.batching``).

Length-prefixed fields, none of them unpickled. A write keeps only its
``data`` (as its home stores it, encoded by the backend's serializer): its
``record`` is decoded from it again. That is the record itself wherever the
record is read (key-value storage keeps the whole record as ``data``; a
table, such as PostgreSQL's, stores ``data`` and reads only a status's
record, which is its ``data`` too). A chord member's join goes whole: the
supervisor's settle must count it with the removal, as the worker's would
have. The delivery is not in here (the lease record has it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from alsek_core.ports import (
    ChordJoin,
    Delivery,
    Envelope,
    ResultWrite,
    Serializer,
    Settlement,
    StatusWrite,
)

_LENGTH = struct.Struct("!I")
_ABSENT = 0xFFFFFFFF
_NONE = _LENGTH.pack(_ABSENT)
Field = bytes | None


def _text(value: str | int | None) -> Field:
    return None if value is None else str(value).encode()


def _status(status: StatusWrite | None) -> list[Field]:
    if status is None:
        return [None] * 3
    return [status.uuid.encode(), _text(status.ttl), status.data]


def _result(result: ResultWrite | None) -> list[Field]:
    if result is None:
        return [None] * 4
    return [result.uuid.encode(), _text(result.progenitor_uuid), _text(result.ttl), result.data]


def _callback(callback: Envelope | None) -> list[Field]:
    if callback is None:
        return [None] * 5
    return [callback.queue.encode(), callback.uuid.encode(), _text(callback.priority), _text(callback.ready_at),
            callback.payload]


def _join(join: ChordJoin | None) -> list[Field]:
    if join is None:
        return [None] * 6
    return [join.queue.encode(), join.callback.encode(), _text(join.index), _text(join.size), join.data,
            b"1" if join.drop else b""]


def encode(settlement: Settlement) -> bytes:
    fields = [*_status(settlement.status), *_result(settlement.result),
              *_callback(settlement.callback), settlement.payload, _text(settlement.ready_at),
              b"1" if settlement.dead else b"", *_join(settlement.join)]
    parts = []
    for field in fields:
        if field is None:
            parts.append(_NONE)
        else:
            parts += (_LENGTH.pack(len(field)), field)
    return b"".join(parts)


def _fields(data: bytes) -> Iterator[Field]:
    at = 0
    while at < len(data):
        (length,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if length == _ABSENT:
            yield None
        else:
            yield data[at : at + length]
            at += length


def _str(field: Field) -> str:
    assert field is not None
    return field.decode()


def _int(field: Field) -> int | None:
    return None if field is None else int(field)


def decode(data: bytes, delivery: Delivery, serializer: Serializer) -> Settlement:
    f: Sequence[Field] = list(_fields(data))
    status = None if f[0] is None else StatusWrite(
        _str(f[0]), serializer.loads(f[2] or b""), _int(f[1]), f[2] or b"")
    result = None if f[3] is None else ResultWrite(
        _str(f[3]), None if f[4] is None else _str(f[4]), serializer.loads(f[6] or b""), _int(f[5]), f[6] or b"")
    callback = None if f[7] is None else Envelope(
        _str(f[7]), _str(f[8]), _int(f[9]) or 0, _int(f[10]) or 0, f[11] or b"")
    join = None if f[15] is None else ChordJoin(
        _str(f[15]), _str(f[16]), _int(f[17]) or 0, _int(f[18]) or 0, f[19] or b"", f[20] == b"1")
    return Settlement(delivery, status=status, result=result, callback=callback, payload=f[12],
                      ready_at=_int(f[13]), dead=f[14] == b"1", join=join)
