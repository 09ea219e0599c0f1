"""The broker: the one place messages go into and out of a backend's queues.

It turns Messages into payloads with the backend's serializer and speaks only
the ``Queue`` port, so every backend (native or five-method) behaves alike.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
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


class AckBatch:
    """Finished messages waiting to be acked together, by queue. Thread-safe.
    A message counts as waiting until the round trip that acks it is over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, None]] = {}
        self._flushing: set[str] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, uuid: object) -> bool:
        with self._lock:
            return uuid in self._flushing or any(uuid in uuids for uuids in self._pending.values())

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            uuids = self._pending.setdefault(delivery.queue, {})
            if delivery.uuid not in uuids:
                uuids[delivery.uuid] = None
                self._count += 1

    def take(self) -> dict[str, list[str]]:
        """The batch, to ack now; ``done`` once acked (or given up)."""
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
            for uuids in pending.values():
                self._flushing.update(uuids)
        return {queue: list(uuids) for queue, uuids in pending.items()}

    def done(self, uuids: Iterable[str]) -> None:
        with self._lock:
            self._flushing.difference_update(uuids)


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
        self._acks: AckBatch | None = None

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
        elif "connection" in inspect.signature(self.backend.submit).parameters:
            submit: Any = self.backend.submit
            added = submit(envelopes, connection=connection)
        else:
            raise AlsekError(
                f"{type(self.backend).__name__} cannot submit inside a caller's transaction"
            )
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
    # A message's life after its claim, in one vocabulary: extend its lease,
    # release it (untouched) or retry it (counted, after its backoff), ack it
    # (done), fail it or dead-letter it. Each takes the Message, or only its
    # Delivery where a worker holds no decoded message (a lease keeper, a
    # supervisor recovering what a dead worker held, an undecodable payload).

    @property
    def can_wait(self) -> bool:
        """Whether a claim can block until work arrives (else callers back off)."""
        return self.backend.blocking_claim

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        return self.backend.claim(queues, limit, lease_ms, wait_ms)

    @staticmethod
    def _delivery(target: Message | Delivery) -> Delivery:
        if isinstance(target, Delivery):
            return target
        if target.delivery is None:
            raise MessageDoesNotExistError(f"{target.summary} was not claimed by a consumer")
        return target.delivery

    def exists(self, message: Message) -> bool:
        return self.contains(message.queue, message.uuid)

    def contains(self, queue: str, uuid: str) -> bool:
        """Whether the message is still queued (ready, delayed or in flight)."""
        return self.backend.contains(queue, uuid)

    def batching(self) -> Broker:
        """This broker, except that ``ack`` waits for ``flush_acks``: a worker
        pool acks many finished messages in one round trip. An ack only removes
        a message whose outcome is already recorded, so the cost of a crash
        before the flush is a rerun once its lease ends."""
        clone = copy.copy(self)
        clone._acks = AckBatch()
        return clone

    def ack(self, message: Message | Delivery) -> None:
        """Done with it: remove it for good (same as ``remove``), or join the
        batch of a ``batching()`` broker."""
        if self._acks is None:
            self.remove(message)
            return
        self._acks.add(self._delivery(message))
        if isinstance(message, Message):
            message.delivery = None

    def acks_pending(self) -> int:
        return 0 if self._acks is None else len(self._acks)

    def ack_pending(self, uuid: str) -> bool:
        """Whether the message with ``uuid`` waits in the ack batch."""
        return self._acks is not None and uuid in self._acks

    def flush_acks(self) -> list[str]:
        """Ack the batch in one round trip per queue; the uuids it held (each
        counted as pending until then, see ``ack_pending``)."""
        if self._acks is None or not len(self._acks):
            return []
        flushed: list[str] = []
        for queue, uuids in self._acks.take().items():
            flushed += uuids
            try:
                self.backend.ack_many(queue, uuids)
            except Exception:
                log.exception("could not ack %d finished message(s) of queue %r; they will run again "
                              "when their leases end", len(uuids), queue)
        self._acks.done(flushed)
        return flushed

    def remove(self, message: Message | Delivery) -> None:
        self.backend.ack(message.queue, message.uuid)
        if isinstance(message, Message):
            message.delivery = None

    def retry(self, message: Message) -> Message:
        """Count a failed attempt and release it to run again after its backoff."""
        message.increment_retries()
        self.release(message, message.ready_at)
        return message

    def nack(self, message: Message) -> None:
        """Give it back untouched, to be delivered again at once."""
        self.release(message)

    def release(self, message: Message | Delivery, ready_at: int | None = None) -> bool:
        """Give it back (as the Message now is, or the Delivery as it was
        claimed), claimable again at ``ready_at`` (now by default). False if
        its lease was lost: another worker has it."""
        delivery = self._delivery(message)
        payload = self.encode(message) if isinstance(message, Message) else self.payload(delivery)
        released = self.backend.reschedule(delivery, payload, now_ms() if ready_at is None else ready_at)
        if not released:
            log.warning("lease of %s was lost before release; another worker has it",
                        message.summary if isinstance(message, Message) else delivery.uuid)
        if isinstance(message, Message):
            message.delivery = None
        return released

    def payload(self, delivery: Delivery) -> bytes:
        """The delivery's payload, looked up in its queue if it was not kept."""
        if delivery.payload:
            return delivery.payload
        for item in self.backend.messages(delivery.queue):
            if item.uuid == delivery.uuid:
                return item.payload
        raise MessageDoesNotExistError(f"message {delivery.uuid} is no longer in queue {delivery.queue!r}")

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

    def dead_letter_as_is(self, delivery: Delivery) -> bool:
        """To the dead letters with the payload as it was claimed (one that
        cannot be decoded, so cannot be failed as a Message)."""
        return self.backend.dead_letter(delivery, delivery.payload)

    def encode_lenient(self, message: Message) -> bytes:
        """Encode for the dead letters even if a field (previous_result) cannot be."""
        try:
            return self.encode(message)
        except SerializationError:
            message.previous_result = repr(message.previous_result)
            return self.encode(message)

    def extend(self, message: Message | Delivery, lease_ms: int) -> bool:
        """Hold it ``lease_ms`` longer; False if the lease was lost (or it is settled)."""
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
