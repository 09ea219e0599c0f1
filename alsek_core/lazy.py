"""Connect on first use, so an application can boot before its backend does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyClient:
    """Holds a factory for a client; ``get()`` calls it once and caches the result."""

    def __init__(self, client_func: Callable[[], Any]) -> None:
        self.client_func = client_func
        self._client: Any = None

    def get(self) -> Any:
        if self._client is None:
            self._client = self.client_func()
        return self._client


def resolve(conn: Any) -> Any:
    """The real client behind ``conn``, evaluating a LazyClient if need be."""
    return conn.get() if isinstance(conn, LazyClient) else conn
