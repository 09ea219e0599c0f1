"""msgpack: smaller and faster than JSON, binary. Needs the ``msgpack`` extra."""

from __future__ import annotations

import importlib
from typing import Any

from alsek_core import DISTRIBUTION
from alsek_core.errors import ConfigError, SerializationError
from alsek_core.serialization import Serializer


def _refuse(obj: Any) -> Any:
    raise SerializationError(
        f"MsgpackSerializer cannot encode a value of type {type(obj).__qualname__}: {obj!r:.80}"
    )


class MsgpackSerializer(Serializer):
    name = "msgpack"

    def __init__(self) -> None:
        try:
            self._msgpack = importlib.import_module("msgpack")
        except ImportError as exc:
            raise ConfigError(f"the msgpack serializer needs: pip install '{DISTRIBUTION}[msgpack]'") from exc

    def dumps(self, obj: Any) -> bytes:
        try:
            return bytes(self._msgpack.packb(obj, default=_refuse, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"MsgpackSerializer cannot encode {type(obj).__qualname__}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return self._msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as exc:
            raise SerializationError(
                f"MsgpackSerializer cannot decode {bytes(data)[:40]!r}: {exc}"
            ) from exc
