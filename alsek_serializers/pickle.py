"""pickle: encodes almost any Python object.

UNSAFE for data you do not trust: unpickling runs code chosen by whoever wrote
the bytes. Use it only when every producer is yours; it is never the default.
"""

from __future__ import annotations

import pickle
from typing import Any

from alsek_core.errors import SerializationError
from alsek_core.serialization import Serializer


class PickleSerializer(Serializer):
    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SerializationError(
                f"PickleSerializer cannot encode {type(obj).__qualname__}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise SerializationError(
                f"PickleSerializer cannot decode {bytes(data)[:40]!r}: {exc}"
            ) from exc
