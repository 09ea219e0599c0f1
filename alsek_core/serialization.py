"""The base every serializer builds on. Implementations live in alsek_serializers
and reach the core through the plugin manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Serializer(ABC):
    """Turns values into bytes for storage and back.

    ``dumps`` raises :class:`alsek_core.errors.SerializationError` naming the
    type it cannot encode; ``loads`` raises it for bytes it cannot decode.
    """

    name: str = "custom"

    @abstractmethod
    def dumps(self, obj: Any) -> bytes: ...

    @abstractmethod
    def loads(self, data: bytes) -> Any: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
