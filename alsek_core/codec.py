"""Messages to payloads and back, with the checks that make a payload safe to
run: bytes that hold no message, or a message naming another row than the
one it was claimed from, are refused with a clear error."""

from __future__ import annotations

from typing import Any

from alsek_core.dead_letter import misaddressed
from alsek_core.errors import SerializationError, ValidationError
from alsek_core.message import Message
from alsek_core.ports import Delivery, Envelope, Serializer


class MessageCodec:
    """What the Broker encodes and decodes with (its backend's serializer)."""

    @property
    def serializer(self) -> Serializer:
        raise NotImplementedError

    def encode(self, message: Message) -> bytes:
        try:
            return self.serializer.dumps(message.data)
        except SerializationError as exc:
            raise SerializationError(f"cannot submit {message.summary}: {exc}") from exc

    def decode(self, payload: bytes) -> Message:
        """The message a payload holds; SerializationError for bytes that hold none."""
        return self._message(self._data(payload))

    def _data(self, payload: bytes) -> dict[str, Any]:
        try:
            data = self.serializer.loads(payload)
        except SerializationError:
            raise
        except Exception as exc:  # a serializer of a plugin breaking its contract: still a clear error
            raise SerializationError(
                f"{self.serializer!r} cannot decode the payload: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise SerializationError(f"payload is a {type(data).__name__}, not a message")
        return data

    @staticmethod
    def _message(data: dict[str, Any]) -> Message:
        try:
            return Message(**data)
        except Exception as exc:  # whatever the bytes say, a clear error
            raise SerializationError(f"payload is no message: {type(exc).__name__}: {exc}") from exc

    def open(self, delivery: Delivery) -> Message:
        """The message a claimed payload holds, bound to its lease. Raises
        SerializationError for bytes that hold no message, ValidationError for
        one naming another message than its row (see ``misaddressed``)."""
        data = self._data(delivery.payload)
        problem = misaddressed(data, delivery.queue, delivery.uuid)
        if problem is not None:
            raise ValidationError(problem)
        message = self._message(data)
        message.delivery = delivery
        return message

    def envelope(self, message: Message) -> Envelope:
        return Envelope(
            message.queue, message.uuid, message.priority, message.ready_at, self.encode(message)
        )

    def encode_lenient(self, message: Message) -> bytes:
        """Encode for the dead letters even if a field (previous_result) cannot be."""
        try:
            return self.encode(message)
        except SerializationError:
            message.previous_result = repr(message.previous_result)
            return self.encode(message)
