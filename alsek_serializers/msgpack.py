"""msgpack: smaller and faster than JSON, binary. Needs the ``msgpack`` extra.

The rule, as for JSON: a value is stored only if it reads back the same, or
refused at once with a SerializationError naming the part. msgpack holds
NaN and Infinity exactly, and tuple keys come back as tuples; tuples
elsewhere come back as lists. Integers beyond 64 bits and objects of other
types are refused.
"""

from __future__ import annotations

import importlib
from typing import Any

from alsek_core import DISTRIBUTION
from alsek_core.errors import ConfigError, SerializationError
from alsek_core.serialization import Serializer
from alsek_core.unencodable import locate


def _refuse(obj: Any) -> Any:
    if isinstance(obj, int):
        raise OverflowError("msgpack integers have at most 64 bits")
    raise TypeError(f"msgpack has no {type(obj).__qualname__}")


def _hashable(key: Any) -> Any:
    """A tuple key, which msgpack stores as an array, as the tuple it was."""
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _map_with_tuple_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_hashable(key): value for key, value in pairs}


class MsgpackSerializer(Serializer):
    name = "msgpack"

    def __init__(self) -> None:
        try:
            self._msgpack = importlib.import_module("msgpack")
        except ImportError as exc:
            raise ConfigError(f"the msgpack serializer needs: pip install '{DISTRIBUTION}[msgpack]'") from exc

    def _pack(self, obj: Any) -> bytes:
        return bytes(self._msgpack.packb(obj, default=_refuse, use_bin_type=True))

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._pack(obj)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(locate(self._pack, obj, exc).describe(type(self).__name__)) from exc

    def loads(self, data: bytes) -> Any:
        try:
            try:
                return self._msgpack.unpackb(data, raw=False, strict_map_key=False)
            except TypeError:  # a tuple key: rebuilding maps pair by pair is slower, so only then
                return self._msgpack.unpackb(
                    data, raw=False, strict_map_key=False, object_pairs_hook=_map_with_tuple_keys
                )
        except Exception as exc:
            raise SerializationError(
                f"MsgpackSerializer cannot decode {bytes(data)[:40]!r}: {exc}"
            ) from exc
