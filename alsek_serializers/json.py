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


class JsonSerializer(Serializer):
    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return json.dumps(
                obj, default=_refuse, ensure_ascii=False, separators=(",", ":")
            ).encode()
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
