"""A named lock shared by every process and host on one backend.

Built on ``set(nx=True, ttl=...)``, so it works on any backend (any
``KeyValue``: the generic queue's limits take one too); the TTL frees it if
its holder dies without releasing.
"""

from __future__ import annotations

import os
import socket
import threading
from types import TracebackType

from alsek_core.errors import AlsekError, KeyExistsError
from alsek_core.ports import KeyValue

DEFAULT_LOCK_TTL = 60_000


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Lock:
    """``with Lock(name, backend=...) as lock:`` releases on exit what it
    acquired, unless ``auto_release=False`` (then it is held until released or
    its ``ttl`` runs out, e.g. for work that outlives the block).

    ``acquire(strict=True)`` is True only if this call took the lock; with
    ``strict=False`` it is also True when this owner already holds it.
    """

    def __init__(
        self,
        name: str,
        backend: KeyValue,
        ttl: int | None = DEFAULT_LOCK_TTL,
        auto_release: bool = True,
        owner_id: str | None = None,
    ) -> None:
        if not name:
            raise AlsekError("a lock needs a name")
        self.name = name
        self.backend = backend
        self.ttl = ttl
        self.auto_release = auto_release
        self.owner_id = owner_id or default_owner()

    @property
    def long_name(self) -> str:
        """The lock's name within the backend's namespace."""
        return f"locks:{self.name}"

    @property
    def full_name(self) -> str:
        """The name as stored, namespace included."""
        return f"{self.backend.namespace}:{self.long_name}"

    @property
    def holder(self) -> str | None:
        found = self.backend.get(self.long_name)
        return found if isinstance(found, str) else None

    @property
    def held(self) -> bool:
        """Whether this owner holds it."""
        return self.holder == self.owner_id

    def acquire(self, strict: bool = True) -> bool:
        try:
            self.backend.set(self.long_name, self.owner_id, nx=True, ttl=self.ttl)
            return True
        except KeyExistsError:
            return not strict and self.held

    def release(self) -> bool:
        """Release if this owner holds it; True if it did."""
        return self.backend.delete_if(self.long_name, self.owner_id)

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.auto_release:
            self.release()

    def __repr__(self) -> str:
        return f"Lock(name={self.name!r}, backend={self.backend!r})"
