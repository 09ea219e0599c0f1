"""A settlement waiting in a worker process's batch, as bytes for its lease
record (``slots.LeaseBook``), so that the supervisor settles it if the
process dies before its batch is applied (``Broker.batching``).

Length-prefixed fields, none of them unpickled: the writes' records are
kept encoded by the backend's serializer, as their homes store them. The
delivery is not in here (the lease record has it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from alsek_core.ports import Delivery, Envelope, ResultWrite, Serializer, Settlement, StatusWrite

_LENGTH = struct.Struct("!I")
_ABSENT = 0xFFFFFFFF
Field = bytes | None


def _text(value: str | int | None) -> Field:
    return None if value is None else str(value).encode()


def _status(status: StatusWrite | None, serializer: Serializer) -> list[Field]:
    if status is None:
        return [None] * 4
    return [status.uuid.encode(), _text(status.ttl), status.data, serializer.dumps(status.record)]


def _result(result: ResultWrite | None, serializer: Serializer) -> list[Field]:
    if result is None:
        return [None] * 5
    return [result.uuid.encode(), _text(result.progenitor_uuid), _text(result.ttl), result.data,
            serializer.dumps(result.record)]


def _callback(callback: Envelope | None) -> list[Field]:
    if callback is None:
        return [None] * 5
    return [callback.queue.encode(), callback.uuid.encode(), _text(callback.priority), _text(callback.ready_at),
            callback.payload]


def encode(settlement: Settlement, serializer: Serializer) -> bytes:
    fields = [*_status(settlement.status, serializer), *_result(settlement.result, serializer),
              *_callback(settlement.callback), settlement.payload, _text(settlement.ready_at),
              b"1" if settlement.dead else b""]
    return b"".join(_LENGTH.pack(_ABSENT) if f is None else _LENGTH.pack(len(f)) + f for f in fields)


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
    status = None if f[0] is None else StatusWrite(_str(f[0]), serializer.loads(f[3] or b""), _int(f[1]), f[2] or b"")
    result = None if f[4] is None else ResultWrite(
        _str(f[4]), None if f[5] is None else _str(f[5]), serializer.loads(f[8] or b""), _int(f[6]), f[7] or b"")
    callback = None if f[9] is None else Envelope(
        _str(f[9]), _str(f[10]), _int(f[11]) or 0, _int(f[12]) or 0, f[13] or b"")
    return Settlement(delivery, status=status, result=result, callback=callback, payload=f[14],
                      ready_at=_int(f[15]), dead=f[16] == b"1")
