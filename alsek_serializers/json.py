"""The default serializer: JSON, UTF-8, readable in any storage console.

The rule: a value is stored only if it reads back the same, so what JSON
cannot hold is refused at once with a SerializationError naming the part
(``['kwargs']['limit']``): NaN and Infinity (not JSON: other readers choke
on them), dict keys other than str, int, float, bool or None, and objects
of other types. Tuples come back as lists and non-str keys as strings, as
JSON has them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from alsek_core.errors import SerializationError
from alsek_core.serialization import Serializer
from alsek_core.unencodable import locate


def _refuse(obj: Any) -> Any:
    raise TypeError(f"JSON has no {type(obj).__qualname__}")


def _make_encode() -> Callable[[Any], str]:
    """One encoder for the process, without the circular-reference check (a
    cycle ends in RecursionError instead). json.dumps builds a new encoder per
    call when given options: reusing one makes a message about 15% cheaper to
    encode. Where CPython's C encoder is missing, the public JSONEncoder does
    the same work, slower."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        encoder = json.JSONEncoder(
            default=_refuse,
            ensure_ascii=False,
            separators=(",", ":"),
            check_circular=False,
            allow_nan=False,
        )
        return encoder.encode
    chunks = c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda obj: "".join(chunks(obj, 0))


_encode = _make_encode()


class JsonSerializer(Serializer):
    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return _encode(obj).encode()
        except (RecursionError, TypeError, ValueError) as exc:
            raise SerializationError(locate(_encode, obj, exc).describe(type(self).__name__)) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (ValueError, TypeError, RecursionError) as exc:  # bytes may nest beyond the stack
            raise SerializationError(
                f"JsonSerializer cannot decode {bytes(data)[:40]!r}: {exc}"
            ) from exc
