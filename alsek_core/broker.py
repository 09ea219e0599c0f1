"""The broker: the one place messages go into and out of a backend's queues.

It turns Messages into payloads with the backend's serializer and speaks only
the ``Queue`` port, so every backend (native or five-method) behaves alike.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alsek_core.clock import now_ms
from alsek_core.errors import (
    AlsekError,
    MessageAlreadyExistsError,
    MessageDoesNotExistError,
    SerializationError,
)
from alsek_core.message import Message, validate_queue_name
from alsek_core.ports import Backend, Delivery, Envelope, QueueCounts

log = logging.getLogger(__name__)

#: Claims without a recorded outcome (each one a worker that died holding the
#: message) after which it is a poison message and goes to the dead letters.
DEFAULT_MAX_DELIVERIES = 5


def exception_details(exc: BaseException) -> dict[str, Any]:
    return {
        "name": type(exc).__name__,
        "text": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }


class Broker:
    """``dead_letter=False`` makes ``fail`` simply drop the message."""

    def __init__(
        self,
        backend: Backend | None = None,
        dead_letter: bool = True,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> None:
        if backend is None:
            from alsek_core.config import default_backend

            backend = default_backend()
        self.backend = backend
        self.dead_letter = dead_letter
        self.max_deliveries = max_deliveries

    def __repr__(self) -> str:
        return f"Broker(backend={self.backend!r})"

    # --- encoding -----------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        try:
            return self.backend.serializer.dumps(message.data)
        except SerializationError as exc:
            raise SerializationError(f"cannot submit {message.summary}: {exc}") from exc

    def decode(self, payload: bytes) -> Message:
        data = self.backend.serializer.loads(payload)
        if not isinstance(data, dict):
            raise SerializationError(f"payload is a {type(data).__name__}, not a message")
        return Message(**data)

    def envelope(self, message: Message) -> Envelope:
        return Envelope(
            message.queue, message.uuid, message.priority, message.ready_at, self.encode(message)
        )

    # --- producing ----------------------------------------------------------------

    def submit(self, message: Message, connection: Any = None) -> Message:
        """Enqueue one message. With ``connection`` (PostgreSQL), inside the caller's
        own transaction: rolled back, the message never existed."""
        envelopes = [self.envelope(message)]
        if connection is None:
            added = self.backend.submit(envelopes)
        else:
            added = self.backend.submit_in_transaction(envelopes, connection)
        if not added:
            raise MessageAlreadyExistsError(f"{message.summary} is already queued")
        return message

    def submit_many(self, messages: Iterable[Message]) -> list[Message]:
        """Enqueue many messages in as few round trips as the backend can. If one
        cannot be encoded, those before it may already be queued: submitting
        the same messages again skips them (same uuid)."""
        batch = list(messages)
        self.backend.submit(self.envelope(m) for m in batch)
        return batch

    # --- consuming ----------------------------------------------------------------

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        return self.backend.claim(queues, limit, lease_ms, wait_ms)

    @staticmethod
    def _delivery(message: Message) -> Delivery:
        if message.delivery is None:
            raise MessageDoesNotExistError(f"{message.summary} was not claimed by a consumer")
        return message.delivery

    def exists(self, message: Message) -> bool:
        return self.backend.contains(message.queue, message.uuid)

    def ack(self, message: Message) -> None:
        """Done with it: remove it for good (same as ``remove``)."""
        self.remove(message)

    def remove(self, message: Message) -> None:
        self.backend.ack(message.queue, message.uuid)
        message.delivery = None

    def retry(self, message: Message) -> Message:
        """Count a failed attempt and release it to run again after its backoff."""
        message.increment_retries()
        self._release(message, message.ready_at)
        return message

    def nack(self, message: Message) -> None:
        """Give it back untouched, to be delivered again at once."""
        self._release(message, now_ms())

    def _release(self, message: Message, ready_at: int) -> None:
        if not self.backend.reschedule(self._delivery(message), self.encode(message), ready_at):
            log.warning(
                "lease of %s was lost before release; another worker has it", message.summary
            )
        message.delivery = None

    def fail(self, message: Message, exc: BaseException | None = None) -> None:
        """Give up on it: to the dead letters when enabled, else drop it."""
        if exc is not None:
            message.exception_details = exception_details(exc)
        if self.dead_letter and message.delivery is not None:
            payload = self.encode_lenient(message)
            if not self.backend.dead_letter(message.delivery, payload):
                log.warning("lease of %s was lost before dead-lettering", message.summary)
            message.delivery = None
        else:
            self.remove(message)

    def encode_lenient(self, message: Message) -> bytes:
        """Encode for the dead letters even if a field (previous_result) cannot be."""
        try:
            return self.encode(message)
        except SerializationError:
            message.previous_result = repr(message.previous_result)
            return self.encode(message)

    def extend(self, message: Message, lease_ms: int) -> bool:
        return self.backend.extend_lease(self._delivery(message), lease_ms)

    # --- inspecting ---------------------------------------------------------------

    def queues(self) -> list[str]:
        return self.backend.queue_names()

    def counts(self, queue: str) -> QueueCounts:
        return self.backend.counts(validate_queue_name(queue))

    def messages(self, queue: str, dead: bool = False) -> Iterator[tuple[str, str, Message | None]]:
        """(state, uuid, message or None when undecodable) for a queue's messages."""
        for item in self.backend.messages(validate_queue_name(queue), dead=dead):
            try:
                message: Message | None = self.decode(item.payload)
            except (SerializationError, AlsekError, TypeError):
                message = None
            yield item.state, item.uuid, message

    def purge(self, queue: str) -> int:
        return self.backend.purge(validate_queue_name(queue))

    # --- dead letters ---------------------------------------------------------------

    def dead_letters(self, queue: str | None = None) -> list[Message]:
        queues = [queue] if queue else self.queues()
        return [m for q in queues for _, _, m in self.messages(q, dead=True) if m is not None]

    def replay(self, message: Message) -> Message:
        """Put a dead-lettered message back on its queue, as new, to run at once."""
        if not self.backend.remove_dead(message.queue, message.uuid):
            raise MessageDoesNotExistError(f"{message.summary} is not among the dead letters")
        message.update(retries=0, exception_details=None, delay=0, updated_at=now_ms())
        self.backend.submit([self.envelope(message)])
        return message

    def purge_dead(self, queue: str | None = None) -> int:
        removed = 0
        for q in [queue] if queue else self.queues():
            for item in list(self.backend.messages(q, dead=True)):
                removed += self.backend.remove_dead(q, item.uuid)
        return removed
