"""A backend written the way the seed's "Custom Backends" section says: only the
five key-value methods, over a plain dict. Everything else, the whole queue,
comes from the generic implementation in alsek_core."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.plugins import BackendSpec, Registry, hookimpl
from alsek_core.ports import Serializer

_STORES: dict[str, dict[str, tuple[bytes, float | None]]] = {}
_LOCK = threading.Lock()


class DictBackend(Backend):
    def __init__(
        self,
        store: str = "default",
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self._data = _STORES.setdefault(store, {})

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def exists(self, name: str) -> bool:
        with _LOCK:
            return self._live(self.full_name(name)) is not None

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        key = self.full_name(name)
        with _LOCK:
            if nx and self._live(key) is not None:
                raise KeyExistsError(name)
            self._data[key] = (data, None if ttl is None else time.monotonic() + ttl / 1000)

    def get(self, name: str, default: Any = None) -> Any:
        with _LOCK:
            data = self._live(self.full_name(name))
        return default if data is None else self.serializer.loads(data)

    def delete(self, name: str, missing_ok: bool = False) -> None:
        key = self.full_name(name)
        with _LOCK:
            if self._live(key) is None:
                if not missing_ok:
                    raise KeyError(name)
                return
            del self._data[key]

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        with _LOCK:
            keys = [k for k in list(self._data) if self._live(k) is not None]
        prefix = self.full_name("")
        for key in keys:
            if key.startswith(prefix) and self.matches(self.short_name(key), pattern):
                yield self.short_name(key)


def make_backend(url: str, **options: Any) -> DictBackend:
    return DictBackend(urlsplit(url).netloc or "default", **options)


@hookimpl
def alsek_register_backends(register: Registry) -> None:
    register.backend(
        BackendSpec(
            "five-method",
            ("fivemethod",),
            make_backend,
            "dict, five methods only",
            test_url=lambda scratch: "fivemethod://contract",
        )
    )
