"""The in-memory backend (``memory://``): storage in a dict of this process,
no server, for tests. ``MemoryBackend`` is imported on first access, like the
other adapters, so that loading plugins imports as little as possible."""

from __future__ import annotations

from typing import Any

__all__ = ["MemoryBackend"]


def __getattr__(name: str) -> Any:
    if name == "MemoryBackend":
        from alsek_backends.memory.backend import MemoryBackend

        return MemoryBackend
    raise AttributeError(name)
