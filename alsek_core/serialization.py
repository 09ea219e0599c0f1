"""The base every serializer builds on. Implementations live in alsek_serializers
and reach the core through the plugin manager."""

from __future__ import annotations

from typing import Any, Self

from alsek_core.errors import SerializationError


class Serializer:
    """Turns values into bytes for storage and back.

    Write ``dumps``/``loads``, or Alsek's ``forward``/``reverse`` (which may
    return ``str``; it is stored as UTF-8, and ``reverse`` is handed ``str``
    back), so serializers written for Alsek work unchanged. Each spelling is
    served by the other, so every serializer answers to both.

    ``dumps`` raises :class:`alsek_core.errors.SerializationError` naming the
    type it cannot encode; ``loads`` raises it for bytes it cannot decode.
    """

    name: str = "custom"

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # What an abstract method would say, for either spelling: without this
        # check, dumps and forward would call each other forever.
        missing = [
            f"{ours} (or {alsek})"
            for ours, alsek in (("dumps", "forward"), ("loads", "reverse"))
            if getattr(cls, ours) is getattr(Serializer, ours)
            and getattr(cls, alsek) is getattr(Serializer, alsek)
        ]
        if missing:
            raise TypeError(f"Can't instantiate {cls.__name__}: define {' and '.join(missing)}")
        return super().__new__(cls)

    def dumps(self, obj: Any) -> bytes:
        try:
            encoded = self.forward(obj)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"cannot encode a {type(obj).__name__}: {exc}") from exc
        if isinstance(encoded, str):
            return encoded.encode("utf-8")
        if isinstance(encoded, bytes):
            return encoded
        raise SerializationError(
            f"{type(self).__name__}.forward returned {type(encoded).__name__}, not str or bytes"
        )

    def loads(self, data: bytes) -> Any:
        try:
            text: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data
        try:
            return self.reverse(text)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"cannot decode {len(data)} bytes: {exc}") from exc

    def forward(self, obj: Any) -> Any:
        """Alsek's name for ``dumps``."""
        return self.dumps(obj)

    def reverse(self, obj: Any) -> Any:
        """Alsek's name for ``loads``; takes ``str`` as well as bytes."""
        return self.loads(obj.encode("utf-8") if isinstance(obj, str) else obj)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
