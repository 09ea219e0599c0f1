"""The default serializer: JSON, UTF-8, readable in any storage console."""

from __future__ import annotations

import json
from typing import Any

from alsek_core.errors import SerializationError
from alsek_core.serialization import Serializer


def _refuse(obj: Any) -> Any:
    raise SerializationError(
        f"JsonSerializer cannot encode a value of type {type(obj).__qualname__}: {obj!r:.80}"
    )


#: Built once: json.dumps with any option builds a new encoder per call, which
#: is a sixth of the cost of encoding a message.
_ENCODER = json.JSONEncoder(default=_refuse, ensure_ascii=False, separators=(",", ":"))


class JsonSerializer(Serializer):
    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return _ENCODER.encode(obj).encode()
        except ValueError as exc:  # circular references, NaN handling
            raise SerializationError(
                f"JsonSerializer cannot encode {type(obj).__qualname__}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (ValueError, TypeError) as exc:
            raise SerializationError(
                f"JsonSerializer cannot decode {bytes(data)[:40]!r}: {exc}"
            ) from exc
