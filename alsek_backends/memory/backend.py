"""Storage in a dict of this process: the five key-value methods and nothing
more, so every queue operation is the generic one
(:class:`alsek_core.kv_queue.KVQueue`), exactly as for a third party's
five-method backend.

Meant for tests (as Dramatiq's StubBroker): producers and a thread pool in
one process share a store by its name (``memory://name``; ``memory://`` is
"default"). Nothing survives the process, and nothing crosses into another:
handing one to another process (pickling it, say for a process pool) or
using one in a forked child raises a ConfigError, rather than letting the
other process work on a copy that nobody else sees.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import ConfigError, KeyExistsError
from alsek_core.ports import Serializer

_ABSENT = object()


class _Store:
    """One named store: ``{key: (serialized value, expiry on the monotonic clock)}``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, tuple[bytes, float | None]] = {}

    def live(self, key: str) -> bytes | None:
        """The value of a key, dropping it if expired. Call with the lock held."""
        item = self.items.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self.items[key]
            return None
        return item[0]


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


def store_named(name: str) -> _Store:
    with _STORES_LOCK:
        return _STORES.setdefault(name, _Store())


class MemoryBackend(Backend):
    """``store`` names the dict shared by every MemoryBackend of this process
    that names it; namespaces keep tests apart within one store."""

    def __init__(
        self,
        store: str = "default",
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self.store = store
        self._store = store_named(store)
        self._pid = os.getpid()

    def __reduce__(self) -> Any:
        raise ConfigError(
            f"memory://{self.store} lives in one process and cannot be sent to another "
            "(a process pool, say): use a thread pool, or a backend with storage of its "
            "own such as sqlite:///DIR"
        )

    def _here(self) -> _Store:
        if os.getpid() != self._pid:
            raise ConfigError(
                f"memory://{self.store} belongs to process {self._pid}; this forked child "
                "would only see a copy: use a thread pool, or a backend such as sqlite:///DIR"
            )
        return self._store

    def exists(self, name: str) -> bool:
        store = self._here()
        with store.lock:
            return store.live(self.full_name(name)) is not None

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        expires = None if ttl is None else time.monotonic() + ttl / 1000
        key, store = self.full_name(name), self._here()
        with store.lock:
            if nx and store.live(key) is not None:
                raise KeyExistsError(f"name {name!r} already exists")
            store.items[key] = (data, expires)

    def get(self, name: str, default: Any = None) -> Any:
        store = self._here()
        with store.lock:
            data = store.live(self.full_name(name))
        return default if data is None else self.serializer.loads(data)

    def delete(self, name: str, missing_ok: bool = False) -> None:
        key, store = self.full_name(name), self._here()
        with store.lock:
            if store.live(key) is None:
                if not missing_ok:
                    raise KeyError(f"no such name: {name!r}")
                return
            del store.items[key]

    def delete_if(self, name: str, value: Any) -> bool:
        """Atomic: compared and deleted under the store's lock."""
        key, data, store = self.full_name(name), self.serializer.dumps(value), self._here()
        with store.lock:
            if store.live(key) != data:
                return False
            del store.items[key]
            return True

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        prefix, store = self.full_name(""), self._here()
        with store.lock:
            names = [
                self.short_name(key)
                for key in list(store.items)
                if key.startswith(prefix) and store.live(key) is not None
            ]
        return iter([name for name in names if self.matches(name, pattern)])

    def __repr__(self) -> str:
        return f"MemoryBackend({self.store!r}, namespace={self.namespace!r})"
