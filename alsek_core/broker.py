"""The broker: the one place messages go into and out of a backend's queues.

It turns Messages into payloads with the backend's serializer and speaks only
the ``Queue`` port, so every backend (native or five-method) behaves alike.
"""

from __future__ import annotations

import copy
import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from alsek_core import middleware
from alsek_core.ack_batch import AckBatch
from alsek_core.broker_history import HistoryDoor
from alsek_core.clock import now_ms
from alsek_core.codec import MessageCodec
from alsek_core.config import default_backend
from alsek_core.dead_letter import DeadLetter, misaddressed
from alsek_core.errors import (
    DuplicateMessageError,
    MessageAlreadyExistsError,
    MessageDoesNotExistError,
    MessageInFlightError,
    SerializationError,
    ValidationError,
)
from alsek_core.history import HistoryBatch, Retention
from alsek_core.message import Message, validate_queue_name
from alsek_core.pause import PausedQueues
from alsek_core.ports import (
    PARKED,
    Backend,
    Delivery,
    Envelope,
    QueueCounts,
    QueuedMessage,
    Serializer,
    Settlement,
)
from alsek_core.ports import StatusTracker as StatusTrackerPort
from alsek_core.revocation_marks import REVOCATION_TTL, RevocationMarks, revocation_uuid
from alsek_core.settle_batch import SettleBatch
from alsek_core.status import TaskStatus

log = logging.getLogger(__name__)

#: Claims without a recorded outcome (each one a worker that died holding the
#: message) after which it is a poison message and goes to the dead letters.
DEFAULT_MAX_DELIVERIES = 5


def checked_ttl(ttl: Any) -> int | None:
    if not (ttl is None or (isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0)):
        raise ValidationError(f"ttl must be a positive int (ms) or None, got {ttl!r}")
    return ttl


def checked_window(window: Any) -> int | None:
    """A unique key's window (``unique_for``): positive ms, or None for "until
    its message settles"."""
    if not (window is None or (isinstance(window, int) and not isinstance(window, bool) and window > 0)):
        raise ValidationError(f"unique_for must be a positive int (ms), a timedelta or None, got {window!r}")
    return window


def exception_details(exc: BaseException) -> dict[str, Any]:
    return {
        "name": type(exc).__name__,
        "text": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }


