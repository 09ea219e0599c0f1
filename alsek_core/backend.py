"""The base class a backend author subclasses.

Write the five key-value methods (``exists``, ``set``, ``get``, ``delete``,
``scan``) and the whole library works on your storage: every queue operation
comes from :class:`alsek_core.kv_queue.KVQueue`, built on those five. The
built-in adapters override the queue operations with native atomic ones.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alsek_core.broker import Broker
from alsek_core.kv_queue import KVQueue
from alsek_core.ports import Listener, Serializer

if TYPE_CHECKING:
    from alsek_core.result import ResultStore
    from alsek_core.status import BaseStatusTracker

DEFAULT_NAMESPACE = "alsek"
#: The first part of the names the library itself writes. Since ``full_name``
#: leaves a name that already starts with the namespace alone (as Alsek
#: does), a namespace spelled like one of these would swallow them.
RESERVED_NAMESPACES = frozenset(
    {"locks", "queues", "results", "revocations", "revoked", "status", "triggers"}
)
_ABSENT = object()


class PollingListener:
    """What a backend without push offers: a short sleep, then "look again"."""

    interval_ms = 50

    def wait(self, timeout_ms: int) -> bool:
        time.sleep(max(0, min(timeout_ms, self.interval_ms)) / 1000)
        return False

    def close(self) -> None:
        pass


class Backend(KVQueue):
    """Key-value storage under a namespace, plus (inherited) queue operations.

    Contract for implementations:

    * every name is prefixed with ``full_name(name)`` before it touches storage,
      and ``scan`` yields names with the namespace stripped (``short_name``);
    * values go through ``self.serializer`` (``dumps`` on set, ``loads`` on get);
    * ``set(nx=True)`` on an existing live name raises ``KeyExistsError``;
    * ``ttl`` is in milliseconds, after which the name no longer exists;
    * ``scan(pattern)`` matches the glob ``pattern + "*"`` (so a pattern is a
      prefix unless it says otherwise); ``None`` scans everything;
    * ``delete`` of a missing name raises ``KeyError`` unless ``missing_ok``.
    """

    #: False for storage that lives in one process (a dict): the contract suite
    #: then checks concurrency with threads instead of processes.
    multi_process = True

    def __init__(
        self, namespace: str = DEFAULT_NAMESPACE, serializer: Serializer | None = None
    ) -> None:
        if not namespace or "*" in namespace or "?" in namespace:
            raise ValueError(
                f"namespace must be a non-empty name without glob characters, got {namespace!r}"
            )
        if namespace in RESERVED_NAMESPACES:
            raise ValueError(f"namespace {namespace!r} is a name the library uses; choose another")
        self.namespace = namespace
        if serializer is None:
            from alsek_core.plugins import default_serializer

            serializer = default_serializer()
        self.serializer: Serializer = serializer

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

    def notify(self, channel: str) -> None:
        """Nothing to do: generic listeners poll."""

    def listen(self, channels: Sequence[str]) -> Listener:
        return PollingListener()

    def status_tracker(self) -> BaseStatusTracker:
        """The status tracker that suits this backend best (the CLI and
        ``tracker_for`` use it); key-value records unless an adapter has a
        native one."""
        from alsek_core.status import StatusTracker

        return StatusTracker(self)

    def result_store(self) -> ResultStore:
        """Likewise for results."""
        from alsek_core.result import ResultStore

        return ResultStore(self)

    def close(self) -> None:
        """Release connections; the backend reconnects if used again."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(namespace={self.namespace!r}, serializer={self.serializer!r})"
        )
