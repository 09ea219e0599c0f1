"""The ports: what the core needs from the outside world, and nothing more.

Adapters (alsek_backends/...) implement these; the core only ever talks to
these shapes. They are Protocols so that a third party can satisfy them
without inheriting from anything of ours, although subclassing
:class:`alsek_core.backend.Backend` is the easy way: it supplies every queue
operation on top of the five key-value methods (through
:class:`alsek_core.kv_queue.KVQueue`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from alsek_core.errors import AlsekError

if TYPE_CHECKING:
    from alsek_core.history import HistoryEntry, Retention
    from alsek_core.message import Message
    from alsek_core.status import TaskStatus


@dataclass(slots=True)
class Envelope:
    """A message on its way into a queue: the payload plus what ordering needs.
    (Not frozen: one is made per message submitted, and a frozen dataclass
    costs four times as much to make.)

    ``ready_at`` is milliseconds since the epoch; lower ``priority`` is served first.
    """

    queue: str
    uuid: str
    priority: int
    ready_at: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed message. ``token`` proves the lease; ``deliveries`` counts the
    claims since the core last recorded an outcome (1 on a first delivery, more
    when a worker died holding it)."""

    queue: str
    uuid: str
    payload: bytes
    token: str
    deliveries: int


@dataclass(frozen=True, slots=True)
class QueueCounts:
    ready: int = 0
    delayed: int = 0
    in_flight: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One row of a queue listing (``alsek jobs``)."""

    queue: str
    uuid: str
    payload: bytes
    state: str  # "ready" | "delayed" | "in_flight" | "dead"
    ready_at: int


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """A status record (``{"status", "queue", "task_name", "updated_at"}``)
    for the message ``uuid``, kept ``ttl`` ms (None: for good)."""

    uuid: str
    record: dict[str, Any]
    ttl: int | None
    #: The record as its home stores it (encoded by the backend's serializer).
    data: bytes


@dataclass(frozen=True, slots=True)
class ResultWrite:
    """A result record (``{"result", "timestamp", "written_ns", "uuid"}``) for
    the message ``uuid``, a member of ``progenitor_uuid``'s family when that is
    set. Written once: a record already there is kept (a rerun's is dropped)."""

    uuid: str
    progenitor_uuid: str | None
    record: dict[str, Any]
    ttl: int | None
    #: The result as its home stores it, encoded by the backend's serializer:
    #: the whole record on key-value storage, the value alone in a table.
    data: bytes


#: The ``ready_at`` of a parked message: a chord's callback waits in its queue
#: under it, delayed, until the member completing the chord makes it ready.
#: The largest integer a double (a Redis score) holds exactly.
PARKED = 2**53 - 1


@dataclass(frozen=True, slots=True)
class ChordJoin:
    """A chord member's share in its chord's join, settled with the member.

    A chord is known by its callback's uuid (``callback``), and its join
    lives with the callback, in its queue (``queue``): ``data`` (the member's
    outcome, encoded) is recorded under ``index`` unless already there, so a
    rerun counts once. If ``drop`` (the member failed and the chord fails with
    it), the parked callback is removed. When the recorded indexes number
    ``size``, the callback, if still parked, is made ready: it runs once,
    after every member settled, and reads the data with ``Queue.joined``.
    The first final outcome recorded stands: a failure counts even when its
    lease was lost to another delivery of the member (whose outcome then
    changes nothing), as on every backend the join is taken whatever the
    removal step finds."""

    queue: str
    callback: str
    index: int
    size: int
    data: bytes
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of one claimed message, for ``Queue.settle``:

    * success: ``result`` (if a store is configured), ``callback`` (if any),
      ``status`` SUCCEEDED (if a tracker is configured), then the message is
      removed;
    * retry (``ready_at`` set): ``status`` RETRYING, then the message is
      released with ``payload`` (its retries counted) to be claimed at
      ``ready_at``;
    * failure (``dead``): ``status`` FAILED, then the message moves to the
      dead letters with ``payload`` (its exception recorded); without dead
      letters, a failure is settled as a removal.

    A chord member's settlement carries its ``join`` (see ``ChordJoin``),
    applied in the same atomic step, or on the ordered path right before the
    removal, release or dead letter (drop, record, then make ready).

    ``status`` and ``result`` are only those the backend keeps itself (the
    Broker writes a store living elsewhere, a user's SQL table, before it
    settles).

    ``Queue.settle(settlements) -> list[bool]`` applies them, batched like
    acks (one round trip for many where the backend can); False for a retry
    or failure whose lease was lost, as ``reschedule``/``dead_letter`` say.
    Each settlement is one atomic step where the storage allows (one
    MULTI/EXEC on Redis, one transaction on PostgreSQL; on DiskCache, result
    and status in one transaction of the cache), so readers
    never see a result whose status is not SUCCEEDED, nor FAILED before the
    dead letter exists. The five-method implementation cannot be atomic; it
    takes ordered, idempotent steps, each safe to repeat when a crash between
    two of them has the message run again:

    1. the result: its family's copy first, then its own record (a family
       reads complete only once every copy is there), each written only if
       absent (a rerun keeps the first result);
    2. the callback: submitted under its fixed uuid (a rerun's is skipped);
    3. the status: overwritten with the same record;
    4. the removal, release or dead letter, last: until then the message is
       leased, and runs again if this worker dies.

    There, SUCCEEDED implies the result and a family is fetched whole; a
    result may be readable, and a status FAILED, a moment before the status
    says SUCCEEDED or the dead letter exists. ``Queue.atomic_settle`` says
    which promise a backend keeps."""

    delivery: Delivery
    status: StatusWrite | None = None
    result: ResultWrite | None = None
    callback: Envelope | None = None
    payload: bytes | None = None
    ready_at: int | None = None
    dead: bool = False
    join: ChordJoin | None = None

    @property
    def removal_only(self) -> bool:
        """Nothing to write: settling it is an ack."""
        return (self.status is None and self.result is None and self.callback is None
                and self.ready_at is None and not self.dead and self.join is None)


@runtime_checkable
class Serializer(Protocol):
    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@runtime_checkable
class KeyValue(Protocol):
    """The five methods (plus count) a backend author must write.

    Names are given without the namespace; an implementation prefixes them.
    ``ttl`` is in milliseconds. ``scan`` takes a glob pattern (``*`` and ``?``).
    """

    namespace: str
    serializer: Serializer

    def exists(self, name: str) -> bool: ...

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None: ...

    def get(self, name: str, default: Any = None) -> Any: ...

    def delete(self, name: str, missing_ok: bool = False) -> None: ...

    def scan(self, pattern: str | None = None) -> Iterable[str]: ...

    def count(self, pattern: str | None = None) -> int: ...

    def delete_if(self, name: str, value: Any) -> bool:
        """Delete ``name`` only while it holds ``value``; True if it did. What a
        lock's release needs: never remove a lock that expired and was taken
        by someone else. The base class reads then deletes; the built-in
        adapters do it atomically."""
        ...


@runtime_checkable
class Queue(Protocol):
    """Queue operations. ``KVQueue`` implements them generically on a KeyValue;
    the built-in adapters bring native atomic ones.

    Ordering among ready messages of one queue: lower priority first, then
    submission order. A message is claimable when ``ready_at <= now`` and it
    is not leased, or its lease has expired.
    """

    @property
    def atomic_settle(self) -> bool:
        """True when ``settle`` applies each outcome as one atomic step (see
        ``Settlement``); False for ordered, idempotent steps."""
        ...

    @property
    def blocking_claim(self) -> bool:
        """True when ``claim(..., wait_ms=...)`` blocks natively until work arrives;
        otherwise the consumer backs off by itself between empty claims."""
        ...

    def submit(self, envelopes: Iterable[Envelope]) -> int:
        """Enqueue; returns how many were new (a uuid already queued is skipped).
        ``envelopes`` may be a one-pass iterator that encodes as it goes, so an
        adapter can send early chunks while later ones are being encoded."""
        ...

    def submit_in_transaction(self, envelopes: Iterable[Envelope], connection: Any) -> int:
        """An optional capability: enqueue inside the transaction open on the
        caller's own ``connection``, so the messages exist only if the caller
        commits. Storage that cannot (most) keeps this default, which says so."""
        raise AlsekError(f"{type(self).__name__} cannot submit inside a caller's transaction")

    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        """Enqueue ``envelope`` and make it the holder of ``key`` (unique within
        its queue) for ``window_ms`` (None: no limit), unless the key is held:
        by a message still queued (ready, delayed or in flight; a dead letter
        holds nothing) whose window has not ended. None when it was queued;
        otherwise the uuid of the holder, or the envelope's own uuid when
        that is queued already (the key is then left as it was). Taking the
        key and enqueueing are one atomic step where the storage allows."""
        ...

    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        """Free ``key`` if ``uuid`` holds it (its message settled); True if it
        did. Idempotent: a key taken over since by another message stays."""
        ...

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        """Lease up to ``limit`` ready messages, taking ``queues`` in the given order."""
        ...

    def ack(self, queue: str, uuid: str) -> None:
        """Remove a message for good. Idempotent; needs no lease."""
        ...

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        """``ack`` for many messages of one queue, in one round trip where the
        backend can (a worker acks finished messages in batches)."""
        ...

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        """False when this lease no longer holds the message (it expired, or
        another claim took it); then the caller must stop treating it as its own."""
        ...

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        """Release a claimed message with an updated payload, claimable again at
        ``ready_at``; resets the delivery count. False when the lease was lost."""
        ...

    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        """Move a claimed message to its queue's dead-letter store."""
        ...

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Apply outcomes of claimed messages, as ``Settlement`` says; for each,
        False when a retry or failure found its lease lost, else True."""
        ...

    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        """The data each settled member of the chord of ``callback`` recorded
        (``ChordJoin``), by member index."""
        ...

    def forget_join(self, queue: str, callback: str) -> None:
        """Drop a chord's join once its callback has settled. Idempotent."""
        ...

    def contains(self, queue: str, uuid: str) -> bool: ...

    def queue_names(self) -> list[str]:
        """Every queue with messages live or dead, sorted."""
        ...

    def counts(self, queue: str) -> QueueCounts: ...

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        """Live messages of a queue (or its dead letters), best first."""
        ...

    def remove_dead(self, queue: str, uuid: str) -> bool: ...

    def purge(self, queue: str) -> int:
        """Drop every live message of a queue; returns how many."""
        ...

    # Limits (alsek_core.limits): state shared by every pool on every host.

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        """Reserve the next token of the token bucket ``bucket`` (up to
        ``burst`` tokens, refilled at ``rate_per_s``; created full). 0: it
        was there, taken. Otherwise the ms until the reserved token is due:
        it is the caller's then, and later callers queue up behind it."""
        ...

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        """Hold one of the ``limit`` slots of ``group`` for ``lease_ms``; True if
        ``holder`` holds one now. A holder asking again extends its lease; a
        lease not extended ends, freeing the slot of a holder that died."""
        ...

    def release_slot(self, group: str, holder: str) -> None:
        """Free ``holder``'s slot of ``group``; nothing if it holds none."""
        ...


@runtime_checkable
class Listener(Protocol):
    """A subscription opened before the caller checks state, so no wake-up is missed."""

    def wait(self, timeout_ms: int) -> bool:
        """Block until a notification or the timeout; True if notified. A backend
        without push may return False early (the caller re-checks and waits again)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Wakeups(Protocol):
    """Push instead of polling: status and result writers notify a channel,
    waiters listen on it. The generic implementation polls."""

    def notify(self, channel: str) -> None: ...

    def listen(self, channels: Sequence[str]) -> Listener: ...


@runtime_checkable
class History(Protocol):
    """The job history (:mod:`alsek_core.history`): finished messages kept
    within a ``Retention``, per queue and kind (``succeeded`` / ``failed``).
    ``KVHistory`` implements it on the key-value methods; Redis natively."""

    def record_history(self, entries: Sequence[HistoryEntry], retention: Retention) -> None:
        """Keep ``entries`` (a batch, any queues and kinds), then drop what the
        retention no longer allows in the queues and kinds they touched."""
        ...

    def history_of(self, queue: str, kind: str, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` entries of a queue's ``kind``, newest first."""
        ...

    def history_entry(self, queue: str, uuid: str) -> HistoryEntry | None: ...

    def history_queues(self) -> list[str]:
        """Every queue with history kept, sorted."""
        ...


@runtime_checkable
class Backend(KeyValue, Queue, Wakeups, History, Protocol):
    """Everything the core asks of storage."""


@runtime_checkable
class StatusTracker(Protocol):
    def set(self, message: Message, status: TaskStatus) -> None: ...

    def get(self, message: Message) -> TaskStatus: ...

    def exists(self, message: Message) -> bool: ...

    def delete(self, message: Message, check: bool = True) -> None: ...


@runtime_checkable
class ResultStore(Protocol):
    def set(self, message: Message, result: Any, nx: bool = True) -> None: ...

    def get(
        self,
        message: Message,
        timeout: int = 0,
        keep: bool = False,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Any: ...

    def exists(self, message: Message, descendants: bool = False) -> bool: ...

    def delete(
        self, message: Message, descendants: bool = True, missing_ok: bool = False
    ) -> int: ...
