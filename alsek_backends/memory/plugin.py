"""Registers the in-memory backend for ``memory://`` URLs (``memory://NAME``
names a store shared within the process; ``memory://`` is "default")."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from alsek_core.errors import ConfigError
from alsek_core.plugins import BackendSpec, Registry, hookimpl


def store_from_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.path.strip("/") or parts.query:
        raise ConfigError(f"malformed memory URL {url!r}: use memory://NAME (or memory://)")
    return parts.netloc or "default"


def make_backend(url: str, **options: Any) -> Any:
    from alsek_backends.memory.backend import MemoryBackend

    return MemoryBackend(store_from_url(url), **options)


@hookimpl
def alsek_register_backends(register: Registry) -> None:
    register.backend(
        BackendSpec(
            "memory",
            ("memory",),
            make_backend,
            "a dict in this process, no server: for tests (one process only)",
            test_url=lambda scratch: "memory://contract",
        )
    )