class Broker(HistoryDoor, MessageCodec):
    """``dead_letter=False`` makes ``fail`` simply drop the message.
    ``history`` bounds the job history of what its pools finish
    (:class:`~alsek_core.history.Retention`; ``NO_HISTORY`` keeps none)."""

    def __init__(
        self,
        backend: Backend | None = None,
        dead_letter: bool = True,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        history: Retention | None = None,
    ) -> None:
        self.backend = default_backend() if backend is None else backend
        self.dead_letter = dead_letter
        self.max_deliveries = max_deliveries
        self.retention = Retention() if history is None else history
        #: Who settles through this broker (a pool process), for the job history.
        self.worker: str | None = None
        self._acks: AckBatch | None = None
        self._history: HistoryBatch | None = None
        self._settles: SettleBatch | None = None

    def __repr__(self) -> str:
        return f"Broker(backend={self.backend!r})"

    @property
    def backend(self) -> Backend:
        return self._backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        """Revocation marks live on the backend: a worker process that swaps in
        its own unconnected copy (``worker.fork``) must read them through it,
        never through a connection it shares with the host."""
        self._backend = backend
        self.revocations = RevocationMarks(backend)
        self.pauses = PausedQueues(backend)

    def same_storage(self, other: Broker) -> bool:
        """Whether ``other`` reaches the same queues (same kind of backend, same
        namespace), though perhaps through another connection."""
        return type(self.backend) is type(other.backend) and self.backend.namespace == other.backend.namespace

    @property
    def serializer(self) -> Serializer:
        return self.backend.serializer

    def reject(self, delivery: Delivery) -> None:
        """Give up on a claimed payload that cannot run as it is: to the dead
        letters untouched (so a retry puts back exactly these bytes), or
        dropped when dead letters are off."""
        if not self.dead_letter:
            self.backend.ack(delivery.queue, delivery.uuid)
        elif not self.backend.dead_letter(delivery, delivery.payload):
            log.warning("lease of message %s was lost before dead-lettering", delivery.uuid)

    # --- producing ----------------------------------------------------------------

    def submit(
        self, message: Message, ttl: int | None = None, connection: Any = None,
        unique_for: int | None = None,
    ) -> Message:
        """Enqueue one message. With ``ttl`` (ms), a message not claimed by
        then does not run: it is dead-lettered as expired. With ``connection``
        (PostgreSQL), inside the caller's own transaction: rolled back, the
        message never existed.

        A message with a ``unique_key`` is queued only if no other queued
        message of its queue holds that key, and then holds it until it
        settles or ``unique_for`` ms have passed; otherwise nothing is queued
        and DuplicateMessageError names the holder (``existing_uuid``)."""
        window = checked_window(unique_for)
        if (lifetime := checked_ttl(ttl)) is not None:
            message.expires_at = now_ms() + lifetime
        if message.unique_key is not None:
            if connection is not None:
                raise ValidationError(
                    f"{message.summary} has a unique key: it cannot be submitted inside a caller's transaction"
                )
            self._submit_unique(message, window)
            return message
        envelopes = [self.envelope(message)]
        if connection is None:
            added = self.backend.submit(envelopes)
        else:
            added = self.backend.submit_in_transaction(envelopes, connection)
        if not added:
            raise MessageAlreadyExistsError(f"{message.summary} is already queued")
        return message

    def _submit_unique(self, message: Message, window: int | None) -> None:
        assert message.unique_key is not None
        holder = self.backend.submit_unique(self.envelope(message), message.unique_key, window)
        if holder == message.uuid:
            raise MessageAlreadyExistsError(f"{message.summary} is already queued")
        if holder is not None:
            raise DuplicateMessageError(
                f"{message.summary} not queued: message {holder} holds its unique key "
                f"{message.unique_key!r}", existing_uuid=holder,
            )

    def submit_many(self, messages: Iterable[Message], unique_for: int | None = None) -> int:
        """Enqueue many messages in as few round trips as the backend can;
        returns how many were new (a uuid already queued is skipped, and the
        difference is how a caller sees it). If one cannot be encoded, those
        before it may already be queued: submitting the same messages again
        skips them. Messages with a unique key are submitted one by one (see
        ``submit``), and one whose key is held is skipped likewise."""
        window = checked_window(unique_for)
        plain: list[Message] = []
        added = 0
        for message in messages:
            if message.unique_key is None:
                plain.append(message)
                continue
            try:
                self._submit_unique(message, window)
            except MessageAlreadyExistsError:
                continue
            added += 1
        return added + self.backend.submit(self.envelope(m) for m in plain)

    def free_unique(self, message: Message) -> bool:
        """Free the unique key ``message`` holds (it settled for good); True if
        it held it. Idempotent, and a key since taken by another stays."""
        if message.unique_key is None:
            return False
        return self.backend.release_unique(message.queue, message.unique_key, message.uuid)

    def park(self, message: Message) -> None:
        """Enqueue ``message`` parked: delayed until a chord's last member
        settles and releases it (``ports.ChordJoin``)."""
        envelope = self.envelope(message)
        envelope.ready_at = PARKED
        if not self.backend.submit([envelope]):
            raise MessageAlreadyExistsError(f"{message.summary} is already queued")

    def joined(self, callback: Message) -> dict[int, bytes]:
        """What the members of the chord of ``callback`` recorded, by index."""
        return self.backend.joined(callback.queue, callback.uuid)

    def forget_join(self, callback: Message) -> None:
        self.backend.forget_join(callback.queue, callback.uuid)

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
        """This broker, except that ``ack``, the settling of a success and the
        RUNNING status (``running``) wait for ``flush_acks``: a worker pool
        settles many finished messages in one round trip. A success waiting
        there dies with its process: a worker process's pool keeps a copy
        where its supervisor settles it if the process dies
        (``worker.slots.LeaseBook``); elsewhere (a pool killed whole) the
        message runs again once its lease ends, as at-least-once allows, and
        nobody ever read its outcome, so what readers see stays consistent."""
        clone = copy.copy(self)
        clone._acks = AckBatch()
        clone._history = HistoryBatch()
        clone._settles = SettleBatch()
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

    def running(self, tracker: StatusTrackerPort, message: Message, deferrable: bool = False) -> None:
        """Status RUNNING for a message that starts, best effort (a later
        write replaces it). A ``batching()`` broker writes a ``deferrable``
        one only if the message still runs at a flush, a little later (see
        ``settle_batch``): for a tracker whose outcome statuses ride in
        settlements, which the flush orders after it (``outcome.running``)."""
        if self._settles is None or not deferrable:
            self._write_running(tracker, message)
        else:
            self._settles.running(tracker, message)

    @staticmethod
    def _write_running(tracker: StatusTrackerPort, message: Message) -> None:
        try:
            tracker.set(message, TaskStatus.RUNNING)
        except Exception:
            log.exception("could not record status RUNNING of %s", message.summary)

    def settle(self, settlement: Settlement, message: Message | None = None, batch: bool = True) -> bool:
        """Apply a claimed message's outcome (built by :mod:`alsek_core.outcome`)
        in one step where the backend can. On a ``batching()`` broker, one
        that writes nothing joins the ack batch and a success (or a removal
        with a status) the settle batch, unless ``batch`` is False (the
        caller acts on its removal next, as a chord's callback does); a
        retry or failure is applied at once (it says whether its lease
        held). False when a retry or failure found its lease lost.

        A message's unique key is freed once its settlement is applied for
        good: at once, or by the flush that applies it (``flush_acks``)."""
        settles = self._settles
        deferred = settles is not None and batch
        if settles is None:
            [settled] = self.backend.settle([settlement])
        elif deferred and settlement.removal_only and self._acks is not None:
            settles.ended(settlement.delivery.uuid)
            settles.hold_key(message)
            self._acks.add(settlement.delivery)
            settled = True
        elif deferred and settlement.ready_at is None and not settlement.dead:
            settles.add(settlement, message)
            settled = True
        else:
            deferred = False
            with settles.applying:
                settles.ended(settlement.delivery.uuid)
                [settled] = self.backend.settle([settlement])
        if not settled:
            log.warning("lease of message %s was lost before its outcome was settled; another worker has it",
                        settlement.delivery.uuid)
        if message is not None:
            message.delivery = None
            if settled and settlement.ready_at is None and not deferred:
                self.free_unique(message)
        return settled

    def acks_pending(self) -> int:
        """How many finished messages wait in the batches."""
        return (0 if self._acks is None else len(self._acks)) + (0 if self._settles is None else len(self._settles))

    def ack_pending(self, uuid: str) -> bool:
        """Whether the message with ``uuid`` waits in a batch (to be acked or settled)."""
        return (self._acks is not None and uuid in self._acks) or self.pending_settlement(uuid) is not None

    def pending_settlement(self, uuid: str) -> Settlement | None:
        """The settlement of ``uuid`` waiting in the batch, if any."""
        return None if self._settles is None else self._settles.get(uuid)

    def flush_acks(self, history: bool = True) -> list[str]:
        """Write the RUNNING statuses due, settle the waiting successes in one
        round trip, ack the batch in one round trip per queue, free the
        unique keys of what was settled or acked, then write the job
        history waiting (``flush_history``) unless ``history`` is False,
        less the entries of messages that could not be settled or acked
        (they run again, and are told again); the uuids settled or acked
        (each counted as pending until then, see ``ack_pending``)."""
        flushed, unapplied = self._flush_settles()
        acked: list[str] = []
        if self._acks is not None and len(self._acks):
            for queue, uuids in self._acks.take().items():
                acked += uuids
                try:
                    self.backend.ack_many(queue, uuids)
                except Exception:
                    log.exception("could not ack %d finished message(s) of queue %r; they will run again "
                                  "when their leases end", len(uuids), queue)
                    unapplied.update(uuids)
            self._acks.done(acked)
        if self._settles is not None and (done := flushed + acked):
            for message in self._settles.take_keys(done):
                if message.uuid not in unapplied:
                    self._free_unique_quietly(message)
        self.unrecord(unapplied)
        if history:
            self.flush_history()
        return flushed + acked

    def _flush_settles(self) -> tuple[list[str], set[str]]:
        """The uuids of the settlements taken, and those not applied."""
        settles = self._settles
        if settles is None:
            return [], set()
        with settles.applying:
            running, settlements = settles.take()
            for tracker, message in running:
                self._write_running(tracker, message)
            if not settlements:
                return [], set()
            uuids = [s.delivery.uuid for s in settlements]
            try:
                applied = self.backend.settle(settlements)
            except Exception:
                log.exception("could not settle %d finished message(s) (%s); they will run again when "
                              "their leases end", len(settlements), ", ".join(uuids))
                applied = [False] * len(uuids)
            settles.done(uuids)
        return uuids, {uuid for uuid, ok in zip(uuids, applied, strict=True) if not ok}

    def _free_unique_quietly(self, message: Message) -> None:
        """A key left held after its holder settled is taken over by the next
        submit (``Queue.submit_unique``): a failure here costs nothing more."""
        try:
            self.free_unique(message)
        except Exception:
            log.exception("could not free the unique key of %s", message.summary)

    def remove(self, message: Message | Delivery) -> None:
        self.backend.ack(message.queue, message.uuid)
        if isinstance(message, Message):
            message.delivery = None

    def retry(self, message: Message) -> Message:
        """Count a failed attempt and release it to run again after its backoff.

        A message no worker holds (submitted, not claimed) is rescheduled as
        Alsek does: stored again with its retries counted. That takes it out
        and puts it back, so a worker claiming it in between runs it once
        more; a message a worker holds raises MessageInFlightError."""
        if message.delivery is None:
            self._unclaimed(message)
            message.increment_retries()
            self.backend.ack(message.queue, message.uuid)
            self.backend.submit([self.envelope(message)])
            return message
        message.increment_retries()
        self.release(message, message.ready_at)
        return message

    def nack(self, message: Message) -> None:
        """Give it back untouched, to be delivered again at once. A message no
        worker holds is already waiting for delivery: nothing to give back."""
        if message.delivery is None:
            self._unclaimed(message)
            return
        self.release(message)

    def _unclaimed(self, message: Message) -> None:
        """Check that ``message`` is queued and that no worker holds it."""
        state = self._state(message)
        if state is None:
            raise MessageDoesNotExistError(f"{message.summary} is not queued")
        if state == "in_flight":
            raise MessageInFlightError(
                f"{message.summary} is held by a worker; only that worker can release it"
            )

    def _state(self, message: Message) -> str | None:
        """ready, delayed or in_flight; None when not queued. Reads the queue's
        listing, so it costs time in proportion to the queue's length."""
        if not self.exists(message):
            return None
        for item in self.backend.messages(message.queue):
            if item.uuid == message.uuid:
                return item.state
        return None

    def sync(self, message: Message) -> Message:
        """The message as stored now (queued, or else among the dead letters),
        e.g. to see the retries and exception details a worker recorded."""
        for dead in (False, True):
            for item in self.backend.messages(message.queue, dead=dead):
                if item.uuid == message.uuid:
                    return self.decode(item.payload)
        raise MessageDoesNotExistError(f"{message.summary} is neither queued nor dead-lettered")

    def in_dlq(self, message: Message) -> bool:
        """Whether ``message`` is among its queue's dead letters."""
        return any(item.uuid == message.uuid for item in self.backend.messages(message.queue, dead=True))

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

    def envelope(self, message: Message) -> Envelope:
        """The middleware sees each message just before it is encoded to be queued."""
        middleware.before_submit(message)
        return super().envelope(message)

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
                return
            message.delivery = None
        else:
            self.remove(message)
        self.free_unique(message)

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
            except SerializationError:
                message = None
            yield item.state, item.uuid, message

    def purge(self, queue: str) -> int:
        return self.backend.purge(validate_queue_name(queue))

    # --- pausing -------------------------------------------------------------------
    # A paused queue keeps every message as it is; only claims skip it (see
    # alsek_core.pause). Pools read the flags through ``claimable``.

    def pause(self, queue: str) -> None:
        """Stop claiming from ``queue`` (within ``pause.VIEW_MS`` plus one claim's
        wait, in every pool); its messages stay queued, running ones finish."""
        self.pauses.pause(queue)

    def resume(self, queue: str) -> None:
        self.pauses.resume(queue)

    def is_paused(self, queue: str) -> bool:
        return self.pauses.is_paused(queue)

    def paused(self) -> list[str]:
        """Every paused queue, sorted (a queue may be paused before it has messages)."""
        return self.pauses.names()

    def claimable(self, queues: Sequence[str]) -> list[str]:
        """``queues`` without the paused ones, as this process last read them
        (at most ``pause.VIEW_MS`` ago: no round trip per claim)."""
        paused = self.pauses.seen()
        return [queue for queue in queues if queue not in paused] if paused else list(queues)

    # --- revoking --------------------------------------------------------------------

    def revoke(self, message: Message | str) -> None:
        """Make sure a message (or a uuid) never runs (see
        :mod:`alsek_core.revocation`): once this returns, no worker starts it.
        The mark lasts ``REVOCATION_TTL`` past the time the message is due.
        Statuses are the task's business (``Task.revoke``). A revoked Message
        frees its unique key at once (it will never run)."""
        uuid = revocation_uuid(message)
        due = message.ready_at if isinstance(message, Message) else now_ms()
        self.revocations.mark(uuid, ttl=max(due - now_ms(), 0) + REVOCATION_TTL)
        if isinstance(message, Message):
            self.free_unique(message)

    def is_revoked(self, message: Message | str) -> bool:
        return self.revocations.exists(revocation_uuid(message))

    def revoked_among(self, uuids: Iterable[str]) -> set[str]:
        """Which of ``uuids`` (what a pool runs) are revoked, as this process
        last read the revocations (see ``refuses``)."""
        return self.revocations.among(uuids)

    def follow_revocations(self, stop: threading.Event, on_change: Callable[[], None]) -> None:
        """Block until ``stop``, calling ``on_change`` whenever the backend
        pushes a revocation (see :meth:`RevocationMarks.follow`)."""
        self.revocations.follow(stop, on_change)

    def refuses(self, message: Message) -> bool:
        """Whether a worker must not run ``message``: revoked, as this process
        last read the revocations (at most ``VIEW_MS`` ago; no round trip
        per message)."""
        return self.revocations.seen(message.uuid)

    # --- limits ----------------------------------------------------------------------
    # The state of rate and concurrency limits (alsek_core.limits) lives in the
    # backend, shared by every pool on every host; alsek_core.worker.gate uses it.

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        """Reserve a token of ``bucket``: 0 when it is there now, else the ms until it is due."""
        return self.backend.take_token(bucket, rate_per_s, burst)

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        """Take (or extend) one of ``limit`` slots of ``group`` for ``lease_ms``."""
        return self.backend.acquire_slot(group, holder, limit, lease_ms)

    def release_slot(self, group: str, holder: str) -> None:
        self.backend.release_slot(group, holder)

    # --- dead letters ---------------------------------------------------------------

    def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        """Every dead letter (of ``queue``, or of all queues), best first,
        whatever its payload holds."""
        queues = [validate_queue_name(queue)] if queue else self.queues()
        return [self._dead_letter(item) for q in queues for item in self.backend.messages(q, dead=True)]

    def _dead_letter(self, item: QueuedMessage) -> DeadLetter:
        try:
            data = self._data(item.payload)
            message = self._message(data)
        except SerializationError as exc:
            return DeadLetter(item.queue, item.uuid, item.payload, None, exc)
        problem = misaddressed(data, item.queue, item.uuid)
        return DeadLetter(
            item.queue, item.uuid, item.payload, message,
            ValidationError(problem) if problem is not None else None,
        )

    def replay(self, dead: DeadLetter | Message) -> None:
        """Put a dead letter back on its queue, as new, to run at once, under
        its row's uuid. A payload that is no message goes back as the bytes it
        was: it is dead-lettered again unless the code reading it changed.
        Queued before it leaves the dead letters, so a crash in between can
        only leave both. MessageAlreadyExistsError if its uuid is queued
        already (the dead letter then stays)."""
        if isinstance(dead, Message):
            dead = self._dead_letter_of(dead)
        if dead.message is None:
            envelope = Envelope(dead.queue, dead.uuid, 0, now_ms(), dead.payload)
        else:
            message = dead.message.clone().update(
                uuid=dead.uuid, queue=dead.queue, retries=0, exception_details=None,
                delay=0, updated_at=now_ms(), expires_at=None,
            )
            envelope = self.envelope(message)
        self.revocations.unmark(dead.uuid)  # replaying means: run it
        if not self.backend.submit([envelope]):
            raise MessageAlreadyExistsError(
                f"message {dead.uuid} is already queued in {dead.queue!r}; its dead letter stays"
            )
        self.backend.remove_dead(dead.queue, dead.uuid)

    def _dead_letter_of(self, message: Message) -> DeadLetter:
        for dead in self.dead_letters(message.queue):
            if dead.uuid == message.uuid:
                return dead
        raise MessageDoesNotExistError(f"{message.summary} is not among the dead letters")

    def remove_dead_letter(self, dead: DeadLetter) -> bool:
        """Delete one dead letter for good; False if it was gone already."""
        return self.backend.remove_dead(dead.queue, dead.uuid)

    def purge_dead(self, queue: str | None = None) -> int:
        return sum(self.remove_dead_letter(dead) for dead in self.dead_letters(queue))
