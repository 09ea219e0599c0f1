"""The base class a backend author subclasses.

Write the five key-value methods (``exists``, ``set``, ``get``, ``delete``,
``scan``) and the whole library works on your storage: the queue operations
are handed to ``self.queue``, which is :class:`alsek_core.kv_queue.KVQueue`
on those five unless a subclass brings a native queue (the built-in adapters
do: each assembles its key-value part with its own queue part).
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alsek_core.broker import Broker
from alsek_core.history import HistoryEntry, Retention
from alsek_core.kv_history import KVHistory
from alsek_core.kv_queue import KVQueue
from alsek_core.plugins import default_serializer
from alsek_core.ports import (
    Delivery,
    Envelope,
    History,
    Listener,
    Queue,
    QueueCounts,
    QueuedMessage,
    Serializer,
    Settlement,
)
from alsek_core.result import ResultStore
from alsek_core.status import BaseStatusTracker, StatusTracker
from alsek_core.waiting import PollingListener

DEFAULT_NAMESPACE = "alsek"
#: The first part of the names the library itself writes. Since ``full_name``
#: leaves a name that already starts with the namespace alone (as Alsek
#: does), a namespace spelled like one of these would swallow them.
RESERVED_NAMESPACES = frozenset(
    {"history", "limits", "locks", "paused", "queues", "results", "revocations", "revoked", "status", "triggers",
     "unique"}
)
_ABSENT = object()


class Backend(ABC):
    """Key-value storage under a namespace, plus a queue built on it.

    Contract for implementations:

    * every name is prefixed with ``full_name(name)`` before it touches storage,
      and ``scan`` yields names with the namespace stripped (``short_name``);
    * values go through ``self.serializer`` (``dumps`` on set, ``loads`` on get);
    * ``set(nx=True)`` on an existing live name raises ``KeyExistsError``;
    * ``ttl`` is in milliseconds, after which the name no longer exists;
    * ``scan(pattern)`` matches the glob ``pattern + "*"`` (so a pattern is a
      prefix unless it says otherwise); ``None`` scans everything;
    * ``delete`` of a missing name raises ``KeyError`` unless ``missing_ok``.

    ``queue`` is for adapters with a native queue; a five-method backend
    leaves it out and gets ``KVQueue(self)``. Likewise ``history`` (the job
    history, kept as ``history_store``): ``KVHistory(self)`` unless the
    adapter brings its own.
    """

    #: Where ``StatusTracker(backend)`` and ``ResultStore(backend)`` keep
    #: records: key-value ones, unless an adapter names a home of its own (a
    #: subclass, e.g. a table), so the CLI and users' code see the same data.
    status_tracker_class: type[StatusTracker] | None = None
    result_store_class: type[ResultStore] | None = None

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        queue: Queue | None = None,
        history: History | None = None,
    ) -> None:
        if not namespace or "*" in namespace or "?" in namespace:
            raise ValueError(
                f"namespace must be a non-empty name without glob characters, got {namespace!r}"
            )
        if namespace in RESERVED_NAMESPACES:
            raise ValueError(f"namespace {namespace!r} is a name the library uses; choose another")
        self.namespace = namespace
        self.serializer: Serializer = default_serializer() if serializer is None else serializer
        self.queue: Queue = KVQueue(self) if queue is None else queue
        self.history_store: History = KVHistory(self) if history is None else history

    # -- the five methods an author writes ----------------------------------

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None: ...

    @abstractmethod
    def get(self, name: str, default: Any = None) -> Any: ...

    @abstractmethod
    def delete(self, name: str, missing_ok: bool = False) -> None: ...

    @abstractmethod
    def scan(self, pattern: str | None = None) -> Iterable[str]: ...

    # -- key-value helpers ---------------------------------------------------

    def full_name(self, name: str) -> str:
        """``namespace:name``; a name that already carries the namespace is
        returned as it is (as in Alsek), never prefixed twice."""
        return name if self.in_namespace(name) else f"{self.namespace}:{name}"

    def in_namespace(self, name: str) -> bool:
        """Whether a full name belongs to this backend's namespace."""
        return name.startswith(f"{self.namespace}:")

    def short_name(self, name: str) -> str:
        return name[len(self.namespace) + 1 :]

    def glob(self, pattern: str | None) -> str:
        """The namespaced glob that ``scan(pattern)`` means."""
        return self.full_name(f"{pattern or ''}*")

    @staticmethod
    def matches(name: str, pattern: str | None) -> bool:
        """Whether a short name matches a scan pattern (for stores without globbing)."""
        return fnmatch.fnmatchcase(name, f"{pattern or ''}*")

    def clear_namespace(self, raise_on_error: bool = True) -> int:
        """Remove everything under the namespace: queued and dead-lettered
        messages, then every key-value name (statuses, results, locks,
        revocations). Returns how many were removed. A name that vanished
        meanwhile raises KeyError with ``raise_on_error``, else is skipped."""
        broker = Broker(self)
        removed = 0
        for queue in broker.queues():
            removed += broker.purge(queue) + broker.purge_dead(queue)
        for name in list(self.scan()):
            try:
                self.delete(name, missing_ok=not raise_on_error)
            except KeyError:
                raise KeyError(f"{name!r} vanished while the namespace was cleared") from None
            removed += 1
        broker.queues()  # lists the queues left: a registry of queue names forgets the emptied ones
        return removed

    def count(self, pattern: str | None = None) -> int:
        return sum(1 for _ in self.scan(pattern))

    def delete_if(self, name: str, value: Any) -> bool:
        """Not atomic: a backend that can compare and delete in one step
        should override this."""
        if self.get(name, default=_ABSENT) != value:
            return False
        self.delete(name, missing_ok=True)
        return True

    # -- wake-ups ------------------------------------------------------------

    def notify(self, channel: str) -> None:
        """Nothing to do: generic listeners poll."""
        return None

    def listen(self, channels: Sequence[str]) -> Listener:
        return PollingListener()

    # -- the queue port, handed to ``self.queue`` ----------------------------

    @property
    def blocking_claim(self) -> bool:
        return self.queue.blocking_claim

    @property
    def atomic_settle(self) -> bool:
        return self.queue.atomic_settle

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        return self.queue.settle(settlements)

    def submit(self, envelopes: Iterable[Envelope]) -> int:
        return self.queue.submit(envelopes)

    def submit_in_transaction(self, envelopes: Iterable[Envelope], connection: Any) -> int:
        return self.queue.submit_in_transaction(envelopes, connection)

    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        return self.queue.submit_unique(envelope, key, window_ms)

    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        return self.queue.release_unique(queue, key, uuid)

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        return self.queue.claim(queues, limit, lease_ms, wait_ms)

    def ack(self, queue: str, uuid: str) -> None:
        self.queue.ack(queue, uuid)

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        self.queue.ack_many(queue, uuids)

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        return self.queue.extend_lease(delivery, lease_ms)

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        return self.queue.reschedule(delivery, payload, ready_at)

    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        return self.queue.dead_letter(delivery, payload)

    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        return self.queue.joined(queue, callback)

    def forget_join(self, queue: str, callback: str) -> None:
        self.queue.forget_join(queue, callback)

    def contains(self, queue: str, uuid: str) -> bool:
        return self.queue.contains(queue, uuid)

    def queue_names(self) -> list[str]:
        return self.queue.queue_names()

    def counts(self, queue: str) -> QueueCounts:
        return self.queue.counts(queue)

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        return self.queue.messages(queue, dead)

    def remove_dead(self, queue: str, uuid: str) -> bool:
        return self.queue.remove_dead(queue, uuid)

    def purge(self, queue: str) -> int:
        return self.queue.purge(queue)

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        return self.queue.take_token(bucket, rate_per_s, burst)

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        return self.queue.acquire_slot(group, holder, limit, lease_ms)

    def release_slot(self, group: str, holder: str) -> None:
        self.queue.release_slot(group, holder)

    # -- the job history, handed to ``self.history`` -------------------------

    def record_history(self, entries: Sequence[HistoryEntry], retention: Retention) -> None:
        self.history_store.record_history(entries, retention)

    def history_of(self, queue: str, kind: str, limit: int) -> list[HistoryEntry]:
        return self.history_store.history_of(queue, kind, limit)

    def history_entry(self, queue: str, uuid: str) -> HistoryEntry | None:
        return self.history_store.history_entry(queue, uuid)

    def history_queues(self) -> list[str]:
        return self.history_store.history_queues()

    # -- stores and lifetime -------------------------------------------------

    def status_tracker(self) -> BaseStatusTracker:
        """The status tracker that suits this backend best (the CLI and
        ``tracker_for`` use it); key-value records unless an adapter has a
        native one."""
        return StatusTracker(self)

    def result_store(self) -> ResultStore:
        """Likewise for results."""
        return ResultStore(self)

    def close(self) -> None:
        """Release connections; the backend reconnects if used again."""
        return None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(namespace={self.namespace!r}, serializer={self.serializer!r})"
        )
